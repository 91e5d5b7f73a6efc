package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"

	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/orcid"
	"hookd/ssrf"
	"hookd/store"
)

// Duration is a time.Duration written in TOML as a string such as "5m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (use e.g. \"90s\", \"5m\", \"2h\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back as a string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is hookd's configuration; every key is optional.
type Config struct {
	HTTP struct {
		Listen    string `toml:"listen"`
		BasePath  string `toml:"base_path"`
		PublicURL string `toml:"public_url"`
		// TrustedProxies are the reverse proxies (addresses or CIDR prefixes) whose
		// X-Forwarded-For names the client; see TrustedProxyPrefixes.
		TrustedProxies []string `toml:"trusted_proxies"`
		// MaxConnections bounds the connections hookd holds open at once; one
		// past it is answered 503 and closed (connLimit).
		MaxConnections int `toml:"max_connections"`
	} `toml:"http"`
	Store struct {
		Path        string `toml:"path"`
		Synchronous string `toml:"synchronous"`
		// Checkpoints is who copies the WAL into the database file: "hookd", or
		// "external" when Litestream replicates the database (README: Litestream).
		Checkpoints string `toml:"checkpoints"`
	} `toml:"store"`
	Auth struct {
		TokenTTL       Duration `toml:"token_ttl"`
		SecretKeyFile  string   `toml:"secret_key_file"`
		AdminTokenFile string   `toml:"admin_token_file"`
	} `toml:"auth"`
	Delivery struct {
		Tick                Duration `toml:"tick"`
		CoalesceWindow      Duration `toml:"coalesce_window"`
		Timeout             Duration `toml:"timeout"`
		RetryBase           Duration `toml:"retry_base"`
		RetryMaxDelay       Duration `toml:"retry_max_delay"`
		GiveUpAfter         Duration `toml:"give_up_after"`
		DisableAfter        Duration `toml:"disable_after"`
		Workers             int      `toml:"workers"`
		PerHost             int      `toml:"per_host"`
		AllowPrivateTargets bool     `toml:"allow_private_targets"`
		Paused              bool     `toml:"paused"`
		Retention           Duration `toml:"retention"`
		// MaxEveryRecordWebhooks and MaxWebhooksPerRecord bound each client's
		// active webhooks for every record, and for one record (FanOutCaps).
		MaxEveryRecordWebhooks int `toml:"max_every_record_webhooks"`
		MaxWebhooksPerRecord   int `toml:"max_webhooks_per_record"`
	} `toml:"delivery"`
	Email struct {
		SMTPAddr     string `toml:"smtp_addr"`
		Username     string `toml:"username"`
		PasswordFile string `toml:"password_file"`
		From         string `toml:"from"`
		StartTLS     bool   `toml:"starttls"`
		ImplicitTLS  bool   `toml:"implicit_tls"`
	} `toml:"email"`
	Upstream struct {
		APIURL           string `toml:"api_url"`
		TokenURL         string `toml:"token_url"`
		ClientID         string `toml:"client_id"`
		ClientSecretFile string `toml:"client_secret_file"`
	} `toml:"upstream"`
	Log struct {
		Level  string `toml:"level"`
		Format string `toml:"format"`
	} `toml:"log"`
	// Audit is the audit log of the console's and the admin APIs' changes.
	Audit struct {
		Retention Duration `toml:"retention"`
	} `toml:"audit"`
	// Inbox is the receiver built in for developers (/inbox/{name}/…): on in
	// hookd dev, off unless enabled in serve.
	Inbox struct {
		Enabled      bool `toml:"enabled"`
		KeepPerInbox int  `toml:"keep_per_inbox"`
		KeepTotal    int  `toml:"keep_total"`
	} `toml:"inbox"`
}

// DefaultConfig returns the built-in defaults, the values config.example.toml and the
// README document.
func DefaultConfig() Config {
	var c Config
	c.HTTP.Listen = "127.0.0.1:8080"
	c.HTTP.MaxConnections = defaultMaxConnections
	c.Store.Path = "hookd.db"
	c.Store.Synchronous = "full"
	c.Store.Checkpoints = "hookd"
	c.Auth.TokenTTL = Duration{store.DefaultTokenTTL}
	c.Delivery.Tick = Duration{dispatch.DefaultTick}
	c.Delivery.CoalesceWindow = Duration{5 * time.Minute}
	c.Delivery.Timeout = Duration{dispatch.DefaultTimeout}
	c.Delivery.RetryBase = Duration{dispatch.DefaultRetryBase}
	c.Delivery.RetryMaxDelay = Duration{dispatch.DefaultRetryMaxDelay}
	c.Delivery.GiveUpAfter = Duration{dispatch.DefaultGiveUpAfter}
	c.Delivery.DisableAfter = Duration{dispatch.DefaultDisableAfter}
	c.Delivery.Workers = dispatch.DefaultWorkers
	c.Delivery.PerHost = dispatch.DefaultPerHost
	c.Delivery.Retention = Duration{dispatch.DefaultRetention}
	c.Delivery.MaxEveryRecordWebhooks = store.DefaultMaxEveryRecordWebhooks
	c.Delivery.MaxWebhooksPerRecord = store.DefaultMaxWebhooksPerRecord
	c.Audit.Retention = Duration{store.DefaultAuditRetention}
	c.Email.StartTLS = true
	c.Log.Level = "info"
	c.Log.Format = "auto"
	c.Inbox.KeepPerInbox = store.DefaultInboxKeepPerInbox
	c.Inbox.KeepTotal = store.DefaultInboxKeepTotal
	return c
}

// LoadConfig reads a TOML file over the defaults and validates the result. Unknown
// keys are an error, so a misspelt key is never silently ignored.
func LoadConfig(path string) (Config, error) { return loadConfigOver(DefaultConfig(), path, nil) }

// loadConfigOver is LoadConfig over other defaults (hookd dev's). When set is not
// nil, it is given which keys the file sets.
func loadConfigOver(c Config, path string, set *toml.MetaData) (Config, error) {
	md, err := toml.DecodeFile(path, &c)
	if set != nil {
		*set = md
	}
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			if name, first, ok := repeatedTable(path, perr.Position.Line); ok {
				return Config{}, fmt.Errorf("config %s: [%s] is written twice, at line %d and at line %d: a table is written once in TOML; put the keys under line %d's [%s] under the one at line %d",
					path, name, first, perr.Position.Line, perr.Position.Line, name, first)
			}
			if m := keyTwice.FindStringSubmatch(perr.Message); m != nil {
				// The key the message names: the decoder's LastKey is where it was,
				// which for a key then opened as a table ([store.path]) is the table
				// around it.
				key := m[1]
				if first, ok := repeatedKey(path, key, perr.Position.Line); ok {
					return Config{}, fmt.Errorf("config %s: %s is set twice, at line %d and at line %d: a key is set once in TOML; keep the line with the value you mean",
						path, key, first, perr.Position.Line)
				}
				return Config{}, fmt.Errorf("config %s: %s is set twice (the second time at line %d): a key is set once in TOML; keep the line with the value you mean",
					path, key, perr.Position.Line)
			}
			line, col := errorPosition(path, perr.Position)
			if key, bare, value, ok := unquotedText(path, line); ok {
				// TOML reads an unquoted 20s or 127.0.0.1:8080 as a number cut short,
				// and says so in words that do not tell what to write. A URL's user
				// name and password, and an upstream URL's query, which may hold a
				// key, are not shown, as the check of a quoted one does not show them.
				switch key {
				case "http.public_url", "email.smtp_addr":
					value = withoutUserinfo(value)
				case "upstream.api_url", "upstream.token_url":
					value = withoutSecrets(value)
				}
				return Config{}, fmt.Errorf("config %s: %s: %s is text, which TOML writes in quotes: %s = %q (line %d)",
					path, key, value, bare, value, line)
			}
			// The last key read names where the error is, but not in a table's
			// header: that is the key before it ("[store" after [http]'s keys).
			if perr.LastKey != "" && !strings.Contains(perr.Message, "table name") {
				return Config{}, fmt.Errorf("config %s: %s: %s (line %d)", path, perr.LastKey, perr.Message, line)
			}
			// Not perr.ErrorWithPosition: it panics on some positions at the end of
			// a file (a fuzzed input keeps that in testdata/fuzz).
			where := fmt.Sprintf("line %d, column %d", line, col)
			if perr.Position.Line < 1 {
				where = "at the end of the file"
			}
			return Config{}, fmt.Errorf("config %s: %s (%s)", path, perr.Message, where)
		}
		if msg, ok := typeError(err); ok {
			return Config{}, fmt.Errorf("config %s: %s", path, msg)
		}
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
			if s := suggestKey(keys[i]); s != "" {
				keys[i] += " (did you mean " + s + "?)"
			}
		}
		return Config{}, fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if !md.IsDefined("email", "implicit_tls") {
		// A relay's port 465 speaks TLS from the first byte (RFC 8314), and never
		// answers a client that waits for its greeting to ask for STARTTLS.
		_, port, _ := net.SplitHostPort(c.Email.SMTPAddr)
		n, err := net.LookupPort("tcp", port)
		c.Email.ImplicitTLS = err == nil && n == implicitTLSPort
	}
	// TOML keys are case-sensitive, but the decoder matches fields whatever their
	// case: "Store.Path" would set store.path without it counting as given (so not
	// relative to the file's folder). Every key of hookd's is lower case.
	for _, k := range md.Keys() {
		if s := k.String(); s != strings.ToLower(s) {
			return Config{}, fmt.Errorf("config %s: unknown key %s (keys are lower case: %s)", path, s, strings.ToLower(s))
		}
	}
	// Relative paths in a file are relative to the file, as a service's working
	// directory is rarely where its config lives.
	dir := filepath.Dir(path)
	for _, f := range []struct {
		p   *string
		key []string
	}{
		{&c.Store.Path, []string{"store", "path"}},
		{&c.Auth.SecretKeyFile, []string{"auth", "secret_key_file"}},
		{&c.Auth.AdminTokenFile, []string{"auth", "admin_token_file"}},
		{&c.Email.PasswordFile, []string{"email", "password_file"}},
		{&c.Upstream.ClientSecretFile, []string{"upstream", "client_secret_file"}},
	} {
		if *f.p != "" && !filepath.IsAbs(*f.p) && md.IsDefined(f.key...) {
			*f.p = filepath.Join(dir, *f.p)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// configKeys are the keys of Config as a file writes them (http.listen), with its
// tables (http).
var configKeys = func() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		table := t.Field(i)
		name := table.Tag.Get("toml")
		keys = append(keys, name)
		for j := range table.Type.NumField() {
			keys = append(keys, name+"."+table.Type.Field(j).Tag.Get("toml"))
		}
	}
	return keys
}()

// textKeys are the keys of Config whose values are text: strings and durations.
var textKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		table := t.Field(i)
		for j := range table.Type.NumField() {
			f := table.Type.Field(j)
			if f.Type.Kind() == reflect.String || f.Type == reflect.TypeFor[Duration]() {
				keys[table.Tag.Get("toml")+"."+f.Tag.Get("toml")] = true
			}
		}
	}
	return keys
}()

// unquotedValue matches a line that sets a bare key to a value that begins as no
// string, list or table does, and the value, before a comment.
var unquotedValue = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=\s*([^"'\[{#\s][^#]*?)\s*(?:#.*)?$`)

// unquotedText reports that the line of a syntax error sets a key whose value is
// text (a string or a duration) without its quotes, as in "timeout = 20s" or
// "listen = 127.0.0.1:8080": the key in full (delivery.timeout), as the line
// names it (timeout), and the value.
func unquotedText(path string, line int) (key, bare, value string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", "", false
	}
	lines := strings.Split(string(b), "\n")
	if line < 1 || line > len(lines) {
		return "", "", "", false
	}
	m := unquotedValue.FindStringSubmatch(strings.TrimSuffix(lines[line-1], "\r"))
	if m == nil {
		return "", "", "", false
	}
	table := ""
	for _, l := range lines[:line-1] {
		if name := tableName(l); name != "" {
			table = name
		}
	}
	key = table + "." + m[1]
	if !textKeys[key] {
		return "", "", "", false
	}
	// A value TOML reads (20, true) is not at fault for its quotes: a decoder's
	// error of it says what is wrong ("not a duration").
	var v map[string]any
	if _, err := toml.Decode("v = "+m[2], &v); err == nil {
		return "", "", "", false
	}
	return key, m[1], m[2], true
}

// suggestKey returns the key an unknown one was likely meant to be: the key of that
// name in its table (listen, or delivery.path: http.listen, store.path), or one a
// typo or two away (delivery.coalesce_windw: delivery.coalesce_window); "" when
// none is.
func suggestKey(unknown string) string {
	name := unknown[strings.LastIndex(unknown, ".")+1:]
	if k, ok := keyMeant[name]; ok && (unknown == name || strings.HasPrefix(k, unknown[:len(unknown)-len(name)])) {
		return k // at the top, or in the key's own table: [email] host is not http's
	}
	for _, k := range configKeys {
		if _, n, ok := strings.Cut(k, "."); ok && n == name {
			return k
		}
	}
	best, bestDist := "", 3
	for _, k := range configKeys {
		if d := editDistance(unknown, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// keyMeant is the key meant by a name other servers' files use for it: hookd
// takes the address and the port in one key, http.listen ("127.0.0.1:8080"), and
// the database by its file, store.path. Only at the top of a file or in that
// key's own table.
var keyMeant = map[string]string{
	"port": "http.listen", "host": "http.listen", "addr": "http.listen", "address": "http.listen", "bind": "http.listen",
	"database": "store.path", "db": "store.path", "file": "store.path", "dsn": "store.path",
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// tableHeader is a TOML table's header line, [name] or [a.b], with a comment after it.
var tableHeader = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*\]\s*(?:#.*)?$`)

// repeatedTable reports whether line of the TOML file at path opens a table that an
// earlier line opened already, as a snippet appended to a copy of
// config.example.toml does ([http] twice), with the table's name and that earlier
// line: the decoder's own words for it name neither.
func repeatedTable(path string, line int) (name string, first int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	lines := strings.Split(string(b), "\n")
	if line < 1 || line > len(lines) {
		return "", 0, false
	}
	name = tableName(lines[line-1])
	if name == "" {
		return "", 0, false
	}
	for i, l := range lines[:line-1] {
		if tableName(l) == name {
			return name, i + 1, true
		}
	}
	return "", 0, false
}

// errorPosition is the line and column of a TOML syntax error, both counted from
// the byte the decoder names (its Start). The decoder's own line has counted a
// line break it stopped at ("[http" and a line break: "expected '.' or ']' to end
// table name, but got '\n'"), so it named the line after the one at fault, with
// the column on the line at fault.
func errorPosition(path string, p toml.Position) (line, col int) {
	line, col = p.Line, max(p.Col, 1)
	b, err := os.ReadFile(path)
	if err != nil {
		return line, col
	}
	data := string(b)
	// As the decoder reads past a byte order mark, its positions are counted after it.
	if strings.HasPrefix(data, "\xff\xfe") || strings.HasPrefix(data, "\xfe\xff") {
		data = data[2:]
	} else if strings.HasPrefix(data, "\xef\xbb\xbf") {
		data = data[3:]
	}
	if p.Line < 1 || p.Start < 0 || p.Start >= len(data) {
		return line, col
	}
	before := data[:p.Start]
	return strings.Count(before, "\n") + 1, p.Start - strings.LastIndexByte(before, '\n')
}

// tableName is the table a line's header opens, its dots unspaced ("delivery.retry"
// for "[ delivery . retry ]"), or "" for a line that is no header.
func tableName(l string) string {
	m := tableHeader.FindStringSubmatch(strings.TrimSuffix(l, "\r"))
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(m[1]), "")
}

// repeatedKey finds the line before line where the file at path sets key (dotted,
// as "http.listen", under its table's header) for the first time.
func repeatedKey(path, key string, line int) (first int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	table := ""
	for i, l := range lines[:min(max(line-1, 0), len(lines))] {
		if name := tableName(l); name != "" {
			table = name
			continue
		}
		m := keyLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		full := m[1]
		if table != "" {
			full = table + "." + m[1]
		}
		if full == key {
			return i + 1, true
		}
	}
	return 0, false
}

// keyTwice matches the TOML decoder's error for a key set twice, and the key.
var keyTwice = regexp.MustCompile(`^Key '(.+)' has already been defined\.?$`)

// keyLine matches a line that sets a bare key: "listen = ...".
var keyLine = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)

// tomlTypeError matches the TOML decoder's error for a value of the wrong type:
// its line, its key, and either "incompatible types: TOML value has type T;
// destination has type D" or "type mismatch for <a Go struct>: expected table but
// found T".
var tomlTypeError = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]+)"\): (?:incompatible types: TOML value has type (\S+); destination has type (.+)|type mismatch for .*: expected table but found (\S+))$`)

// typeError says in the configuration's words what the decoder's error for a value
// of the wrong type says in Go's, e.g. "store.path: must be a string, got a whole
// number (line 2)"; false for any other error.
func typeError(err error) (string, bool) {
	m := tomlTypeError.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	line, key, got, want := m[1], m[2], m[3], m[4]
	if m[5] != "" {
		got, want = m[5], "table"
	}
	wants := map[string]string{"string": "a string", "integer": "a whole number", "float": "a number", "boolean": "true or false",
		"slice": "a list", "map": "a section", "table": "a section ([" + key + "])"}
	gots := map[string]string{"string": "a string", "int64": "a whole number", "float64": "a number with a fraction", "bool": "true or false",
		"[]any": "a list", "[]map[string]any": "a list of sections", "map[string]any": "a section"}
	w, g := wants[want], gots[got]
	if w == "" {
		w = want
	}
	if g == "" {
		g = "a date or time" // the decoder's other values: TOML's dates and times
		if !strings.HasPrefix(got, "time.") && !strings.HasPrefix(got, "toml.") {
			g = got
		}
	}
	return fmt.Sprintf("%s: must be %s, got %s (line %s)", key, w, g, line), true
}

// TrustedProxyPrefixes parses http.trusted_proxies: each entry an address
// ("127.0.0.1", "::1") or a CIDR prefix ("10.0.0.0/8"). A prefix with host bits
// ("192.168.1.10/24": one proxy, or its network?) and one that covers every
// address are refused; an IPv4-mapped one ("::ffff:10.0.0.0/104") is taken as the
// IPv4 prefix it maps, since hookd sees such peers as IPv4.
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range c.HTTP.TrustedProxies {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, err := netip.ParseAddr(e)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an address or a CIDR prefix such as \"127.0.0.1\" or \"10.0.0.0/8\"", e)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%q has bits set past its prefix: write %q for the network, or %q for one proxy", e, p.Masked().String(), p.Addr().String())
		}
		if a := p.Addr(); a.Is4In6() { // masked, so at least /96: its ffff is not host bits
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%q would trust every address: list the proxies", e)
		}
		out = append(out, p)
	}
	return out, nil
}

// Validate checks every value and reports each one that is wrong, naming its key,
// always in the same order.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if !hostPort(c.HTTP.Listen, true) {
		bad("http.listen", "must be host:port with a port from 0 to 65535 (e.g. \"127.0.0.1:8080\"), got %q%s", c.HTTP.Listen, portAloneHint(c.HTTP.Listen, `"`))
	}
	if bp := c.HTTP.BasePath; bp != "" && (!strings.HasPrefix(bp, "/") || strings.HasSuffix(bp, "/") || strings.ContainsAny(bp, "?#% ")) {
		bad("http.base_path", "must start with / and not end with one (e.g. \"/orcid-api-web\"), got %q", bp)
	} else if bp != "" && path.Clean(bp) != bp {
		bad("http.base_path", "must be a clean path, without \".\" or \"..\" segments or a doubled /: %q is %q to a client that sends it", bp, path.Clean(bp))
	} else if err := httpapi.CheckBasePath(bp); err != nil {
		bad("http.base_path", "%v", err)
	}
	if pu := c.HTTP.PublicURL; pu != "" {
		u, err := url.Parse(pu)
		if err == nil && u.User != nil { // not echoed: it may hold a password
			bad("http.public_url", "must not hold a user name or password (hookd would write it into its log and into every Location and callback URL it makes)")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || !portOK(u.Port(), false) {
			bad("http.public_url", "must be an absolute http(s) URL such as \"https://hookd.example.org\", got %q", withoutUserinfo(pu))
		} else if _, err := ssrf.ASCIIHost(u.Hostname()); err != nil {
			bad("http.public_url", "its host %q is not a domain name a browser can reach: %v", u.Hostname(), err)
		}
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		bad("http.trusted_proxies", "%v", err)
	}
	if c.HTTP.MaxConnections < 1 {
		bad("http.max_connections", "must be at least 1, got %d: it is how many connections hookd holds open at once (default %d); 0 is not \"no limit\", and would refuse every one",
			c.HTTP.MaxConnections, defaultMaxConnections)
	}
	if c.Store.Path == "" {
		bad("store.path", "must not be empty")
	} else if fi, err := os.Stat(c.Store.Path); err == nil && !fi.Mode().IsRegular() {
		bad("store.path", "%s is not a file (a folder?): name the database file in it, e.g. %q", c.Store.Path, filepath.Join(c.Store.Path, "hookd.db"))
	}
	for _, f := range []struct{ key, path string }{
		{"auth.secret_key_file", c.SecretKeyPath()}, {"auth.admin_token_file", c.Auth.AdminTokenFile},
		{"email.password_file", c.Email.PasswordFile}, {"upstream.client_secret_file", c.Upstream.ClientSecretFile},
	} {
		if f.path != "" && c.Store.Path != "" && filepath.Clean(f.path) == filepath.Clean(c.Store.Path) {
			bad(f.key, "is the database's own file (store.path %s): the two must be files of their own", c.Store.Path)
		}
	}
	if c.Store.Synchronous != "full" && c.Store.Synchronous != "normal" {
		bad("store.synchronous", "must be \"full\" or \"normal\", got %q", c.Store.Synchronous)
	}
	if c.Store.Checkpoints != "hookd" && c.Store.Checkpoints != "external" {
		bad("store.checkpoints", "must be \"hookd\" or \"external\" (Litestream), got %q", c.Store.Checkpoints)
	}
	positive := func(key string, d Duration) {
		if d.Duration <= 0 {
			bad(key, "must be > 0, got %q", d.String())
		}
	}
	positive("auth.token_ttl", c.Auth.TokenTTL)
	// A turn of the dispatch loop is a write transaction: a tick of nanoseconds
	// would run them back to back, a core busy while there is nothing to send, so
	// one below minTick is warned of (ShortDurations) and taken as minTick
	// (DispatchTick). A long one only makes a due retry or coalesced delivery wait
	// for the next tick (the intake wakes the loop at once), and is left to the
	// operator.
	positive("delivery.tick", c.Delivery.Tick)
	if c.Delivery.CoalesceWindow.Duration < 0 {
		bad("delivery.coalesce_window", "must be >= 0, got %q", c.Delivery.CoalesceWindow.String())
	}
	positive("delivery.timeout", c.Delivery.Timeout)
	positive("delivery.retry_base", c.Delivery.RetryBase)
	positive("delivery.retry_max_delay", c.Delivery.RetryMaxDelay)
	if c.Delivery.RetryMaxDelay.Duration > 0 && c.Delivery.RetryMaxDelay.Duration < c.Delivery.RetryBase.Duration {
		bad("delivery.retry_max_delay", "must be >= delivery.retry_base (%s), got %q", c.Delivery.RetryBase.String(), c.Delivery.RetryMaxDelay.String())
	}
	positive("delivery.give_up_after", c.Delivery.GiveUpAfter)
	positive("delivery.disable_after", c.Delivery.DisableAfter)
	positive("delivery.retention", c.Delivery.Retention)
	positive("audit.retention", c.Audit.Retention)
	// A bound that is itself refused bounds nothing: per_host is then checked
	// against the most workers may be, so that "workers = 0" is one error, not a
	// second one saying the default per_host must be at most 0.
	workersOK := c.Delivery.Workers >= 1 && c.Delivery.Workers <= maxWorkers
	if !workersOK {
		bad("delivery.workers", "must be between 1 and %d, got %d", maxWorkers, c.Delivery.Workers)
	}
	if workersOK && (c.Delivery.PerHost < 1 || c.Delivery.PerHost > c.Delivery.Workers) {
		bad("delivery.per_host", "must be between 1 and delivery.workers (%d), got %d", c.Delivery.Workers, c.Delivery.PerHost)
	} else if !workersOK && (c.Delivery.PerHost < 1 || c.Delivery.PerHost > maxWorkers) {
		bad("delivery.per_host", "must be between 1 and delivery.workers, got %d", c.Delivery.PerHost)
	}
	// A cap of 0, written to mean "no cap", would refuse every such webhook:
	// there is no value for none, and a number above any client's is one.
	for _, f := range []struct {
		key string
		n   int
	}{{"delivery.max_every_record_webhooks", c.Delivery.MaxEveryRecordWebhooks}, {"delivery.max_webhooks_per_record", c.Delivery.MaxWebhooksPerRecord}} {
		if f.n < 1 {
			bad(f.key, "must be at least 1, got %d: it is the most active webhooks one client may have of them (for no cap, give a number above any client's)", f.n)
		}
	}
	if a := c.Email.SMTPAddr; a != "" {
		if strings.Contains(a, "@") { // a URL's user:password@ (smtp://hookd:pw@host:587): not echoed
			bad("email.smtp_addr", "must be host:port alone, without a user name or password (hookd signs in with email.username and email.password_file), got %q", withoutUserinfo(a))
		} else if host, _, _ := net.SplitHostPort(a); !hostPort(a, false) || host == "" { // no host: hookd would not know whom to dial
			hint := ""
			if portAlone(a) {
				hint = fmt.Sprintf(": a port alone; write the relay's host before it, \"smtp.example.org:%s\" (\"127.0.0.1:%s\" for one on this machine)", a, a)
			}
			bad("email.smtp_addr", "must be host:port with a port from 1 to 65535 (e.g. \"smtp.example.org:587\"), got %q%s", a, hint)
		} else if strings.IndexFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			// No host name or address has one: every e-mail would fail to
			// find the relay, and be retried until give_up_after.
			bad("email.smtp_addr", "its host %q has white space or a control character in it: must be host:port with the relay's name or address (e.g. \"smtp.example.org:587\"), got %q", host, a)
		}
		if c.Email.From == "" {
			bad("email.from", "must be set when email.smtp_addr is")
		}
	}
	switch { // the relay is signed in to with both, or neither
	case c.Email.PasswordFile != "" && c.Email.Username == "":
		bad("email.username", "must be set when email.password_file is: hookd signs in to the relay with both")
	case c.Email.Username != "" && c.Email.PasswordFile == "":
		bad("email.password_file", "must be set when email.username is: hookd signs in to the relay with both")
	}
	if f := c.Email.From; f != "" {
		// As every e-mail reads it: one address, with a name or without. Anything
		// else would fail every e-mail, each retried until give_up_after.
		if a, err := mail.ParseAddress(f); err != nil {
			bad("email.from", "must be one e-mail address (\"hookd@uni.example\" or \"hookd <hookd@uni.example>\"), got %q", f)
		} else if err := store.MailDomainIDNA(a.Address); err != nil {
			bad("email.from", "%v", err)
		} else if err := store.MailLocalASCII(a.Address); err != nil {
			bad("email.from", "%v", err)
		}
	}
	if u := c.Upstream; u.APIURL == "" && (u.TokenURL != "" || u.ClientID != "" || u.ClientSecretFile != "") {
		bad("upstream.api_url", "must be set when upstream.token_url, client_id or client_secret_file is: without it hookd registers nothing upstream")
	}
	if u := c.Upstream.APIURL; u != "" {
		var hosts []string
		for _, f := range []struct{ key, url string }{{"upstream.api_url", u}, {"upstream.token_url", c.Upstream.TokenURL}} {
			pu, err := url.Parse(f.url)
			if err == nil && pu.User != nil { // not echoed: it may hold a password
				bad(f.key, "must not hold a user name or password (hookd would keep it in the database and show it in lists; the client's credentials are upstream.client_id and client_secret_file)")
			} else if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Hostname() == "" {
				bad(f.key, "must be an absolute http(s) URL, got %q", withoutSecrets(f.url))
			} else if !portOK(pu.Port(), false) { // every call would fail to dial
				bad(f.key, "must have a port from 1 to 65535, got %q", withoutQuery(f.url))
			} else if f.key == "upstream.api_url" && strings.ContainsAny(f.url, "?#") {
				// hookd appends each record's path to it: after a query, the
				// path would be part of the query, and every call one to the API's root.
				bad(f.key, "must have no query or fragment (hookd appends each record's /{orcid}/webhook/… to it), got %q", withoutQuery(f.url))
			} else if env, ok := orcid.EnvironmentOf(pu.Host); ok && pu.Scheme == "http" {
				// ORCID is called over https only: over http, what the call
				// carries would cross the network in clear.
				what := "the client secret (in every token request)"
				if f.key == "upstream.api_url" {
					what = "hookd's token for ORCID's API (in every registration)"
				}
				https := *pu
				https.Scheme = "https"
				if pu.Port() == "80" {
					https.Host = pu.Hostname()
				}
				bad(f.key, "must be https at ORCID's %s (%s): over http %s would cross the network in clear (did you mean %q?)",
					env.Name, pu.Hostname(), what, withoutQuery(https.String()))
			} else {
				hosts = append(hosts, pu.Hostname())
			}
		}
		if len(hosts) == 2 {
			api, apiOK := orcid.EnvironmentOf(hosts[0])
			tok, tokOK := orcid.EnvironmentOf(hosts[1])
			if apiOK && tokOK && api != tok {
				// Every registration would fail with a 401 that reads as wrong
				// credentials: each environment refuses the other's tokens.
				bad("upstream.token_url", "must be of the same ORCID environment as upstream.api_url: %s is ORCID's %s, but upstream.api_url's %s is its %s, whose API refuses the %s's tokens (did you mean token_url = %q? or, for the %s, api_url = %q)",
					hosts[1], tok.Name, hosts[0], api.Name, tok.Name, api.TokenURL, tok.Name, tok.APIURL)
			}
		}
		if id := c.Upstream.ClientID; id == "" {
			bad("upstream.client_id", "must be set when upstream.api_url is")
		} else if strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			// A space copied with the id (or a line break) is sent with it, and
			// every token request is refused as if the secret were wrong.
			bad("upstream.client_id", "must have no white space or control character (ORCID's client ids are APP-…), got %q", id)
		}
		if c.Upstream.ClientSecretFile == "" {
			bad("upstream.client_secret_file", "must be set when upstream.api_url is")
		}
		if c.HTTP.PublicURL == "" {
			bad("http.public_url", "must be set when upstream.api_url is: the upstream calls hookd back there")
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	c.Log.Format = strings.ToLower(c.Log.Format) // as log.level, in any case
	switch c.Log.Format {
	case "auto", "text", "json", "tint":
	default:
		bad("log.format", "must be auto, text, json or tint, got %q", c.Log.Format)
	}
	keepOK := c.Inbox.KeepTotal >= 1 && c.Inbox.KeepTotal <= maxInboxKeep
	if !keepOK {
		bad("inbox.keep_total", "must be between 1 and %d, got %d", maxInboxKeep, c.Inbox.KeepTotal)
	}
	if keepOK && (c.Inbox.KeepPerInbox < 1 || c.Inbox.KeepPerInbox > c.Inbox.KeepTotal) {
		bad("inbox.keep_per_inbox", "must be between 1 and inbox.keep_total (%d), got %d", c.Inbox.KeepTotal, c.Inbox.KeepPerInbox)
	} else if !keepOK && (c.Inbox.KeepPerInbox < 1 || c.Inbox.KeepPerInbox > maxInboxKeep) {
		bad("inbox.keep_per_inbox", "must be between 1 and inbox.keep_total, got %d", c.Inbox.KeepPerInbox)
	}
	return errors.Join(errs...)
}

// hostPort reports whether addr is host:port with a port a socket can have (0,
// "any free port", only when zero is true), by number or by a service name the
// system knows ("smtp").
func hostPort(addr string, zero bool) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != "" && portOK(port, zero)
}

// portAloneHint is what to add to the refusal of a listen address that is a port
// alone ("18421"), which net.Listen refuses: the two addresses meant, written
// between quote (`"` in a file, none on the command line). Empty for others.
func portAloneHint(addr, quote string) string {
	if !portAlone(addr) {
		return ""
	}
	return fmt.Sprintf(": a port alone; write %[1]s127.0.0.1:%[2]s%[1]s for this machine only, or %[1]s:%[2]s%[1]s for every interface", quote, addr)
}

// portAlone reports whether addr is a port number and nothing else ("18421").
func portAlone(addr string) bool {
	return addr != "" && strings.Trim(addr, "0123456789") == "" && portOK(addr, true)
}

// implicitTLSPort is the port of SMTP submission over TLS from the first byte.
const implicitTLSPort = 465

// portOK reports whether port, when given, is a port number or service name.
func portOK(port string, zero bool) bool {
	if port == "" {
		return true
	}
	n, err := net.LookupPort("tcp", port)
	return err == nil && (n > 0 || zero)
}

// CheckSecretFiles reads the files the *_file keys name, as the daemon does, and
// reports each one that is missing, unreadable or empty. Only the daemon and
// check-config look at them (Validate does not): a systemd credential
// (/run/credentials/…) exists only while the service runs, and the other commands,
// the package's own hookd init among them, must work without it.
func (c *Config) CheckSecretFiles() error {
	var errs []error
	for _, f := range []struct {
		key, path string
		read      func(key, path string) (string, error)
	}{
		{"auth.admin_token_file", c.Auth.AdminTokenFile, readAdminToken},
		{"email.password_file", c.Email.PasswordFile, readSecretFile},
		{"upstream.client_secret_file", c.Upstream.ClientSecretFile, readSecretFile},
	} {
		if _, err := f.read(f.key, f.path); err != nil {
			if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(f.path, "/run/credentials/") {
				err = fmt.Errorf("%w (systemd makes %s only while the service runs: check the configuration as the service's ExecStartPre does, or with it running)", err, filepath.Dir(f.path))
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SecretFileWarnings says which of the files that hold secrets (the *_file keys
// and the secret key) other users of the machine may read or replace: hookd
// reads them whatever their mode, as a service that refused to start after an
// upgrade would help nobody, and warns (check-config, and the daemon's log at
// start).
func (c *Config) SecretFileWarnings() []string {
	var warns []string
	for _, f := range []struct{ key, path string }{
		{"auth.admin_token_file", c.Auth.AdminTokenFile},
		{"email.password_file", c.Email.PasswordFile},
		{"upstream.client_secret_file", c.Upstream.ClientSecretFile},
		{"auth.secret_key_file", c.SecretKeyPath()},
	} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil || fi.Mode().Perm()&0o006 == 0 {
			continue
		}
		warns = append(warns, fmt.Sprintf("%s: %s has mode %04o: every user of this machine may read or change the secret it holds; make it readable by hookd's user alone (chmod o-rw %s)",
			f.key, f.path, fi.Mode().Perm(), f.path))
	}
	return warns
}

// configWarning is one thing check-config and the daemon's start warn of: what
// kind it is (the log's message) and what it says.
type configWarning struct{ what, detail string }

// Warnings is every warning of the configuration, in the order check-config
// prints them and the daemon logs them at start.
func (c *Config) Warnings() []configWarning {
	var warns []configWarning
	add := func(what string, details ...string) {
		for _, d := range details {
			if d != "" {
				warns = append(warns, configWarning{what, d})
			}
		}
	}
	add("secret file open to other users", c.SecretFileWarnings()...)
	add("e-mail settings without a relay", c.EmailWithoutRelay())
	add("duration below the least it means much at", c.ShortDurations()...)
	add("upstream refused by the SSRF guard", c.UpstreamRefused()...)
	add("upstream.api_url not ORCID's API root", c.UpstreamNotTheAPI())
	return warns
}

// ShortDurations says which durations are below the least they mean much at, most
// often a unit mistyped ("1ns", "20ms" for 20s): each with that least value and
// what hookd then does. They are warnings (check-config, and the daemon's log at
// start), not errors: hookd does what they say, and a configuration an older
// hookd took ("retry_base = \"5ms\"" in a test's file, a timeout of "500ms" for
// receivers on the same network) must not stop the service from starting after
// an upgrade.
func (c *Config) ShortDurations() []string {
	var warns []string
	for _, d := range []struct {
		key   string
		v     Duration
		least time.Duration
		does  string
	}{
		{"auth.token_ttl", c.Auth.TokenTTL, time.Second, "a token expires that soon after it is issued, most likely before its client uses it"},
		// A turn of the loop is a write transaction: more often would keep a core busy.
		{"delivery.tick", c.Delivery.Tick, minTick, "hookd looks for due work every 10ms instead, as each look is a write transaction"},
		{"delivery.timeout", c.Delivery.Timeout, time.Second, "a call to a receiver that takes longer to answer times out"},
		// A retry is due on a tick, so a shorter delay is not kept.
		{"delivery.retry_base", c.Delivery.RetryBase, minTick, "a retry is due on a tick (delivery.tick, at least 10ms), so it waits that long anyway"},
		{"delivery.retry_max_delay", c.Delivery.RetryMaxDelay, minTick, "a retry is due on a tick (delivery.tick, at least 10ms), so it waits that long anyway"},
		{"delivery.give_up_after", c.Delivery.GiveUpAfter, time.Second, "a failing delivery is dead that soon after its first attempt, most likely before a retry"},
		{"delivery.disable_after", c.Delivery.DisableAfter, time.Second, "a webhook whose deliveries fail is deactivated that soon after the first failure"},
		// Retention runs every minute: a shorter one purges no sooner.
		{"delivery.retention", c.Delivery.Retention, time.Minute, "retention runs every minute, and then purges what is that old"},
		{"audit.retention", c.Audit.Retention, time.Minute, "retention runs every minute, and then purges what is that old"},
	} {
		if d.v.Duration > 0 && d.v.Duration < d.least {
			warns = append(warns, fmt.Sprintf("%s is %q, less than %s: %s; if a unit was mistyped (\"20ms\" for \"20s\"), mend it",
				d.key, d.v.String(), durationWord(d.least), d.does))
		}
	}
	return warns
}

// UpstreamRefused says which of upstream.api_url and upstream.token_url have a
// host the SSRF guard refuses: a loopback or private address (or localhost)
// while delivery.allow_private_targets is off, an address where hookd never
// delivers (link-local, unspecified, ...) whatever it says, or a host no
// resolver finds as written (an address with a dot after it, 127.1), as
// registration refuses a callback's. hookd calls the upstream through the
// guard, as it calls callbacks, so every call there fails and no record is
// registered upstream. A name is judged once resolved, at connection. They are
// warnings (check-config, and the daemon's log at start), not errors: the rest
// of hookd works, and a configuration an older hookd took must not stop the
// service from starting.
func (c *Config) UpstreamRefused() []string {
	if c.Upstream.APIURL == "" {
		return nil
	}
	var warns []string
	for _, f := range []struct{ key, url string }{{"upstream.api_url", c.Upstream.APIURL}, {"upstream.token_url", c.Upstream.TokenURL}} {
		u, err := url.Parse(f.url)
		if err != nil || u.User != nil || u.Hostname() == "" {
			continue // Validate refuses it
		}
		host := u.Hostname()
		// A name is judged once resolved, at connection; one no resolver finds as
		// written (an address with a dot after it, 127.1) is refused here as a
		// callback's is, and then fails "no such host".
		err = ssrf.CheckHost(host, c.Delivery.AllowPrivateTargets)
		if err == nil {
			continue
		}
		how := "hookd calls the upstream through its SSRF guard, as it calls callbacks, so every call there is refused at connection"
		if _, perr := netip.ParseAddr(host); perr != nil && !strings.EqualFold(host, "localhost") && !strings.HasSuffix(strings.ToLower(host), ".localhost") {
			how = "hookd calls the upstream as it calls callbacks, so every call there fails"
		}
		warns = append(warns, fmt.Sprintf("%s %q: %v: %s and every registration upstream fails", f.key, withoutQuery(f.url), err, how))
	}
	return warns
}

// UpstreamNotTheAPI says, when upstream.api_url is at one of ORCID's hosts but
// not at the root of its Member API (a version such as /v3.0 after it, or the
// public API's or the site's host), where ORCID's webhooks are: "" otherwise.
// ORCID's documentation registers a webhook at the API's root,
// https://api.sandbox.orcid.org/{orcid}/webhook/{callback}, and hookd appends
// each record's path to api_url. A warning (check-config, and the daemon's log at
// start), not an error: what ORCID answers elsewhere is its to say.
func (c *Config) UpstreamNotTheAPI() string {
	u, err := url.Parse(c.Upstream.APIURL)
	if c.Upstream.APIURL == "" || err != nil || u.User != nil {
		return ""
	}
	env, ok := orcid.EnvironmentOf(u.Host)
	if !ok || env.APIURL == "" {
		return ""
	}
	want, err := url.Parse(env.APIURL)
	if err != nil {
		return ""
	}
	if strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), want.Hostname()) && strings.Trim(u.Path, "/") == "" {
		return ""
	}
	return fmt.Sprintf("upstream.api_url %q is not the root of ORCID's %s Member API, where ORCID registers webhooks (%s/{orcid}/webhook/{callback}, without a version such as /v3.0): hookd appends each record's path to api_url, so registrations may fail; did you mean api_url = %q?",
		c.Upstream.APIURL, env.Name, strings.TrimSuffix(env.APIURL, "/"), env.APIURL)
}

// EmailWithoutRelay says which [email] settings the configuration gives without
// email.smtp_addr, so that hookd uses none of them and sends no e-mail, or "" when
// it gives none. It is a warning (check-config, and the daemon's log at start),
// not an error: emptying smtp_addr is how e-mail is turned off, the rest kept for
// when it is turned on again.
func (c *Config) EmailWithoutRelay() string {
	if c.Email.SMTPAddr != "" {
		return ""
	}
	var keys []string
	for _, k := range []struct {
		key string
		set bool
	}{
		{"email.from", c.Email.From != ""},
		{"email.username", c.Email.Username != ""},
		{"email.password_file", c.Email.PasswordFile != ""},
		{"email.starttls", !c.Email.StartTLS}, // true by default
		{"email.implicit_tls", c.Email.ImplicitTLS},
	} {
		if k.set {
			keys = append(keys, k.key)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	given, them := keys[0]+" is", "it"
	if n := len(keys); n > 1 {
		given, them = strings.Join(keys[:n-1], ", ")+" and "+keys[n-1]+" are", "them"
	}
	return fmt.Sprintf("%s set, but email.smtp_addr is empty: hookd sends no e-mail (neither organisations' e-mail nor notices to webhooks' owners) and does not use %s; set email.smtp_addr to the relay's host:port to send e-mail, or leave %s out",
		given, them, them)
}

// DispatchTick is how often the dispatcher looks for due work: delivery.tick, or
// minTick when it is shorter (ShortDurations warns of it).
func (c *Config) DispatchTick() time.Duration { return max(c.Delivery.Tick.Duration, minTick) }

// minTick is the shortest delivery.tick, and the shortest retry delay.
const minTick = 10 * time.Millisecond

// durationWord is a duration as a configuration writes it: "1m", where Go
// writes "1m0s".
func durationWord(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// maxInboxKeep bounds inbox.keep_total: at most 104 KiB a request (body, headers,
// method, path and query), the inboxes can take no more than about 10 GB.
const maxInboxKeep = 100000

// maxWorkers bounds delivery.workers.
const maxWorkers = 10000

// defaultMaxConnections is http.max_connections's default. A connection reading
// its request's headers may hold 64 KiB of them (maxRequestHeaders): 4,000
// connections sending them slowly, again and again, took hookd from 25 to 806 MiB
// without a bound, to 326 MiB with this one, and to 231 MiB with it and hookd's
// soft memory limit (memoryLimit; BENCHMARKS.md), within a VM of 512 MB; and it is
// far more connections than a webhook daemon's callers keep open (a reverse
// proxy's pool, ORCID's calls, the console's tabs).
const defaultMaxConnections = 1024

// EmailRelay says the configuration names an SMTP relay to send organisations'
// e-mail through: [email] smtp_addr and from.
func (c *Config) EmailRelay() bool { return c.Email.SMTPAddr != "" && c.Email.From != "" }

// PublicURL is http.public_url without a trailing slash and with its host as
// browsers and DNS write it ("bücher.example" is "xn--bcher-kva.example"): the form
// that goes into the addresses hookd makes and that a browser's Origin header
// carries. It is "" when the key is not set.
func (c *Config) PublicURL() string {
	pu := strings.TrimSuffix(c.HTTP.PublicURL, "/")
	u, err := url.Parse(pu)
	if err != nil || u.Host == "" {
		return pu
	}
	host, err := ssrf.ASCIIHost(u.Hostname())
	if err != nil || host == u.Hostname() {
		return pu
	}
	if port := u.Port(); port != "" {
		host = net.JoinHostPort(host, port)
	}
	u.Host = host
	return u.String()
}

// FanOutCaps are the bounds of each client's active webhooks for every record
// and for one record.
func (c *Config) FanOutCaps() store.FanOutCaps {
	return store.FanOutCaps{EveryRecord: c.Delivery.MaxEveryRecordWebhooks, PerRecord: c.Delivery.MaxWebhooksPerRecord}
}

// InboxLimits are the bounds of what the inboxes keep.
func (c *Config) InboxLimits() store.InboxLimits {
	return store.InboxLimits{PerInbox: c.Inbox.KeepPerInbox, Total: c.Inbox.KeepTotal}
}

// PublicBase is how others reach hookd: http.public_url, or one made from http.listen.
func (c *Config) PublicBase(listenAddr string) string {
	if pu := c.PublicURL(); pu != "" {
		return pu
	}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "http://" + listenAddr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// SecretKeyPath is auth.secret_key_file, or "<database name>.key" beside the database.
func (c *Config) SecretKeyPath() string {
	if c.Auth.SecretKeyFile != "" {
		return c.Auth.SecretKeyFile
	}
	return defaultKeyPath(c.Store.Path)
}

// defaultKeyPath is where a database's secret key is kept when
// auth.secret_key_file does not name a file: beside it, named after it.
func defaultKeyPath(db string) string {
	return strings.TrimSuffix(db, filepath.Ext(db)) + ".key"
}

// keyElsewhere is a hint for a database whose key is missing at the path
// auth.secret_key_file names: when a key is where hookd keeps one by default,
// beside the database (hookd init, or the package's install, made it before the
// configuration named another path), it says to move it. Else "".
func (c *Config) keyElsewhere() string {
	if c.Auth.SecretKeyFile == "" {
		return ""
	}
	def := defaultKeyPath(c.Store.Path)
	if def == c.Auth.SecretKeyFile {
		return ""
	}
	if fi, err := os.Stat(def); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return fmt.Sprintf("; but a key is at %s, beside the database, where hookd made it before auth.secret_key_file named %s: move it there (mv %s %s), or leave auth.secret_key_file empty",
		def, c.Auth.SecretKeyFile, def, c.Auth.SecretKeyFile)
}

// withoutUserinfo is a URL as an error may show it: everything up to its last @
// after the scheme (a user name and password, which may hold a '/', '?' or '#')
// is left out, even when the URL does not parse.
// withoutQuery is a URL with what follows its '?' shown as "…": a token_url's
// query, which ORCID's has none of, may hold a key, and a warning or an error is
// printed and logged.
func withoutQuery(raw string) string {
	if base, _, ok := strings.Cut(raw, "?"); ok {
		return base + "?…"
	}
	return raw
}

func withoutUserinfo(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = "…@" + rest[i+1:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// withoutSecrets is an upstream URL as an error may show it: without its user
// name and password (withoutUserinfo) and without its query (withoutQuery).
// Where a '?' comes before the last '@', either hides what the other would show
// (a query's e-mail address, token?user=ops@uni.example&key=…, taken for the end
// of a user name; a password's '?' taken for a query), so all after the scheme
// is left out.
func withoutSecrets(raw string) string {
	at := strings.LastIndex(raw, "@")
	if q := strings.Index(raw, "?"); q < 0 || at < q {
		return withoutQuery(withoutUserinfo(raw))
	}
	if scheme, _, ok := strings.Cut(raw, "://"); ok {
		return scheme + "://…"
	}
	return "…"
}

// readSecretFile reads a secret kept in a file (a *_file key; e.g. a systemd
// credential), without its surrounding white space. An empty path reads as "".
// adminTokenMin is the shortest admin token hookd takes: it is the operator's
// credential, guessed at over the network.
const adminTokenMin = 16

// readAdminToken is readSecretFile for auth.admin_token_file, which must hold at
// least adminTokenMin characters.
func readAdminToken(key, path string) (string, error) {
	tok, err := readSecretFile(key, path)
	if err == nil && tok != "" && len(tok) < adminTokenMin {
		return "", fmt.Errorf("%s: %s holds %d characters: an admin token needs at least %d, in a file only its owner reads (e.g. (umask 077; openssl rand -hex 32 > %s))", key, path, len(tok), adminTokenMin, path)
	}
	return tok, err
}

func readSecretFile(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	sec := strings.TrimSpace(string(b))
	if sec == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return sec, nil
}
