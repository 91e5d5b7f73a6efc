package store

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"hookd/orcid"
	"hookd/ssrf"
)

// The checks of input that reaches hookd from several places (the HTTP API, the
// command line, a CSV file). Each lives here once and answers an *Error naming the
// field the caller gives.

// MaxURLLength is the longest callback or target URL hookd accepts, in bytes (SPEC).
const MaxURLLength = 2048

// CheckURL parses raw as a URL hookd will call: absolute http(s), with a host and
// a port hookd can reach, valid UTF-8 without control characters, no longer than
// MaxURLLength. Its host must pass ssrf.CheckHost (a literal address or name hookd
// must not reach; names are checked again after resolution, when hookd connects).
func CheckURL(field, raw string, allowPrivate bool) (*url.URL, error) {
	return CheckTarget(field, raw, Targets{AllowPrivate: allowPrivate})
}

// Targets says which hosts a URL hookd will call may name.
type Targets struct {
	// AllowPrivate admits loopback and private hosts (delivery.allow_private_targets).
	AllowPrivate bool
	// Inbox, when set, is hookd's own inbox: a URL on hookd's own address with a path
	// under /inbox/ passes whatever AllowPrivate says (ssrf.Inbox.Match), and
	// nothing else on that address does.
	Inbox *ssrf.Inbox
	// InboxUnknown, with Inbox nil, says why hookd's own inbox's address is not
	// known where the URL is checked although the inbox is on (http.listen's
	// port 0, chosen as the daemon starts): a refusal of a URL of the inbox says
	// so, where it said that the inbox is off.
	InboxUnknown string
	// NoInbox, when set, says why hookd's own inbox is no exception for the URL
	// (a token URL, which hookd calls through the guard alone, the inbox on or
	// off): a refusal of a URL under /inbox/ says it, where it said how the inbox
	// is reached.
	NoInbox string
	// AppendOrcid: hookd calls the URL with a record's iD appended (an
	// organisation's webhook with append-orcid: Target.CalledURL), so hookd's own
	// …/inbox is a URL of its inbox too: each record's calls reach the inbox named
	// by its iD.
	AppendOrcid bool
	// Existing: the URL names a registration that may have been made under the
	// rules of an older hookd (to read or remove it): its form is checked, its host
	// is not.
	Existing bool
	// Credentials says where the caller's credentials go instead of a user name
	// or password in the URL ("use the auth settings"): the refusal of such a URL
	// ends with it. Empty where there is no such place, and the refusal names none.
	Credentials string
}

// CanonicalURL is raw, a URL CheckTarget took, with its scheme and host in lower
// case (RFC 3986 §6.2.2.1: they are case-insensitive) and without its scheme's
// default port (§6.2.3: http's 80, https's 443): the one spelling an ORCID-style
// registration is kept under, so that "HTTP://EXAMPLE.COM/x",
// "http://example.com:80/x" and "http://example.com/x" are one receiver, called
// once. Only ASCII letters change (the IDNA mapping hookd dials by folds the
// others its own way); another port, the path and query stay as written, the
// receiver's to spell. A URL with a user name (an older hookd took some) stays as
// it is.
func CanonicalURL(raw string) string {
	u, _, _ := canonicalParts(raw)
	return u
}

// canonicalParts is CanonicalURL, the length in bytes of its scheme and
// authority (0 when it folds none), and the default port of its scheme (":80",
// ":443") when its authority names none, else "".
func canonicalParts(raw string) (u string, head int, port string) {
	i := strings.Index(raw, "://")
	if i <= 0 || strings.IndexFunc(raw[:i], func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) >= 0 {
		return raw, 0, ""
	}
	end := len(raw)
	if j := strings.IndexAny(raw[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	if strings.Contains(raw[:end], "@") {
		return raw, 0, ""
	}
	lower := []byte(raw[:end])
	for k, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[k] = c + 'a' - 'A'
		}
	}
	folded := string(lower)
	switch string(lower[:i]) {
	case "http":
		port = ":80"
	case "https":
		port = ":443"
	}
	authority := folded[i+3:]
	if port != "" && strings.HasSuffix(authority, port) && len(authority) > len(port) {
		folded = folded[:len(folded)-len(port)] // the default port, written out
	} else if colon := strings.LastIndexByte(authority, ':'); colon > strings.LastIndexByte(authority, ']') {
		port = "" // another port: the receiver's own
	}
	return folded + raw[end:], len(folded), port
}

// receiverSpellings are what the SQL condition receiverMatch (in subscriptions.go)
// compares a stored target with, for callback: its canonical form and the length
// in characters of its folded part, and the same with its scheme's default port
// written out, which an older hookd kept as sent (the canonical form again, when
// the callback names another port or folds nothing).
func receiverSpellings(callback string) (target string, head int, ported string, portedHead int) {
	u, n, port := canonicalParts(callback)
	target, head = u, utf8.RuneCountInString(u[:n])
	if n == 0 || port == "" {
		return target, head, target, head
	}
	return target, head, u[:n] + port + u[n:], head + len(port)
}

// CheckTarget is CheckURL with the exception for hookd's own inbox: it checks raw
// as CheckURL does, and then its host against t.
func CheckTarget(field, raw string, t Targets) (*url.URL, error) {
	bad := func(format string, args ...any) (*url.URL, error) {
		return nil, invalid(field, fmt.Sprintf(format, args...))
	}
	if raw == "" {
		return bad("URL is empty")
	}
	if !utf8.ValidString(raw) {
		return bad("URL is not valid UTF-8")
	}
	if n := len(raw); n > MaxURLLength { // bytes, as SPEC's "Bad input" counts
		return bad("URL is %d bytes long; the limit is %d bytes", n, MaxURLLength)
	}
	shown := withoutUserinfo(raw) // what the errors quote: a password in it is not echoed
	slashed := false              // shown had a password with a '/' redacted
	if s := withoutSlashedPassword(shown); s != shown {
		if u, err := url.Parse(raw); err != nil || !validPort(u.Port()) {
			shown, slashed = s, true
		}
	}
	if i := strings.IndexFunc(raw, unicode.IsControl); i >= 0 {
		return bad("URL %q has a control character at byte %d", shown, i)
	}
	u, err := url.Parse(raw)
	instead := "" // where credentials go instead, when the caller has a place
	if t.Credentials != "" {
		instead = " (" + t.Credentials + ")"
	}
	if slashed {
		// Parse's reason would quote the password's first part as a port.
		return bad("URL %q does not parse: a host's port must be a number from 1 to 65535, and a URL must not carry a user name or password%s", shown, instead)
	}
	if (err != nil || u.Scheme != "http" && u.Scheme != "https") && schemeLeftOut(raw, u) {
		// 127.0.0.1:9000/hook does not parse ("first path segment in URL cannot
		// contain colon"), hooks.example/x is a path, localhost:9000 a scheme of
		// its own: each is an address written without its http://.
		with, _ := url.Parse("http://" + raw) // schemeLeftOut has parsed it
		if _, err := checkParsed(field, "http://"+raw, "http://"+shown, instead, with, t); err != nil {
			// With its scheme it is refused too (hooks.example/a b, for its space):
			// both are told at once, not a URL to give that is refused in turn.
			why := err.Error()
			var e *Error
			if errors.As(err, &e) {
				why = e.Message
			}
			// Redacted, shown hides all before the '@': a refusal that quotes a
			// part of the URL (its host, an inbox's name) would show it again.
			if shown == raw || strings.HasPrefix(why, fmt.Sprintf("URL %q", "http://"+shown)) {
				return bad("URL %q must be an absolute http or https URL: give its scheme, http:// or https://, before its host; with it, %s", shown, why)
			}
		}
		if shown != raw {
			// Redacted, shown would make a URL with a user name ("[redacted]@…").
			return bad("URL %q must be an absolute http or https URL: give its scheme, http:// or https://, before its host", shown)
		}
		return bad("URL %q must be an absolute http or https URL: give its scheme, as http://%s", shown, shown)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the reason, without Parse's repeat of the URL
		}
		return bad("URL %q does not parse: %v", shown, err)
	}
	return checkParsed(field, raw, shown, instead, u, t)
}

// checkParsed is CheckTarget of raw once url.Parse has read it as u: its scheme,
// its parts and its host. Its errors quote shown for raw, and say where
// credentials go instead of the URL (instead, when the caller has a place).
func checkParsed(field, raw, shown, instead string, u *url.URL, t Targets) (*url.URL, error) {
	bad := func(format string, args ...any) (*url.URL, error) {
		return nil, invalid(field, fmt.Sprintf(format, args...))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("URL %q must be an absolute http or https URL", shown)
	}
	if u.Host == "" || u.Hostname() == "" {
		return bad("URL %q has no host", shown)
	}
	if p := u.Port(); !validPort(p) {
		return bad("URL %q: port %s must be a number from 1 to 65535", shown, p)
	}
	if u.User != nil {
		return bad("URL %q must not carry a user name or password%s", shown, instead)
	}
	if u.Fragment != "" {
		return bad("URL %q must not have a #fragment", shown)
	}
	if strings.Contains(raw, "#") && !t.Existing {
		// An empty fragment ("…/hook#"): never sent either, it would only make a
		// second registration of the same address, called twice for each change.
		return bad("URL %q must not have a #fragment, not even an empty one", shown)
	}
	if !t.Existing {
		// A ':' with no port after it, or a port written with a leading zero
		// (":080"), calls the port as written without it: a second registration
		// of the same address, called twice for each change, as an empty
		// fragment would be.
		if strings.HasSuffix(u.Host, ":") {
			return bad("URL %q has a ':' after its host but no port: leave the ':' out, or give the port", shown)
		}
		if p := u.Port(); len(p) > 1 && p[0] == '0' {
			return bad("URL %q: port %s has a leading zero: write it as %s", shown, p, strings.TrimLeft(p, "0"))
		}
	}
	if strings.Contains(raw, " ") {
		return bad("URL %q contains white space", shown)
	}
	// With the iD appended to its path, a record's calls go to called: under
	// /inbox/ for …/inbox, as an inbox's URL.
	var called *url.URL
	if t.AppendOrcid && u.RawQuery == "" {
		called, _ = url.Parse((&Target{URL: raw, AppendOrcid: true}).CalledURL(someRecord))
	}
	if called != nil && !t.Inbox.Match(u) && t.Inbox.Match(called) {
		return u, nil // …/inbox: each record's calls reach the inbox of its iD
	}
	if !t.Existing && (u.Path == "/inbox" || u.Path == "/inbox/") && t.Inbox.Match(u.JoinPath("x")) {
		// hookd's own /inbox itself, no inbox's name after it (an organisation's
		// webhook without append-orcid): hookd answers it 404, every call a
		// failure, where delivery.allow_private_targets lets the host pass.
		base := t.Inbox.Base()
		hint := fmt.Sprintf("hookd's own %s/inbox names no inbox, and hookd answers it 404: give an inbox's name after it, %s/inbox/NAME, or, for an organisation's webhook, turn append-orcid on to call the inbox of each record's iD", base, base)
		if t.AppendOrcid {
			// On already: the iD goes after the query, not into the path.
			hint = fmt.Sprintf("hookd's own %s/inbox names no inbox, and hookd answers it 404: append-orcid appends each record's iD after the URL's query, not to its path; leave the query out, %s/inbox, to call the inbox of each record's iD, or give an inbox's name, %s/inbox/NAME", base, base, base)
		}
		if err := ssrf.CheckHost(u.Hostname(), t.AllowPrivate); err != nil {
			return bad("%v; %s", err, hint)
		}
		return bad("URL %q: %s", shown, hint)
	}
	if t.Inbox.Match(u) {
		// hookd's own inbox (Match has checked the path): a name it would answer
		// 404 for is no target.
		name, _, _ := strings.Cut(strings.TrimPrefix(u.Path, ssrf.InboxPrefix), "/")
		if err := CheckInboxName(field, name); err != nil {
			return nil, err
		}
		return u, nil
	}
	if t.Existing {
		return u, nil
	}
	if err := ssrf.CheckHost(u.Hostname(), t.AllowPrivate); err != nil {
		if ssrf.InboxPath(u.Path) || called != nil && ssrf.InboxPath(called.Path) {
			// Most often meant for hookd's own inbox: say how that is reached.
			switch {
			case t.NoInbox != "":
				return bad("%v; %s", err, t.NoInbox)
			case t.Inbox == nil && t.InboxUnknown != "":
				return bad("%v; hookd's own inbox (/inbox/…) is called at the address hookd listens on, not known here: %s", err, t.InboxUnknown)
			case t.Inbox == nil:
				return bad("%v; hookd's own inbox (/inbox/…) is called only with [inbox] enabled = true", err)
			}
			return bad("%v; hookd's own inbox is called at %s/inbox/…", err, t.Inbox.Base())
		}
		return bad("%v", err)
	}
	return u, nil
}

// schemeLeftOut reports whether raw, which url.Parse read as u (nil when it did
// not parse) with no http or https scheme, is a host (and port, path, query)
// written without "http://": with it, raw has a host, and without it, raw has no
// scheme, or none but a host's name before a port (localhost:9000). A scheme
// written without its colon (http//host/x, https;//host) is not: its "host" is
// the scheme, http or followed by "//".
func schemeLeftOut(raw string, u *url.URL) bool {
	if strings.Contains(raw, "://") || strings.HasPrefix(raw, "/") {
		return false
	}
	c, err := url.Parse("http://" + raw)
	if err != nil || c.Hostname() == "" || c.User != nil || !validPort(c.Port()) {
		return false
	}
	if strings.EqualFold(c.Hostname(), "http") || strings.EqualFold(c.Hostname(), "https") ||
		c.Port() == "" && strings.HasPrefix(c.EscapedPath(), "//") {
		return false
	}
	return u == nil || u.Scheme == "" || c.Port() != "" && strings.EqualFold(u.Scheme, c.Hostname())
}

// withoutUserinfo is raw with the user name and password of its authority, if it
// has one, replaced by "[redacted]": found as url.Parse finds them (before the
// last '@' of what follows "//", up to its path, query or fragment), whether or
// not the rest parses. Without a "//" that opens the authority (https:/ann:pw@host,
// a slash short, even with a "//" further on, in its path or query), what comes
// before the last '@' ahead of any query or fragment is redacted too, after an
// http or https scheme and its slashes (another "scheme" may be a user name:
// ann:pw@host).
func withoutUserinfo(raw string) string {
	start, ends := 0, "?#" // where the user name may begin, and what ends the authority
	if before, rest, ok := strings.Cut(raw, "//"); ok && !strings.ContainsAny(before, "/?#@") {
		start, ends = len(raw)-len(rest), "/?#"
	} else if i := strings.IndexByte(raw, ':'); i > 0 && (strings.EqualFold(raw[:i], "http") || strings.EqualFold(raw[:i], "https")) {
		// No authority: a "//", if any, is in the path, the query or the fragment.
		start = i + 1
		for start < len(raw) && raw[start] == '/' {
			start++
		}
	}
	authority := raw[start:]
	if i := strings.IndexAny(authority, ends); i >= 0 {
		authority = authority[:i]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return raw
	}
	return raw[:start] + "[redacted]" + raw[start+at:]
}

// validPort says whether p, a URL's port, is none or one from 1 to 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// withoutSlashedPassword is what an error quotes of a URL whose authority, as
// url.Parse reads it, ends early at a port that is not one (https://ann:p/w@host:
// a password with a '/' in it): the authority's ':' and all up to the last '@'
// before any query or fragment are taken for a user name and password, and
// redacted. Used only for URLs refused for their port or for not parsing, where
// it hides, at worst, part of the path of a URL that had to be corrected anyway.
func withoutSlashedPassword(shown string) string {
	before, rest, ok := strings.Cut(shown, "//")
	if !ok || strings.ContainsAny(before, "/?#@") {
		return shown
	}
	start := len(shown) - len(rest)
	authority, _, _ := strings.Cut(rest, "/")
	if !strings.Contains(authority, ":") || strings.HasPrefix(authority, "[") {
		return shown // no port, or an IPv6 host's colons
	}
	end := rest
	if i := strings.IndexAny(end, "?#"); i >= 0 {
		end = end[:i]
	}
	at := strings.LastIndexByte(end, '@')
	if at < len(authority) {
		return shown // an '@' in the authority was withoutUserinfo's to redact
	}
	return shown[:start] + "[redacted]" + shown[start+at:]
}

// CheckOrcid returns nil when id is a well-formed ORCID iD with the right check digit.
func CheckOrcid(field, id string) error {
	if err := orcid.Check(id); err != nil {
		return invalid(field, err.Error())
	}
	return nil
}

// maxEmailLen is the longest e-mail address hookd keeps.
const maxEmailLen = 254

// CheckEmail returns nil when s is one plain e-mail address (no display name).
func CheckEmail(field, s string) error {
	if len(s) > maxEmailLen {
		return invalid(field, fmt.Sprintf("longer than %d characters", maxEmailLen))
	}
	a, err := mail.ParseAddress(s)
	// net/mail takes any other character as an address's, a line separator too,
	// which would break the line an e-mail shows the address on.
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, "\u0085\u2028\u2029") {
		return invalid(field, fmt.Sprintf("%q is not an e-mail address", s))
	}
	if err := MailDomainIDNA(s); err != nil {
		return invalid(field, err.Error())
	}
	return nil
}

// CheckMailbox is CheckEmail for an address hookd sends e-mail to (an
// organisation's technical contact or notification address, a client's address):
// its local part must be ASCII too (MailLocalASCII). A member's address, which
// e-mail only names, is CheckEmail's.
func CheckMailbox(field, s string) error {
	if err := CheckEmail(field, s); err != nil {
		return err
	}
	if err := MailLocalASCII(s); err != nil {
		return invalid(field, err.Error())
	}
	if err := MailDomainName(s); err != nil {
		return invalid(field, err.Error())
	}
	return nil
}

// MailDomainName returns nil when the domain of address (an address alone, as
// net/mail reads it: the part after its last '@') is a name, not an address: an
// address literal ("x@[10.0.0.5]", which net/mail takes) or a domain that reads
// as one ("x@127.0.0.1") has the relay connect to that address itself, an
// address of its network that hookd's guard on targets never sees. hookd sends
// e-mail to domain names only, whatever delivery.allow_private_targets says.
func MailDomainName(address string) error {
	domain := address[strings.LastIndexByte(address, '@')+1:]
	if strings.HasPrefix(domain, "[") {
		return fmt.Errorf("%q has an address literal for its domain, which would have hookd's SMTP relay connect to that address itself, and hookd sends e-mail to domain names only: give the address at its domain name", address)
	}
	if a, err := ssrf.ASCIIHost(domain); err == nil && numericDomain(strings.TrimSuffix(a, ".")) {
		return fmt.Errorf("%q has an IP address for its domain, which would have hookd's SMTP relay connect to that address itself, and hookd sends e-mail to domain names only: give the address at its domain name", address)
	}
	return nil
}

// numericDomain reports whether a domain reads as an IP address, in any form a
// resolver may take (ssrf.CheckHost's).
func numericDomain(domain string) bool {
	_, err := netip.ParseAddr(domain)
	return err == nil || ssrf.NumericHost(domain)
}

// MailLocalASCII returns nil when the local part of address (an address alone, as
// net/mail reads it: the part before its last '@') is ASCII. One in another script
// ("jöe@uni.example") goes to a relay only in UTF-8 (RFC 6531), which needs a
// relay that offers SMTPUTF8: one that does not may refuse it, bounce it later or
// pass it on mangled. Unlike a domain, it has no ASCII form to send instead, and
// hookd's relay is not asked what it offers until a message goes: such an address
// is refused where it is given, and not sent to.
func MailLocalASCII(address string) error {
	local := address[:max(strings.LastIndexByte(address, '@'), 0)]
	for i := 0; i < len(local); i++ {
		if local[i] >= utf8.RuneSelf {
			return fmt.Errorf("%q has a non-ASCII local part, which needs a relay with SMTPUTF8 (RFC 6531), and hookd sends e-mail to ASCII local parts only: give an address whose part before the @ is ASCII (a domain in another script is fine)", address)
		}
	}
	return nil
}

// MailDomainIDNA returns nil when the domain of address (an address alone, as
// net/mail reads it) is ASCII or has an IDNA form: an e-mail goes to the relay with
// its domain in that form, so one that has none ("ü-.example": a label ending in a
// hyphen) could never be sent to, or from.
func MailDomainIDNA(address string) error {
	domain := address[strings.LastIndexByte(address, '@')+1:]
	if _, err := ssrf.ASCIIHost(domain); err != nil {
		return fmt.Errorf("%q: its domain %q has no IDNA form, in which e-mail is sent (%v)", address, domain, err)
	}
	return nil
}

// Event types.
const (
	EventUpdated = "UPDATED"
	EventCreated = "CREATED"
)

// eventBit is an event type's bit in subscriptions.event_mask, as the triggers of
// schema version 14 make the mask from the types; 0 for any other name.
func eventBit(t string) int64 {
	switch t {
	case EventUpdated:
		return 1
	case EventCreated:
		return 2
	}
	return 0
}

// EventTypePrefix starts the platform API's and Standard Webhooks' name of an event
// type: "orcid.record.updated" is UPDATED.
const EventTypePrefix = "orcid.record."

// EventTypeName is the platform API's name of an event type ("orcid.record.updated").
func EventTypeName(t string) string { return EventTypePrefix + strings.ToLower(t) }

// ParseEventType reads an event type as the events API and the command line take it:
// UPDATED or CREATED in any case; "" is UPDATED.
func ParseEventType(field, s string) (string, error) {
	t := strings.ToUpper(s)
	switch t {
	case "":
		return EventUpdated, nil
	case EventUpdated, EventCreated:
		return t, nil
	}
	return "", invalid(field, fmt.Sprintf("must be UPDATED or CREATED, got %q", s))
}

// ParseEventTypeName reads an event type as a platform webhook's types list names it:
// orcid.record.updated or orcid.record.created (the prefix and the case optional).
func ParseEventTypeName(field, s string) (string, error) {
	t := strings.ToUpper(strings.TrimPrefix(strings.ToLower(s), EventTypePrefix))
	if t != EventUpdated && t != EventCreated {
		return "", invalid(field, fmt.Sprintf("%q: use %s or %s", s, EventTypeName(EventUpdated), EventTypeName(EventCreated)))
	}
	return t, nil
}

// Limits of the custom headers a webhook sends.
const (
	MaxHeaders     = 20   // custom headers of one webhook
	MaxHeaderValue = 1024 // characters of a header's value (a custom header's, a Hub apikey)
	maxHeaderName  = 128  // bytes of a header's name
)

// reservedHeaders are the headers hookd sets itself; custom headers may not override them.
var reservedHeaders = map[string]bool{
	"Authorization": true, "User-Agent": true, "Content-Type": true, "Content-Length": true, "Host": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "Apikey": true,
	"Transfer-Encoding": true, "Connection": true, "Te": true, "Trailer": true, "Upgrade": true,
	"Keep-Alive": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	// What would change how the body is read: hookd sends it as it is, at once.
	"Content-Encoding": true, "Expect": true,
}

// ReservedHeader reports whether name (in any case) is a header hookd sets itself
// or that would change how its call is read: one a custom header may not be. A
// delivery skips such a custom header even when it was stored before the name
// was reserved.
func ReservedHeader(name string) bool {
	return reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)]
}

// CheckHeaders checks custom headers hookd will send with every call: at most
// MaxHeaders, each name an RFC 9110 token that hookd does not set itself, each value
// one that CheckHeaderValue takes. A bad name is reported on field, a bad value on
// field.NAME.
func CheckHeaders(field string, h map[string]string) error {
	if len(h) > MaxHeaders {
		return invalid(field, fmt.Sprintf("at most %d custom headers, got %d", MaxHeaders, len(h)))
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names) // the first bad one, the same every time
	seen := map[string]string{}
	for _, k := range names {
		if !isToken(k) || len(k) > maxHeaderName {
			return invalid(field, fmt.Sprintf("%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~, at most %d)", k, maxHeaderName))
		}
		canonical := textproto.CanonicalMIMEHeaderKey(k)
		if other, ok := seen[canonical]; ok {
			return invalid(field+"."+k, fmt.Sprintf("is the same header as %q (header names ignore case): give it once", other))
		}
		seen[canonical] = k
		if reservedHeaders[canonical] {
			return invalid(field+"."+k, "is set by hookd and cannot be overridden")
		}
		if err := CheckSentHeaderValue(field+"."+k, h[k]); err != nil {
			return err
		}
	}
	return nil
}

// CheckSentHeaderValue is CheckHeaderValue for a value hookd sends as a header's
// whole value (a custom header, an organisation's apikey): a receiver drops the
// spaces and tabs around a header's value (RFC 9110's optional whitespace), so a
// value with them there, or of nothing else, would not arrive as it was given.
func CheckSentHeaderValue(field, v string) error {
	if err := CheckHeaderValue(field, v); err != nil {
		return err
	}
	switch trimmed := strings.Trim(v, " \t"); {
	case trimmed == "" && v != "":
		return invalid(field, "value is only spaces: a receiver would get an empty value")
	case trimmed != v:
		return invalid(field, "value begins or ends with a space or a tab, which a receiver drops: remove it")
	}
	return nil
}

// CheckHeaderValue checks a header value hookd will send: valid UTF-8, no control
// character but a tab (RFC 9110's field-value), at most MaxHeaderValue characters.
func CheckHeaderValue(field, v string) error {
	if !utf8.ValidString(v) {
		return invalid(field, "value is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > MaxHeaderValue { // characters, as the API document's maxLength counts
		return invalid(field, fmt.Sprintf("value is %d characters long; the limit is %d", n, MaxHeaderValue))
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return invalid(field, fmt.Sprintf("value has a control character (0x%02x) at byte %d", c, i))
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token: one or more tchar.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// CheckText checks free text a person gave (a description, a name): valid UTF-8,
// no control character but a tab or a line break, at most max characters (as the
// API document's maxLength counts them).
func CheckText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, fmt.Sprintf("is %d characters long; the limit is %d", n, max))
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return invalid(field, fmt.Sprintf("has a control character (%U)", r))
		}
	}
	return nil
}

// CheckLine is CheckText for text that must stay on one line (a name, an eppn: they
// go into e-mail hookd sends and sentences of the console): no line break either,
// nor U+2028/U+2029, nor a direction control or zero-width character (CheckShown).
func CheckLine(field, s string, max int) error {
	if err := checkOneLine(field, s, max); err != nil {
		return err
	}
	return CheckShown(field, s)
}

// checkOneLine is CheckLine but for CheckShown, which a value an older hookd
// stored is spared when it is given again unchanged (checkShownKept).
func checkOneLine(field, s string, max int) error {
	if err := CheckText(field, s, max); err != nil {
		return err
	}
	if i := strings.IndexAny(s, "\r\n\u2028\u2029"); i >= 0 {
		return invalid(field, fmt.Sprintf("has a line break at byte %d; it must be one line", i))
	}
	return nil
}

// CheckShown refuses text that others read (a description, a name: in the console,
// the command line, e-mails) with a character in it that changes how the text
// shows without showing itself, naming it and where it is: a direction control
// (U+202A…U+202E, U+2066…U+2069, U+200E, U+200F, U+061C) turns the text after it
// around; a zero-width character (U+200B, U+2060, U+FEFF, and U+200C or U+200D
// where they join nothing), or another character that shows as nothing where it
// is (hiddenChar), makes two texts that differ look alike.
func CheckShown(field, s string) error {
	i, r := hiddenChar(s)
	switch {
	case i < 0:
		return nil
	case unicode.In(r, unicode.Bidi_Control):
		return invalid(field, fmt.Sprintf("has a direction control character (U+%04X) at byte %d", r, i))
	case r == '\u200b', r == '\u2060', r == '\ufeff', r == '\u200c', r == '\u200d':
		return invalid(field, fmt.Sprintf("has a zero-width character (U+%04X) at byte %d, which shows as nothing: remove it", r, i))
	default:
		return invalid(field, fmt.Sprintf("has an invisible character (U+%04X) at byte %d, which shows as nothing: remove it", r, i))
	}
}

// checkShownKept is CheckShown for a new value of a field the object has as
// stored: the value it has already is taken, as an older hookd, which took such
// characters, stored it (a PATCH or a sync sends back what hookd answered); a
// new or changed value is checked.
func checkShownKept(field, s, stored string) error {
	if s == stored {
		return nil
	}
	return CheckShown(field, s)
}

// hasHidden reports whether CheckShown would refuse s.
func hasHidden(s string) bool {
	i, _ := hiddenChar(s)
	return i >= 0
}

// hiddenChar finds the first character of s that CheckShown refuses, and where it
// is (-1 for none): a direction control, and a character that shows as nothing
// (ignorable) where nothing it belongs with stands beside it. Those taken where
// real text needs them:
//
//   - The zero-width non-joiner and joiner (U+200C, U+200D), between two
//     characters beyond ASCII that are letters, marks or symbols: Persian writes
//     words with the one, Indic scripts and emoji sequences (a woman, U+200D, a
//     laptop) need the other there; and after a virama, whatever follows: they
//     choose the form of the consonant before it, at a word's end too (Malayalam
//     written before its chillu letters had code points of their own ends
//     "അരുണ്‍", Arun, with NA, VIRAMA, ZWJ). Elsewhere, beside ASCII, a space,
//     punctuation or the text's ends, they join nothing.
//   - A variation selector (U+FE00…U+FE0F) right after a character beyond ASCII
//     that shows (a letter, mark, number, punctuation or symbol): it chooses an
//     emoji's or a text's look (❤ U+FE0F, ‼ U+FE0F), a CJK compatibility
//     ideograph's, a mathematical symbol's; and U+FE0F between a digit, # or *
//     and U+20E3, a keycap (1️⃣). Not after ASCII otherwise, a space, the text's
//     start or another selector: there it varies nothing, and a run of them
//     after one character carries text that does not show.
//   - An ideographic variation selector (U+E0100…U+E01EF) right after a CJK
//     ideograph, whose registered variant it chooses (葛 U+E0100); the
//     sequences registered are of ideographs only.
//   - Mongolian's free variation selectors (U+180B…U+180D, U+180F) right after
//     a Mongolian letter, whose form they choose, and its vowel separator
//     (U+180E) between two Mongolian letters, where it chooses the final vowel's
//     form and shows as a gap; elsewhere, in Latin text, they show nothing.
//   - The combining grapheme joiner (U+034F) after a letter or a mark and before
//     a combining mark: it keeps marks in the order written (Hebrew's points, a
//     diaeresis told from an umlaut), which the marks show. Between two letters
//     (a hint to collation) it shows nothing.
//   - Tag characters (U+E0020…U+E007F) in a flag of a region's subdivision: the
//     black flag (U+1F3F4), three to seven tag letters or digits (a Unicode
//     subdivision code, gbeng) and the cancel tag (U+E007F): the flag of
//     England, of Scotland, of Wales. Elsewhere they spell ASCII that does not
//     show (an instruction to a program that reads the text).
//
// Refused wherever they are: the soft hyphen (U+00AD), which shows only where a
// line happens to break at it, and elsewhere leaves two texts that differ
// looking alike (a name is one line); the Hangul fillers
// (U+115F, U+1160, U+3164, U+FFA0), which stand for a part missing from a
// syllable and show as a blank or nothing: Korean, written in syllables
// (U+AC00…U+D7A3) or their conjoining jamo, has none, and a name of fillers
// only reads as empty; the invisible mathematical operators (U+2061…U+2064);
// Khmer's inherent vowels (U+17B4, U+17B5), which Unicode says not to use; the
// deprecated format characters (U+206A…U+206F); the interlinear annotation
// characters (U+FFF9…U+FFFB), for use within a program, which show nothing of
// what they mark up; the shorthand and musical format controls; and the code
// points Unicode reserves to show as nothing when they are assigned.
func hiddenChar(s string) (int, rune) {
	joins := func(r rune) bool { return r >= utf8.RuneSelf && unicode.In(r, unicode.L, unicode.M, unicode.S) }
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !ignorable(r) && r != '\U0001F3F4' { // a direction control or a zero-width one is a format character
			i += n
			continue
		}
		var before, after rune // 0 at the text's ends
		if i > 0 {
			before, _ = utf8.DecodeLastRuneInString(s[:i])
		}
		if i+n < len(s) {
			after, _ = utf8.DecodeRuneInString(s[i+n:])
		}
		switch {
		case unicode.In(r, unicode.Bidi_Control), r == '\u200b', r == '\u2060', r == '\ufeff':
			return i, r
		case r == '\u200c' || r == '\u200d':
			if !isVirama(before) && (!joins(before) || !joins(after)) {
				return i, r
			}
		case r == '\U0001F3F4':
			n += flagTags(s[i+n:])
		case ignorable(r) && !varies(before, r, after):
			return i, r
		}
		i += n
	}
	return -1, 0
}

// ignorable reports whether r is a character Unicode makes to show as nothing:
// of its Default_Ignorable_Code_Point property (the format characters, the
// variation selectors, the Hangul fillers and the code points reserved for
// more of them), and the interlinear annotation characters (U+FFF9…U+FFFB),
// which Unicode leaves out of it, as a program that knows them shows them as
// annotations, but which are for use within a program; not the format
// characters that show: the prepended concatenation marks (the Arabic number
// sign, U+0600) and the Egyptian hieroglyph format controls (U+13430…U+1343F),
// which arrange the hieroglyphs beside them in a group.
func ignorable(r rune) bool {
	return r >= utf8.RuneSelf && unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) &&
		!unicode.In(r, unicode.Prepended_Concatenation_Mark, unicode.Egyptian_Hieroglyphs)
}

// varies reports whether ignorable r, between before and after (0 at the
// text's ends), is part of a sequence that shows (hiddenChar): a variation
// selector after a character it chooses a form of, Mongolian's vowel
// separator between two letters, the combining grapheme joiner before a mark.
func varies(before, r, after rune) bool {
	switch {
	case r >= '\ufe00' && r <= '\ufe0f':
		return before >= utf8.RuneSelf && unicode.In(before, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) && !ignorable(before) ||
			r == '\ufe0f' && after == '\u20e3' && (before >= '0' && before <= '9' || before == '#' || before == '*')
	case r >= '\U000E0100' && r <= '\U000E01EF':
		return unicode.Is(unicode.Han, before)
	case r == '\u180e':
		return mongolianLetter(before) && mongolianLetter(after)
	case r >= '\u180b' && r <= '\u180f':
		return mongolianLetter(before)
	case r == '\u034f':
		return unicode.In(before, unicode.L, unicode.M) && !ignorable(before) && unicode.Is(unicode.M, after) && !ignorable(after)
	}
	return false
}

func mongolianLetter(r rune) bool { return unicode.Is(unicode.Mongolian, r) && unicode.IsLetter(r) }

// flagTags is the length in bytes of the tag characters at the start of s that
// make, after the black flag (U+1F3F4), the flag of a region's subdivision:
// three to seven tag letters (small) or digits, a Unicode subdivision code
// (gbeng, England), and the cancel tag (U+E007F); 0 when those there do not.
func flagTags(s string) int {
	n := 0
	for i, r := range s {
		switch {
		case (r >= '\U000E0030' && r <= '\U000E0039' || r >= '\U000E0061' && r <= '\U000E007A') && n < 7:
			n++
		case r == '\U000E007F' && n >= 3:
			return i + utf8.RuneLen(r)
		default:
			return 0
		}
	}
	return 0
}

// isVirama reports whether r is a virama (or a script's like sign: Sinhala's al-lakuna,
// Khmer's coeng), a mark of canonical combining class 9.
func isVirama(r rune) bool {
	return r >= utf8.RuneSelf && unicode.Is(unicode.Mn, r) && norm.NFD.PropertiesString(string(r)).CCC() == 9
}

// OrWords is words as a list in a sentence: "a, b or c" (the states, formats or
// statuses a value may be, in an error's words).
func OrWords(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
