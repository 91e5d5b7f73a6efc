package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// writeConfig writes a config file into a temporary folder and returns its path.
func writeConfig(tb testing.TB, body string) string {
	tb.Helper()
	is := is.New(tb)
	path := filepath.Join(tb.TempDir(), "hookd.toml")
	is.NoErr(os.WriteFile(path, []byte(body), 0o600)) // write config
	return path
}

func TestDefaultConfig(t *testing.T) {
	is := is.New(t)
	c := DefaultConfig()
	is.NoErr(c.Validate())                                                       // the defaults are valid
	is.Equal(c.HTTP.Listen, "127.0.0.1:8080")                                    // documented default
	is.Equal(c.HTTP.MaxConnections, 1024)                                        // documented default
	is.Equal(c.Store.Path, "hookd.db")                                           // documented default
	is.Equal(c.Store.Synchronous, "full")                                        // documented default
	is.Equal(c.Store.Checkpoints, "hookd")                                       // hookd checkpoints its own WAL
	is.Equal(c.Auth.TokenTTL.Duration, 631138518*time.Second)                    // ORCID's expires_in
	is.Equal(c.Delivery.CoalesceWindow.Duration, 5*time.Minute)                  // ORCID's "every five minutes"
	is.Equal(c.Delivery.Timeout.Duration, 20*time.Second)                        // ORCID's 20 s
	is.Equal(c.Delivery.Workers, 64)                                             // documented default
	is.Equal(c.Delivery.PerHost, 8)                                              // documented default
	is.Equal(c.Delivery.AllowPrivateTargets, false)                              // SSRF guard on
	is.Equal(c.Inbox.Enabled, false)                                             // no inbox in serve unless asked
	is.Equal(c.InboxLimits(), store.InboxLimits{PerInbox: 200, Total: 2000})     // documented bounds
	is.Equal(c.FanOutCaps(), store.FanOutCaps{EveryRecord: 100, PerRecord: 100}) // documented caps
	is.Equal(c.Log.Format, "auto")                                               // documented default
	is.Equal(c.SecretKeyPath(), "hookd.key")                                     // key beside the database
	is.Equal(c.PublicBase("0.0.0.0:8080"), "http://localhost:8080")              // a usable URL from a wildcard listen
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // a substring of the error; "" means the file loads
	}{
		{"empty file", "", ""},
		{"every section", `
[http]
listen = "127.0.0.1:0"
base_path = "/orcid-api-web"
public_url = "https://hookd.example.org"
max_connections = 100
[store]
path = "x.db"
synchronous = "normal"
checkpoints = "external"
[auth]
token_ttl = "24h"
[delivery]
tick = "250ms"
coalesce_window = "0s"
timeout = "5s"
retry_base = "10s"
retry_max_delay = "1h"
give_up_after = "24h"
disable_after = "48h"
workers = 4
per_host = 2
allow_private_targets = true
retention = "24h"
max_every_record_webhooks = 5
max_webhooks_per_record = 3
[audit]
retention = "720h"
[email]
smtp_addr = "127.0.0.1:2525"
from = "hookd@example.org"
starttls = false
[log]
level = "debug"
format = "json"
[inbox]
enabled = true
keep_per_inbox = 10
keep_total = 100
`, ""},
		{"log format and level in capitals", "[log]\nformat = \"JSON\"\nlevel = \"WARN\"\n", ""},
		{"unknown key", "[http]\nlisen = \"x\"\n", "unknown key http.lisen (did you mean http.listen?)"},
		{"unknown section", "[htp]\nlisten = \"127.0.0.1:1\"\n", "unknown key htp (did you mean http?), htp.listen (did you mean http.listen?)"},
		{"unknown top-level key", "listen = \"127.0.0.1:1\"\n", "unknown key listen (did you mean http.listen?)"},
		{"key in another table", "[delivery]\npath = \"x.db\"\n", "unknown key delivery.path (did you mean store.path?)"},
		{"key not in lower case", "[Store]\nPath = \"x.db\"\n", "unknown key Store (keys are lower case: store)"},
		{"zero timeout", "[delivery]\ntimeout = \"0s\"\n", "delivery.timeout"},
		{"negative tick", "[delivery]\ntick = \"-1s\"\n", "delivery.tick"},
		{"tick of an hour", "[delivery]\ntick = \"1h0m0s\"\n", ""}, // as the load tool's -tick 1h writes it: a long tick only waits
		{"tick of 10ms", "[delivery]\ntick = \"10ms\"\n", ""},
		{"tick of a nanosecond", "[delivery]\ntick = \"1ns\"\n", ""}, // warned of (TestShortDurationsWarned), as an older hookd took it
		{"zero tick", "[delivery]\ntick = \"0s\"\n", "delivery.tick: must be > 0, got \"0s\""},
		{"negative coalesce window", "[delivery]\ncoalesce_window = \"-1m\"\n", "delivery.coalesce_window"},
		{"zero workers", "[delivery]\nworkers = 0\n", "delivery.workers"},
		{"per_host above workers", "[delivery]\nworkers = 2\nper_host = 3\n", "delivery.per_host"},
		{"no webhook for every record", "[delivery]\nmax_every_record_webhooks = 0\n", "delivery.max_every_record_webhooks: must be at least 1, got 0"},
		{"negative webhooks per record", "[delivery]\nmax_webhooks_per_record = -1\n", "delivery.max_webhooks_per_record: must be at least 1, got -1"},
		{"webhooks per record in a fraction", "[delivery]\nmax_webhooks_per_record = 1.5\n", "delivery.max_webhooks_per_record: must be a whole number"},
		{"max delay below base", "[delivery]\nretry_base = \"1h\"\nretry_max_delay = \"1m\"\n", "delivery.retry_max_delay"},
		{"zero token ttl", "[auth]\ntoken_ttl = \"0s\"\n", "auth.token_ttl"},
		{"zero audit retention", "[audit]\nretention = \"0s\"\n", "audit.retention"},
		{"synchronous off", "[store]\nsynchronous = \"off\"\n", "store.synchronous"},
		{"checkpoints by nobody", "[store]\ncheckpoints = \"none\"\n", "store.checkpoints"},
		{"empty store path", "[store]\npath = \"\"\n", "store.path"},
		{"xml log format", "[log]\nformat = \"xml\"\n", "log.format"},
		{"bad log level", "[log]\nlevel = \"loud\"\n", "log.level"},
		{"base path without slash", "[http]\nbase_path = \"nope\"\n", "http.base_path"},
		{"base path with trailing slash", "[http]\nbase_path = \"/orcid-api-web/\"\n", "http.base_path"},
		{"no connections", "[http]\nmax_connections = 0\n", `http.max_connections: must be at least 1, got 0: it is how many connections hookd holds open at once (default 1024); 0 is not "no limit", and would refuse every one`},
		{"negative connections", "[http]\nmax_connections = -1\n", "http.max_connections: must be at least 1, got -1"},
		{"connections as a string", "[http]\nmax_connections = \"1024\"\n", "http.max_connections: must be a whole number, got a string (line 2)"},
		{"one connection", "[http]\nmax_connections = 1\n", ""},
		{"listen without port", "[http]\nlisten = \"localhost\"\n", "http.listen"},
		{"listen on a port alone", "[http]\nlisten = \"18421\"\n", `http.listen: must be host:port with a port from 0 to 65535 (e.g. "127.0.0.1:8080"), got "18421": a port alone; write "127.0.0.1:18421" for this machine only, or ":18421" for every interface`},
		{"smtp on a port alone", "[email]\nsmtp_addr = \"587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: must be host:port with a port from 1 to 65535 (e.g. "smtp.example.org:587"), got "587": a port alone; write the relay's host before it, "smtp.example.org:587" ("127.0.0.1:587" for one on this machine)`},
		{"listen on a port that is a word", "[http]\nlisten = \"127.0.0.1:abc\"\n", "http.listen"},
		{"listen on a port past 65535", "[http]\nlisten = \":99999\"\n", "http.listen"},
		{"smtp on a port that is a word", "[email]\nsmtp_addr = \"smtp.example.org:abc\"\nfrom = \"hookd@example.org\"\n", "email.smtp_addr"},
		{"public url on a port past 65535", "[http]\npublic_url = \"https://hookd.example.org:99999\"\n", "http.public_url"},
		{"public url whose host is no domain name", "[http]\npublic_url = \"https://a_ü.example\"\n", `http.public_url: its host "a_ü.example" is not a domain name a browser can reach: idna: disallowed rune U+005F`},
		{"base path among the console's routes", "[http]\nbase_path = \"/console\"\n", "http.base_path: \"/console\" puts the ORCID routes among hookd's own"},
		{"base path among the inbox's routes", "[http]\nbase_path = \"/inbox/x\"\n", "http.base_path"},
		{"base path among the relay's routes", "[http]\nbase_path = \"/relay\"\n", "http.base_path"},
		{"base path among the API's routes", "[http]\nbase_path = \"/api\"\n", "http.base_path: \"/api\" puts the ORCID routes among hookd's own API"},
		{"base path under the API's routes", "[http]\nbase_path = \"/api/orcid\"\n", "http.base_path"},
		{"base path with a parameter", "[http]\nbase_path = \"/:x\"\n", "http.base_path: must not hold ':' or '*'"},
		{"relative public url", "[http]\npublic_url = \"hookd.example.org\"\n", "http.public_url"},
		{"base path with dot segments", "[http]\nbase_path = \"/a/../b\"\n", "http.base_path: must be a clean path"},
		{"base path with a doubled slash", "[http]\nbase_path = \"/a//b\"\n", "http.base_path: must be a clean path"},
		{"upstream url with a password", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://user:S3cret@api.orcid.org/v3.0\"\ntoken_url = \"https://orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", "upstream.api_url: must not hold a user name or password"},
		{"upstream token url with a password", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.orcid.org/v3.0\"\ntoken_url = \"https://user:S3cret@orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", "upstream.token_url: must not hold a user name or password"},
		{"smtp password without a user name", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@example.org\"\npassword_file = \"pw\"\n", "email.username: must be set when email.password_file is"},
		{"smtp user name without a password", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@example.org\"\nusername = \"hookd\"\n", "email.password_file: must be set when email.username is"},
		{"key file the database's own", "[store]\npath = \"data.key\"\n", "auth.secret_key_file: is the database's own file"},
		{"public url with a password", "[http]\npublic_url = \"https://ops:hunter2@hookd.example.org\"\n", "http.public_url: must not hold a user name or password"},
		{"public url with a password that does not parse", "[http]\npublic_url = \"https://ops:hunter2^x@hookd.example.org\"\n", `got "https://…@hookd.example.org"`},
		{"public url with a password holding a slash", "[http]\npublic_url = \"https://ops:hunter2/x?y#z@hookd.example.org\"\n", `got "https://…@hookd.example.org"`},
		{"upstream url with a password holding a slash", "[upstream]\napi_url = \"https://app:hunter2/x@api.orcid.example\"\ntoken_url = \"https://orcid.example/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"s\"\n[http]\npublic_url = \"https://h.example\"\n", `got "https://…@api.orcid.example"`},
		{"public url with a password and a bad port", "[http]\npublic_url = \"https://ops:hunter2@hookd.example.org:https\"\n", `got "https://…@hookd.example.org:https"`},
		{"a trusted proxy that is a name", "[http]\ntrusted_proxies = [\"127.0.0.1\", \"proxy.example.org\"]\n", "http.trusted_proxies: \"proxy.example.org\" is not an address"},
		{"a trusted proxy as a string", "[http]\ntrusted_proxies = \"127.0.0.1\"\n", "http.trusted_proxies"},
		{"duration that does not parse", "[delivery]\nretry_base = \"soon\"\n", "delivery.retry_base"},
		{"duration without unit", "[auth]\ntoken_ttl = \"20\"\n", "auth.token_ttl"},
		{"duration as a number", "[delivery]\ntimeout = 20\n", "delivery.timeout"},
		{"string for a number", "[delivery]\nworkers = \"many\"\n", "delivery.workers: must be a whole number, got a string (line 2)"},
		{"number for a string", "[store]\npath = 5\n", "store.path: must be a string, got a whole number (line 2)"},
		{"fraction for a number", "[delivery]\nworkers = 1.5\n", "delivery.workers: must be a whole number, got a number with a fraction (line 2)"},
		{"string for true or false", "[delivery]\npaused = \"yes\"\n", "delivery.paused: must be true or false, got a string (line 2)"},
		{"list for a string", "[log]\nlevel = [\"info\"]\n", "log.level: must be a string, got a list (line 2)"},
		{"number for a section", "store = 5\n", "store: must be a section ([store]), got a whole number (line 1)"},
		{"section for a string", "[store.path]\nx = 1\n", "store.path: must be a string, got a section (line 1)"},
		{"smtp without from", "[email]\nsmtp_addr = \"127.0.0.1:25\"\n", "email.from"},
		// What no e-mail could be sent with: each would fail and be retried for days.
		{"smtp with a space in its host", "[email]\nsmtp_addr = \"mail example.org:587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: its host "mail example.org" has white space or a control character in it: must be host:port with the relay's name or address (e.g. "smtp.example.org:587"), got "mail example.org:587"`},
		{"smtp with a space before its host", "[email]\nsmtp_addr = \" smtp.example.org:587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: its host " smtp.example.org" has white space`},
		{"smtp with a tab in its host", "[email]\nsmtp_addr = \"smtp\\t.example.org:587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: its host "smtp\t.example.org" has white space`},
		{"smtp without a host", "[email]\nsmtp_addr = \":25\"\nfrom = \"hookd@example.org\"\n", "email.smtp_addr: must be host:port"},
		// A relay written as a URL with its sign-in: refused without showing the password.
		{"smtp as a URL with a password", "[email]\nsmtp_addr = \"smtp://hookd:hunter2@smtp.example.org:587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: must be host:port alone, without a user name or password (hookd signs in with email.username and email.password_file), got "smtp://…@smtp.example.org:587"`},
		{"smtp with a password", "[email]\nsmtp_addr = \"hookd:hunter2@smtp.example.org:587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: must be host:port alone`},
		{"smtp with a user name", "[email]\nsmtp_addr = \"hookd@smtp.example.org:587\"\nfrom = \"hookd@example.org\"\n", `email.smtp_addr: must be host:port alone`},
		{"from with two @", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@uni@example.org\"\n", "email.from: must be one e-mail address"},
		{"from without a domain", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@\"\n", "email.from"},
		{"from with an unclosed bracket", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd <hookd@example.org\"\n", "email.from"},
		{"from as two addresses", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@example.org, ops@example.org\"\n", "email.from"},
		{"from with a line break", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@example.org\\r\\nBcc: ops@example.org\"\n", "email.from"},
		{"from with a name", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"ORCID Hub <hookd@example.org>\"\n", ""},
		{"from at a domain with no IDNA form", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@ü-.example\"\n", `email.from: "hookd@ü-.example": its domain "ü-.example" has no IDNA form`},
		{"from at a domain in another script", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@universität.example\"\n", ""},
		{"from with a local part beyond ASCII", "[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"ORCID Hub <höokd@uni.example>\"\n", `email.from: "höokd@uni.example" has a non-ASCII local part, which needs a relay with SMTPUTF8`},
		{"from with a name beyond ASCII", "[email]\nsmtp_addr = \"smtp.example.org:587\"\nfrom = \"Universität <hookd@example.org>\"\n", ""},
		{"upstream api of production, token of the sandbox", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.orcid.org\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.token_url: must be of the same ORCID environment as upstream.api_url: sandbox.orcid.org is ORCID's sandbox, but upstream.api_url's api.orcid.org is its production, whose API refuses the sandbox's tokens (did you mean token_url = "https://orcid.org/oauth/token"? or, for the sandbox, api_url = "https://api.sandbox.orcid.org")`},
		{"upstream api of the sandbox, token of production", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"https://api.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`did you mean token_url = "https://sandbox.orcid.org/oauth/token"?`},
		{"upstream of the sandbox, token at its API's host", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"https://api.sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", ""},
		{"upstream of production", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.orcid.org\"\ntoken_url = \"https://orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", ""},
		{"upstream at a stand-in, token at ORCID", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://orcid-proxy.uni.example\"\ntoken_url = \"https://orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", ""},
		{"upstream token url of ORCID over http", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"http://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.token_url: must be https at ORCID's sandbox (sandbox.orcid.org): over http the client secret (in every token request) would cross the network in clear (did you mean "https://sandbox.orcid.org/oauth/token"?)`},
		{"upstream api url of ORCID over http", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"http://API.orcid.org:80\"\ntoken_url = \"https://orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.api_url: must be https at ORCID's production (API.orcid.org): over http hookd's token for ORCID's API (in every registration) would cross the network in clear (did you mean "https://API.orcid.org"?)`},
		{"upstream at a stand-in over http", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"http://127.0.0.1:8081\"\ntoken_url = \"http://127.0.0.1:8081/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", ""},
		// Every registration would fail: no port to dial, or the record's path
		// appended into a query.
		{"upstream api with a port past 65535", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org:99999\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.api_url: must have a port from 1 to 65535, got "https://api.sandbox.orcid.org:99999"`},
		{"upstream token url with port 0", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"https://sandbox.orcid.org:0/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.token_url: must have a port from 1 to 65535, got "https://sandbox.orcid.org:0/oauth/token"`},
		{"upstream api with a query", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org/v3.0?lang=en\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.api_url: must have no query or fragment (hookd appends each record's /{orcid}/webhook/… to it), got "https://api.sandbox.orcid.org/v3.0?…"`},
		// A query may hold a key: it is not shown (hunter2 is never in an error).
		{"upstream api with a key in its query", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://orcid-proxy.uni.example/?apikey=hunter2\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.api_url: must have no query or fragment (hookd appends each record's /{orcid}/webhook/… to it), got "https://orcid-proxy.uni.example/?…"`},
		{"upstream token url of ORCID over http with a key in its query", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"http://sandbox.orcid.org/oauth/token?key=hunter2\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`(did you mean "https://sandbox.orcid.org/oauth/token?…"?)`},
		{"upstream token url without its scheme, a key in its query", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"orcid-proxy.uni.example/oauth/token?key=hunter2\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.token_url: must be an absolute http(s) URL, got "orcid-proxy.uni.example/oauth/token?…"`},
		{"upstream api url that does not parse, a key in its query", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://orcid proxy.uni.example/?apikey=hunter2\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			`upstream.api_url: must be an absolute http(s) URL, got "https://orcid proxy.uni.example/?…"`},
		{"upstream api with a fragment", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org/#\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			"upstream.api_url: must have no query or fragment"},
		{"upstream api without a host", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://:443\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n",
			"upstream.api_url: must be an absolute http(s) URL"},
		{"upstream at a port of its own", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"http://127.0.0.1:8099/v3.0/\"\ntoken_url = \"http://127.0.0.1:8099/oauth/token?realm=x\"\nclient_id = \"APP-1\"\nclient_secret_file = \"x\"\n", ""},
		// Sent as it is, refused by the token endpoint as if the secret were wrong.
		{"upstream client id with a space copied", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"APP-1 \"\nclient_secret_file = \"x\"\n",
			`upstream.client_id: must have no white space or control character (ORCID's client ids are APP-…), got "APP-1 "`},
		{"upstream client id with a line break", "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\ntoken_url = \"https://sandbox.orcid.org/oauth/token\"\nclient_id = \"\"\"\nAPP-1\n\"\"\"\nclient_secret_file = \"x\"\n",
			`upstream.client_id: must have no white space or control character (ORCID's client ids are APP-…), got "APP-1\n"`},
		{"upstream without the rest", "[upstream]\napi_url = \"https://api.sandbox.orcid.org\"\n", "upstream.token_url"},
		{"upstream settings without its api_url", "[upstream]\nclient_id = \"APP-1\"\n", "upstream.api_url: must be set when"},
		{"inbox keeps nothing", "[inbox]\nkeep_total = 0\n", "inbox.keep_total"},
		{"inbox keeps too much", "[inbox]\nkeep_total = 100001\n", "inbox.keep_total"},
		{"inbox keeps more per inbox than in all", "[inbox]\nkeep_total = 10\nkeep_per_inbox = 11\n", "inbox.keep_per_inbox"},
		{"not TOML", "[http\nlisten = 1\n", "line"},
		{"cut off in an escape", "\"000\\", "(at the end of the file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			path := writeConfig(t, tt.body)
			_, err := LoadConfig(path)
			if tt.wantErr == "" {
				is.NoErr(err) // loads
				return
			}
			is.True(err != nil) // refused
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Logf("error: %v", err)
			}
			is.True(strings.Contains(err.Error(), tt.wantErr))  // the error names the key
			is.True(strings.Contains(err.Error(), path))        // and the file
			is.True(!strings.Contains(err.Error(), "hunter2"))  // never a password
			is.True(!strings.Contains(err.Error(), "struct {")) // nor Go's types
		})
	}
}

// TestConfigSyntaxErrorLine: a syntax error names the line at fault, also where
// the decoder stopped at the line break that ends it (a table's header without
// its "]", whose line the decoder counts as the next one), and a header's error
// is not given the key before it as its place.
func TestConfigSyntaxErrorLine(t *testing.T) {
	for _, tt := range []struct{ name, body, want, notWant string }{
		{"header cut at the line break", "[http\nlisten = \"127.0.0.1:8080\"\n", "(line 1, column 6)", "line 2"},
		{"after a byte order mark", "\xef\xbb\xbf[http\nlisten = \"127.0.0.1:8080\"\n", "(line 1, column 6)", "line 2"},
		{"header after a table's keys", "[http]\nlisten = \"127.0.0.1:8080\"\n[store\npath = \"x.db\"\n", "(line 3, column 7)", "http"},
		{"header with a space", "[http]\nlisten = \"127.0.0.1:8080\"\n[st ore]\n", "(line 3, column 5)", "http"},
		{"a value cut off", "[http]\n\nlisten = \n[store]\n", "http.listen: expected value but found '\\n' instead (line 3)", "line 4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := LoadConfig(writeConfig(t, tt.body))
			is.True(err != nil) // refused
			t.Log(err)
			is.True(strings.Contains(err.Error(), tt.want))     // the line at fault
			is.True(!strings.Contains(err.Error(), tt.notWant)) // not the next one, nor the key before
		})
	}
}

// TestConfigUnquotedText: a text value written without its quotes (a duration,
// an address, a path, a word), which TOML reads as a number cut short or a word it
// does not know, is refused saying to quote it, with the line to write; a value
// TOML reads keeps the error of what is wrong with it, and a key whose value is
// no text is not told to quote it.
func TestConfigUnquotedText(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"[delivery]\ntimeout = 20s\n", `delivery.timeout: 20s is text, which TOML writes in quotes: timeout = "20s" (line 2)`},
		{"[delivery]\ncoalesce_window = 0s   # at once\n", `delivery.coalesce_window: 0s is text, which TOML writes in quotes: coalesce_window = "0s" (line 2)`},
		{"[http]\nlisten = 127.0.0.1:8080\n", `http.listen: 127.0.0.1:8080 is text, which TOML writes in quotes: listen = "127.0.0.1:8080" (line 2)`},
		{"[log]\nformat = \"json\"\nlevel = debug\n", `log.level: debug is text, which TOML writes in quotes: level = "debug" (line 3)`},
		{"[store]\npath = /var/lib/hookd/hookd.db\n", `store.path: /var/lib/hookd/hookd.db is text, which TOML writes in quotes: path = "/var/lib/hookd/hookd.db" (line 2)`},
		{"[delivery]\ntimeout = 20\n", `delivery.timeout: not a duration`},
		{"[delivery]\nworkers = 6x\n", `but got 'x' instead (line 2)`},
	} {
		t.Run(tt.body, func(t *testing.T) {
			is := is.New(t)
			_, err := LoadConfig(writeConfig(t, tt.body))
			is.True(err != nil) // refused
			t.Log(err)
			is.True(strings.Contains(err.Error(), tt.want)) // saying what to write
			if !strings.Contains(tt.want, "is text") {
				is.True(!strings.Contains(err.Error(), "quotes")) // not told to quote it
			}
		})
	}
}

// TestConfigUnquotedURLShowsNoSecret: a URL written without its quotes with a
// user name and password in it (or, upstream, a key in its query) is told to be
// quoted without them, as the check of a quoted one tells it: the error, which
// check-config prints to the journal as the unit's ExecStartPre, showed the
// password twice.
func TestConfigUnquotedURLShowsNoSecret(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"[email]\nsmtp_addr = smtp://hookd:s3cret-pw@smtp.uni.example:587\n",
			`email.smtp_addr: smtp://…@smtp.uni.example:587 is text, which TOML writes in quotes: smtp_addr = "smtp://…@smtp.uni.example:587" (line 2)`},
		{"[email]\nsmtp_addr = hookd:s3cret-pw@smtp.uni.example:587\n", `smtp_addr = "…@smtp.uni.example:587" (line 2)`},
		{"[upstream]\ntoken_url = https://APP-1:s3cret-pw@sandbox.orcid.org/oauth/token\n",
			`upstream.token_url: https://…@sandbox.orcid.org/oauth/token is text, which TOML writes in quotes: token_url = "https://…@sandbox.orcid.org/oauth/token" (line 2)`},
		{"[upstream]\ntoken_url = https://proxy.example/token?key=s3cret-pw\n", `token_url = "https://proxy.example/token?…" (line 2)`},
		// An '@' in the query is no user name's end: the key after it is not shown.
		{"[upstream]\ntoken_url = https://proxy.example/token?user=hookd@uni.example&key=s3cret-pw\n", `token_url = "https://…" (line 2)`},
		{"[upstream]\napi_url = https://proxy.example/?user=hookd@uni.example&key=s3cret-pw\n", `api_url = "https://…" (line 2)`},
		{"[upstream]\napi_url = https://u:s3cret-pw@api.sandbox.orcid.org\n", `api_url = "https://…@api.sandbox.orcid.org" (line 2)`},
		{"[http]\npublic_url = https://u:s3cret-pw@hookd.example.org\n", `public_url = "https://…@hookd.example.org" (line 2)`},
	} {
		t.Run(tt.body, func(t *testing.T) {
			is := is.New(t)
			_, err := LoadConfig(writeConfig(t, tt.body))
			is.True(err != nil) // refused
			t.Log(err)
			is.True(strings.Contains(err.Error(), tt.want))      // saying what to write
			is.True(!strings.Contains(err.Error(), "s3cret-pw")) // without the secret
		})
	}
}

// TestSuggestKey: an unknown key is given the key it was likely meant to be: that
// name in its own table, or one a typo or two away; none when nothing is close.
func TestSuggestKey(t *testing.T) {
	for _, tt := range []struct{ unknown, want string }{
		{"listen", "http.listen"},
		{"delivery.path", "store.path"},
		{"delivery.coalesce_windw", "delivery.coalesce_window"},
		{"htp", "http"},
		{"htp.listen", "http.listen"},
		{"inbox.enable", "inbox.enabled"},
		{"delivery.retries", ""},
		{"http.port", "http.listen"}, // other servers' names for hookd's keys
		{"http.host", "http.listen"},
		{"port", "http.listen"},
		{"store.database", "store.path"},
		{"store.db", "store.path"},
		{"delivery.give_up", ""},
		{"email.host", ""}, // not http's
		{"upstream.port", ""},
	} {
		t.Run(tt.unknown, func(t *testing.T) {
			is := is.New(t)
			is.Equal(suggestKey(tt.unknown), tt.want) // the key meant, or none
		})
	}
}

// TestConfigErrorsInOrder: a file with several wrong values gets them all, and in
// the same order every time.
func TestConfigErrorsInOrder(t *testing.T) {
	is := is.New(t)
	path := writeConfig(t, "[http]\npublic_url = \"https://hookd.example.org\"\n[upstream]\napi_url = \"ftp://a\"\ntoken_url = \"ftp://b\"\n"+
		"client_id = \"APP-1\"\nclient_secret_file = \"no-such-file\"\n[log]\nlevel = \"loud\"\n")
	_, first := LoadConfig(path)
	is.True(first != nil) // refused
	var keys []string
	for _, line := range strings.Split(first.Error(), "\n") {
		key, _, _ := strings.Cut(strings.TrimPrefix(line, "config "+path+": "), ":")
		keys = append(keys, key)
	}
	is.Equal(keys, []string{"upstream.api_url", "upstream.token_url", "log.level"}) // every key, in order
	for range 20 {
		_, err := LoadConfig(path)
		is.Equal(err.Error(), first.Error()) // the same every time
	}
}

// TestConfigBoundRefusedAlone: a key bounded by another that is itself refused
// (delivery.per_host by delivery.workers, inbox.keep_per_inbox by
// inbox.keep_total) is not refused for that bound: "workers = 0" is one error,
// not a second one saying the default per_host of 8 must be at most 0. A value
// of its own out of every range is still refused.
func TestConfigBoundRefusedAlone(t *testing.T) {
	for _, tt := range []struct{ body, want, notWant string }{
		{"[delivery]\nworkers = 0\n", "delivery.workers: must be between 1 and 10000, got 0", "per_host"},
		{"[delivery]\nworkers = -1\n", "delivery.workers: must be between 1 and 10000, got -1", "per_host"},
		{"[delivery]\nworkers = 0\nper_host = 0\n", "delivery.per_host: must be between 1 and delivery.workers, got 0", "(0)"},
		{"[delivery]\nworkers = 8\nper_host = 9\n", "delivery.per_host: must be between 1 and delivery.workers (8), got 9", "delivery.workers: must"},
		{"[inbox]\nkeep_total = 0\n", "inbox.keep_total: must be between 1 and 100000, got 0", "keep_per_inbox"},
		{"[inbox]\nkeep_total = -5\nkeep_per_inbox = 0\n", "inbox.keep_per_inbox: must be between 1 and inbox.keep_total, got 0", "(-5)"},
	} {
		t.Run(tt.body, func(t *testing.T) {
			is := is.New(t)
			_, err := LoadConfig(writeConfig(t, tt.body))
			is.True(err != nil) // refused
			t.Log(err)
			is.True(strings.Contains(err.Error(), tt.want))     // naming the key at fault
			is.True(!strings.Contains(err.Error(), tt.notWant)) // and not the one it bounds
		})
	}
}

// TestShortDurationsWarned: a duration below the least it means much at (most
// often a unit mistyped: "1ns", "20ms" for 20s) is a warning that names the key,
// the value, that least value and what hookd then does, in check-config and in
// the daemon's log at start; the configuration still loads, as it did before
// these were looked at: "retry_base = \"5ms\"" in a test's file, or a timeout of
// "500ms", refused at start would stop a service that ran until its upgrade.
// "0s" stays an error.
func TestShortDurationsWarned(t *testing.T) {
	for _, tt := range []struct {
		key, least, below string
	}{
		{"auth.token_ttl", "1s", "999ms"},
		{"delivery.tick", "10ms", "5ms"},
		{"delivery.timeout", "1s", "500ms"},
		{"delivery.retry_base", "10ms", "5ms"},
		{"delivery.retry_max_delay", "10ms", "9ms"},
		{"delivery.give_up_after", "1s", "999ms"},
		{"delivery.disable_after", "1s", "999ms"},
		{"delivery.retention", "1m", "30s"},
		{"audit.retention", "1m", "59s"},
	} {
		t.Run(tt.key, func(t *testing.T) {
			is := is.New(t)
			table, name, _ := strings.Cut(tt.key, ".")
			file := func(v string) string {
				body := fmt.Sprintf("[%s]\n%s = %q\n", table, name, v)
				if tt.key == "delivery.retry_max_delay" {
					body = fmt.Sprintf("[delivery]\nretry_base = %q\nretry_max_delay = %q\n", v, v)
				}
				return writeConfig(t, body)
			}
			for _, v := range []string{"1ns", tt.below} {
				path := file(v)
				cfg, err := LoadConfig(path)
				is.NoErr(err) // taken, as before
				var warns []string
				for _, w := range cfg.ShortDurations() {
					if strings.HasPrefix(w, tt.key+" ") {
						warns = append(warns, w)
					}
				}
				is.Equal(len(warns), 1)                                                                            // one warning for one value
				is.True(strings.HasPrefix(warns[0], fmt.Sprintf("%s is %q, less than %s: ", tt.key, v, tt.least))) // naming the key, the value and the least value
				_, stderr, err := runEnv(t, nil, "check-config", "-config", path)
				is.NoErr(err)                                                                 // check-config passes it
				is.True(strings.Contains(stderr, "config "+path+": warning: "+warns[0]+"\n")) // and warns
			}
			cfg, err := LoadConfig(file(tt.least))
			is.NoErr(err)
			is.Equal(len(cfg.ShortDurations()), 0) // the least value is nothing to warn of
			_, err = LoadConfig(file("0s"))
			is.True(err != nil && strings.Contains(err.Error(), tt.key+": must be > 0, got \"0s\"")) // as before
		})
	}
	t.Run("daemon", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "hookd.toml")
		is.NoErr(os.WriteFile(path, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"hookd.db\"\n[log]\nformat = \"json\"\n[delivery]\nretry_base = \"5ms\"\ntick = \"1ms\"\n"), 0o600))
		initDB(t, path)
		cfg, err := LoadConfig(path)
		is.NoErr(err)
		is.Equal(cfg.DispatchTick(), 10*time.Millisecond) // the loop looks every 10ms, not every 1ms
		d := startDaemon(t, path)                         // starts
		is.NoErr(d.stop())
		logged := map[string]bool{}
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			var rec struct{ Level, Msg, Detail string }
			for _, w := range []string{"delivery.retry_base is \"5ms\", less than 10ms", "delivery.tick is \"1ms\", less than 10ms"} {
				if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Detail, w) {
					is.Equal(rec.Level, "WARN")
					logged[w] = true
				}
			}
		}
		is.Equal(len(logged), 2) // the daemon logs each at start
	})
}

func TestLoadConfigValues(t *testing.T) {
	is := is.New(t)
	path := writeConfig(t, "[delivery]\ncoalesce_window = \"0s\"\ntimeout = \"90s\"\n[http]\nbase_path = \"/orcid-api-web\"\n")
	c, err := LoadConfig(path)
	is.NoErr(err)                                                  // loads
	is.Equal(c.Delivery.CoalesceWindow.Duration, time.Duration(0)) // 0 is allowed: deliver at once
	is.Equal(c.Delivery.Timeout.Duration, 90*time.Second)          // parsed
	is.Equal(c.HTTP.BasePath, "/orcid-api-web")                    // set
	is.Equal(c.Delivery.Workers, 64)                               // unset keys keep their defaults
	is.Equal(c.Store.Path, "hookd.db")                             // an unset path stays as the default
}

// TestPublicURLInASCII: a public_url whose host is an internationalised domain name
// is used as browsers and DNS write it, in the addresses hookd makes and in the
// origin the console takes forms from (a browser's Origin header carries the
// Punycode form); its path and port are kept.
func TestPublicURLInASCII(t *testing.T) {
	is := is.New(t)
	for _, tt := range []struct{ set, want string }{
		{"https://bücher.example/hookd/", "https://xn--bcher-kva.example/hookd"},
		{"https://Bücher.example:8443", "https://xn--bcher-kva.example:8443"},
		{"https://hookd.example.org/", "https://hookd.example.org"},
	} {
		c, err := LoadConfig(writeConfig(t, "[http]\npublic_url = \""+tt.set+"\"\n"))
		is.NoErr(err) // loads
		is.Equal(c.PublicBase("127.0.0.1:8080"), tt.want)
		is.Equal(c.PublicURL(), tt.want)
	}
}

// TestImplicitTLSFromPort: a relay on port 465 (or its service name) is spoken to
// over TLS from the first byte unless email.implicit_tls says otherwise; any other
// port, only when it says so.
func TestImplicitTLSFromPort(t *testing.T) {
	for _, tt := range []struct {
		email string
		want  bool
	}{
		{"smtp_addr = \"smtp.example.org:465\"", true},
		{"smtp_addr = \"smtp.example.org:submissions\"", true},
		{"smtp_addr = \"smtp.example.org:587\"", false},
		{"smtp_addr = \"smtp.example.org:465\"\nimplicit_tls = false", false},
		{"smtp_addr = \"smtp.example.org:2465\"\nimplicit_tls = true", true},
		{"", false},
	} {
		t.Run(tt.email, func(t *testing.T) {
			is := is.New(t)
			c, err := LoadConfig(writeConfig(t, "[email]\nfrom = \"hookd@example.org\"\n"+tt.email+"\n"))
			is.NoErr(err)
			is.Equal(c.Email.ImplicitTLS, tt.want)
		})
	}
}

func TestLoadConfigRelativePaths(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.WriteFile(filepath.Join(dir, "admin.token"), []byte("t0ken\n"), 0o600)) // an admin token file
	path := filepath.Join(dir, "hookd.toml")
	abs := filepath.Join(t.TempDir(), "elsewhere.db")
	is.NoErr(os.WriteFile(path, []byte(`
[store]
path = "data/hookd.db"
[auth]
secret_key_file = "keys/hookd.key"
admin_token_file = "admin.token"
`), 0o600)) // write config

	c, err := LoadConfig(path)
	is.NoErr(err)                                                           // loads
	is.Equal(c.Store.Path, filepath.Join(dir, "data", "hookd.db"))          // relative to the config file's folder
	is.Equal(c.Auth.SecretKeyFile, filepath.Join(dir, "keys", "hookd.key")) // relative to the config file's folder
	is.Equal(c.SecretKeyPath(), filepath.Join(dir, "keys", "hookd.key"))    // the key file used
	is.Equal(c.Auth.AdminTokenFile, filepath.Join(dir, "admin.token"))      // found beside the config, whatever the working directory

	is.NoErr(os.WriteFile(path, []byte("[store]\npath = \""+abs+"\"\n"), 0o600)) // an absolute path
	c, err = LoadConfig(path)
	is.NoErr(err)                                                      // loads
	is.Equal(c.Store.Path, abs)                                        // absolute paths stay
	is.Equal(c.SecretKeyPath(), strings.TrimSuffix(abs, ".db")+".key") // the key goes beside the database
}

func TestConfigExample(t *testing.T) {
	is := is.New(t)
	const example = "config.example.toml"
	c, err := LoadConfig(example)
	is.NoErr(err) // the shipped example loads
	abs, err := filepath.Abs(example)
	is.NoErr(err)
	is.True(filepath.IsAbs(c.Store.Path))                                      // its database is where the service keeps data,
	is.True(filepath.Dir(c.Store.Path) != filepath.Dir(abs))                   // not beside the file (read-only /etc/hookd under the unit)
	is.Equal(c.Store.Path, "/var/lib/hookd/hookd.db")                          // the unit's StateDirectory
	is.Equal(c.Auth.TokenTTL.Duration, DefaultConfig().Auth.TokenTTL.Duration) // the documented default lifetime
}

// TestConfigTableTwice: a table written twice, as when the README's [http] and
// [upstream] lines are appended to a copy of config.example.toml, is named with
// both its lines and what to do, not in the TOML decoder's words.
func TestConfigTableTwice(t *testing.T) {
	is := is.New(t)
	example, err := os.ReadFile("config.example.toml")
	is.NoErr(err) // the shipped example
	first := slices.Index(strings.Split(string(example), "\n"), "[http]") + 1
	is.True(first > 0) // which has an [http] table
	body := string(example) + "[http]   # appended\npublic_url = \"https://hookd.uni.example\"\n"
	second := strings.Count(body, "\n") - 1
	path := writeConfig(t, body)
	_, err = LoadConfig(path)
	is.True(err != nil) // refused
	is.Equal(err.Error(), fmt.Sprintf("config %s: [http] is written twice, at line %d and at line %d: a table is written once in TOML; "+
		"put the keys under line %d's [http] under the one at line %d", path, first, second, second, first)) // naming the table, both lines and what to do

	path = writeConfig(t, "[ delivery . retry ]\n[store]\n[delivery.retry]\n")
	_, err = LoadConfig(path)
	is.True(err != nil)                                                                                  // refused
	is.True(strings.Contains(err.Error(), "[delivery.retry] is written twice, at line 1 and at line 3")) // however its header is spaced
}

// TestConfigKeyTwice: a key set twice in its table is named with both its lines and
// what to do, not in the TOML decoder's words.
func TestConfigKeyTwice(t *testing.T) {
	is := is.New(t)
	path := writeConfig(t, "[http]\nlisten = \"127.0.0.1:8080\"\n[store]\npath = \"a.db\"\n# a comment\npath   = \"b.db\"\n")
	_, err := LoadConfig(path)
	is.True(err != nil) // refused
	is.Equal(err.Error(), fmt.Sprintf("config %s: store.path is set twice, at line 4 and at line 6: a key is set once in TOML; keep the line with the value you mean", path))

	path = writeConfig(t, "[http]\nlisten = \"127.0.0.1:8080\"\n[store]\n[http.x]\n")
	_, err = LoadConfig(path)
	is.True(err != nil)                                           // refused, some other way
	is.True(!strings.Contains(err.Error(), "set twice, at line")) // not taken for a key set twice

	// A key set, then opened as a table: the key named is the one set twice, not
	// the table the decoder was in.
	path = writeConfig(t, "[store]\npath = \"a.db\"\n[store.path]\n")
	_, err = LoadConfig(path)
	is.True(err != nil) // refused
	is.Equal(err.Error(), fmt.Sprintf("config %s: store.path is set twice, at line 2 and at line 3: a key is set once in TOML; keep the line with the value you mean", path))
}

// TestLogDurations: every log format writes a duration as text ("3s"), never as a
// number of nanoseconds.
func TestLogDurations(t *testing.T) {
	for _, format := range []string{"json", "text", "tint"} {
		t.Run(format, func(t *testing.T) {
			is := is.New(t)
			cfg := DefaultConfig()
			cfg.Log.Format = format
			var buf strings.Builder
			newLogger(cfg, &buf, false).Info("delivered", "duration", 3*time.Second, "retry_in", 1500*time.Millisecond)
			out := buf.String()
			is.True(strings.Contains(out, "3s"))          // the duration as text
			is.True(strings.Contains(out, "1.5s"))        // every one of them
			is.True(!strings.Contains(out, "3000000000")) // never nanoseconds
		})
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	is := is.New(t)
	c := DefaultConfig()
	c.HTTP.TrustedProxies = []string{"127.0.0.1", "::1", "10.0.0.0/8", "::ffff:192.0.2.1", "::ffff:10.0.0.0/104", "2001:db8::/32"}
	got, err := c.TrustedProxyPrefixes()
	is.NoErr(err)
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	// An address is its own prefix; an IPv4-mapped one is IPv4, as the peers are.
	is.Equal(s, []string{"127.0.0.1/32", "::1/128", "10.0.0.0/8", "192.0.2.1/32", "10.0.0.0/8", "2001:db8::/32"})
	for bad, says := range map[string]string{
		"localhost":         "not an address",
		"10.0.0.0/33":       "not an address",
		"fe80::1%eth0":      "not an address",
		"127.0.0.1:80":      "not an address",
		"":                  "not an address",
		"192.168.1.10/24":   `write "192.168.1.0/24" for the network, or "192.168.1.10" for one proxy`,
		"0.0.0.0/0":         "every address",
		"::/0":              "every address",
		"::ffff:0.0.0.0/96": "every address",
		"::ffff:0:0/90":     "bits set past its prefix",
	} {
		c.HTTP.TrustedProxies = []string{bad}
		_, err := c.TrustedProxyPrefixes()
		is.True(err != nil) // refused
		if err != nil && !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want it to say %q", bad, err, says)
		}
	}
}

// TestCheckSecretFiles: the files of the *_file keys are the daemon's and
// check-config's business alone (a systemd credential exists only while the
// service runs): the other commands load a configuration whose files are not
// there, and the check names each key whose file is missing or empty.
func TestCheckSecretFiles(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	is.NoErr(os.WriteFile(empty, []byte(" \n"), 0o600))
	path := writeConfig(t, "[auth]\nadmin_token_file = \"/run/credentials/hookd.service/admin-token-not-here\"\n"+
		"[email]\nsmtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@example.org\"\nusername = \"hookd\"\npassword_file = \""+empty+"\"\n")
	cfg, err := LoadConfig(path)
	is.NoErr(err) // loads: a command other than serve needs none of the files
	err = cfg.CheckSecretFiles()
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "auth.admin_token_file: open /run/credentials/hookd.service/admin-token-not-here")) // missing
	is.True(strings.Contains(err.Error(), "only while the service runs"))                                                     // and why it may be
	is.True(strings.Contains(err.Error(), "email.password_file: "+empty+" is empty"))                                         // empty

	_, _, err = runEnv(t, nil, "check-config", "-config", path)
	is.True(err != nil) // check-config looks at them
	is.True(strings.Contains(err.Error(), "auth.admin_token_file"))
}

// TestSecretFileOpenToOthers: a secret file other users may read or change is
// read all the same, and check-config warns of it, naming the file and its mode.
func TestSecretFileOpenToOthers(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "admin-token")
	is.NoErr(os.WriteFile(token, []byte("0123456789abcdef0123"), 0o600))
	path := writeConfig(t, "[store]\npath = \""+filepath.Join(dir, "hookd.db")+"\"\n[auth]\nadmin_token_file = \""+token+"\"\n")
	cfg, err := LoadConfig(path)
	is.NoErr(err)
	is.Equal(len(cfg.SecretFileWarnings()), 0) // 0600: nothing to say

	is.NoErr(os.Chmod(token, 0o644))
	warns := cfg.SecretFileWarnings()
	is.Equal(len(warns), 1)
	is.True(strings.Contains(warns[0], "auth.admin_token_file: "+token+" has mode 0644")) // which file, and why
	out, stderr, err := runEnv(t, nil, "check-config", "-config", path)
	is.NoErr(err) // still ok: hookd reads it
	is.True(strings.Contains(out, ": ok"))
	is.True(strings.Contains(stderr, "warning: "+warns[0])) // and warns
}

// TestShortAdminToken: an admin token of fewer than 16 characters is refused, by
// check-config and by serve, without the token in the message.
func TestShortAdminToken(t *testing.T) {
	is := is.New(t)
	tok := filepath.Join(t.TempDir(), "admin-token")
	is.NoErr(os.WriteFile(tok, []byte("s3cr3t\n"), 0o600))
	path := writeConfig(t, "[auth]\nadmin_token_file = \""+tok+"\"\n")
	cfg, err := LoadConfig(path)
	is.NoErr(err)
	err = cfg.CheckSecretFiles()
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "holds 6 characters: an admin token needs at least 16"))
	is.True(!strings.Contains(err.Error(), "s3cr3t"))                                     // not echoed
	is.True(strings.Contains(err.Error(), "(umask 077; openssl rand -hex 32 > "+tok+")")) // a way to make one that draws no warning
	is.NoErr(os.WriteFile(tok, []byte("0123456789abcdef\n"), 0o600))
	is.NoErr(cfg.CheckSecretFiles())           // 16 will do
	is.Equal(len(cfg.SecretFileWarnings()), 0) // in a file of mode 0600, as umask 077 makes it, without a warning
}

// TestStorePathAFolder: a store.path that is a folder is refused with what to write.
func TestStorePathAFolder(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	_, err := LoadConfig(writeConfig(t, "[store]\npath = \""+dir+"\"\n"))
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "store.path: "+dir+" is not a file"))
	is.True(strings.Contains(err.Error(), filepath.Join(dir, "hookd.db")))
}

// TestKeyBesideTheDatabaseNamed: a database made before auth.secret_key_file named
// another path (the package installs one at once) has its key beside it: the
// error says to move it there, not to restore a backup the newcomer never had.
func TestKeyBesideTheDatabaseNamed(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(path, []byte("[store]\npath = \"hookd.db\"\n"), 0o600))
	initDB(t, path) // hookd.db and hookd.key
	elsewhere := filepath.Join(dir, "secret.key")
	is.NoErr(os.WriteFile(path, []byte("[store]\npath = \"hookd.db\"\n[auth]\nsecret_key_file = \""+elsewhere+"\"\n"), 0o600))

	_, err := runCmd(t, "check-config", "-config", path)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "move it there (mv "+filepath.Join(dir, "hookd.key")+" "+elsewhere+")"))
	_, err = runCmd(t, "client", "list", "-config", path)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "move it there"))

	is.NoErr(os.Rename(filepath.Join(dir, "hookd.key"), elsewhere)) // as it says
	_, err = runCmd(t, "client", "list", "-config", path)
	is.NoErr(err)
}

// TestEmailWithoutRelay: [email] settings given without email.smtp_addr, which
// hookd then never uses, are told, naming them: check-config warns, and the daemon
// logs it at start. They were ignored without a word, so a relay's address
// forgotten went unnoticed until an organisation missed its e-mail. A warning, not
// an error: emptying smtp_addr is how e-mail is turned off.
func TestEmailWithoutRelay(t *testing.T) {
	for _, tt := range []struct {
		name, email, want string
	}{
		{"from", "from = \"hookd@uni.example\"\n", "email.from is set, but email.smtp_addr is empty: hookd sends no e-mail"},
		{"sign-in", "username = \"hookd\"\npassword_file = \"pw\"\n", "email.username and email.password_file are set, but email.smtp_addr is empty"},
		{"every one", "from = \"hookd@uni.example\"\nusername = \"hookd\"\npassword_file = \"pw\"\nstarttls = false\nimplicit_tls = true\n",
			"email.from, email.username, email.password_file, email.starttls and email.implicit_tls are set, but email.smtp_addr is empty"},
		{"as the example has them", "smtp_addr = \"\"\nusername = \"\"\npassword_file = \"\"\nfrom = \"\"\nstarttls = true\n", ""},
		{"with a relay", "smtp_addr = \"127.0.0.1:25\"\nfrom = \"hookd@uni.example\"\nusername = \"hookd\"\npassword_file = \"pw\"\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			is.NoErr(os.WriteFile(filepath.Join(dir, "pw"), []byte("S3cret-pw\n"), 0o600))
			path := filepath.Join(dir, "hookd.toml")
			is.NoErr(os.WriteFile(path, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"hookd.db\"\n[log]\nformat = \"json\"\n[email]\n"+tt.email), 0o600))
			cfg, err := LoadConfig(path)
			is.NoErr(err) // loads: a warning, not an error
			w := cfg.EmailWithoutRelay()
			is.True(strings.HasPrefix(w, tt.want))
			out, stderr, err := runEnv(t, nil, "check-config", "-config", path)
			is.NoErr(err) // check-config passes it
			is.True(strings.Contains(out, ": ok"))
			if tt.want == "" {
				is.Equal(w, "")
				is.True(!strings.Contains(stderr, "warning")) // nothing to say
				return
			}
			is.Equal(stderr, "config "+path+": warning: "+w+"\n") // and warns
			is.True(!strings.Contains(stderr, "S3cret-pw"))

			initDB(t, path)
			d := startDaemon(t, path)
			is.NoErr(d.stop())
			var logged bool
			for _, line := range strings.Split(d.stderr.String(), "\n") {
				var rec struct{ Level, Msg, Detail string }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "e-mail settings without a relay" {
					is.Equal(rec.Level, "WARN")
					is.Equal(rec.Detail, w)
					logged = true
				}
			}
			is.True(logged) // the daemon logs it at start
		})
	}
}

// TestUpstreamRefusedWarned: an [upstream] URL whose host is an address the SSRF
// guard refuses (loopback or private while delivery.allow_private_targets is off;
// link-local, unspecified and the like whatever it says) is a warning of
// check-config and of the daemon's log at start, naming the key, the host, its
// range and the setting: hookd calls the upstream through the guard, as it calls
// callbacks, so every registration upstream failed at connection ("refused to
// connect") with nothing said before. A name is judged once resolved, at
// connection, and an address the guard takes is nothing to warn of.
func TestUpstreamRefusedWarned(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "orcid-secret")
	if err := os.WriteFile(secretFile, []byte("up-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := func(api, token string, allowPrivate bool) string {
		return writeConfig(t, fmt.Sprintf("[http]\npublic_url = \"https://hookd.example.org\"\n[delivery]\nallow_private_targets = %t\n"+
			"[upstream]\napi_url = %q\ntoken_url = %q\nclient_id = \"APP-1\"\nclient_secret_file = %q\n", allowPrivate, api, token, secretFile))
	}
	for _, tt := range []struct {
		name, api, token string
		allowPrivate     bool
		want             []string // a part of each warning, in order
	}{
		{"loopback stand-in", "http://127.0.0.1:9000/v3.0", "http://127.0.0.1:9000/oauth/token", false, []string{
			"upstream.api_url \"http://127.0.0.1:9000/v3.0\": host 127.0.0.1 is in 127.0.0.0/8 (Loopback); set delivery.allow_private_targets to allow it",
			"upstream.token_url \"http://127.0.0.1:9000/oauth/token\": host 127.0.0.1 is in 127.0.0.0/8 (Loopback); set delivery.allow_private_targets to allow it"}},
		{"localhost", "http://localhost:9000", "https://orcid.org/oauth/token", false, []string{
			"upstream.api_url \"http://localhost:9000\": host \"localhost\" is a loopback name; set delivery.allow_private_targets to allow it"}},
		{"private proxy", "https://api.orcid.org", "http://[::ffff:10.0.0.5]:3128/oauth/token", false, []string{
			"upstream.token_url \"http://[::ffff:10.0.0.5]:3128/oauth/token\": host ::ffff:10.0.0.5 is in ::ffff:0.0.0.0/96 (IPv4-mapped Address) and its IPv4 address 10.0.0.5 is in 10.0.0.0/8 (Private-Use)"}},
		{"link-local, private allowed", "http://169.254.169.254/v3.0", "https://orcid.org/oauth/token", true, []string{
			"upstream.api_url \"http://169.254.169.254/v3.0\": host 169.254.169.254 is in 169.254.0.0/16 (Link Local), where hookd never delivers"}},
		{"loopback, private allowed", "http://127.0.0.1:9000", "http://127.0.0.1:9000/oauth/token", true, nil},
		// Hosts no resolver finds as written, as a callback's are refused: every
		// call failed "lookup 127.0.0.1.: no such host", with nothing said before.
		{"an address with a dot after it", "http://127.0.0.1.:9000", "http://127.0.0.1:9000/oauth/token", true, []string{
			"upstream.api_url \"http://127.0.0.1.:9000\": host \"127.0.0.1.\" is an IP address with a dot after it, which is looked up as a name and never found; write 127.0.0.1"}},
		{"an address in an old form", "https://api.orcid.org", "http://2130706433/oauth/token", false, []string{
			"upstream.token_url \"http://2130706433/oauth/token\": host \"2130706433\" is not an IP address hookd reads; write IPv4 as four decimal numbers (a.b.c.d)"}},
		{"localhost with a dot after it", "http://localhost.:9000", "https://orcid.org/oauth/token", false, []string{
			"upstream.api_url \"http://localhost.:9000\": host \"localhost\" is a loopback name; set delivery.allow_private_targets to allow it"}},
		// A query, which may hold a key, is not shown.
		{"a query", "https://api.orcid.org", "http://127.0.0.1:9000/oauth/token?key=pa55word", false, []string{
			"upstream.token_url \"http://127.0.0.1:9000/oauth/token?…\": host 127.0.0.1 is in 127.0.0.0/8 (Loopback)"}},
		{"names", "https://api.sandbox.orcid.org", "https://sandbox.orcid.org/oauth/token", false, nil},
		{"a name that resolves to loopback", "http://upstream.internal:9000", "http://upstream.internal:9000/oauth/token", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			path := file(tt.api, tt.token, tt.allowPrivate)
			cfg, err := LoadConfig(path)
			is.NoErr(err) // taken: the rest of hookd works
			warns := cfg.UpstreamRefused()
			is.Equal(len(warns), len(tt.want)) // one warning for each URL refused
			for i, w := range warns {
				is.True(strings.HasPrefix(w, tt.want[i]))                         // naming the key, the URL, the host and why
				is.True(strings.Contains(w, "every registration upstream fails")) // and what it does
			}
			_, stderr, err := runEnv(t, nil, "check-config", "-config", path)
			is.NoErr(err) // check-config passes it
			for _, w := range warns {
				is.True(strings.Contains(stderr, "config "+path+": warning: "+w+"\n")) // and warns
			}
			is.True(!strings.Contains(stderr, "pa55word")) // showing no query
		})
	}
}

// TestUpstreamNotTheAPIWarned: an upstream.api_url at one of ORCID's hosts but not
// at its Member API's root (a version after it, the public API's host, the site's)
// is a warning of check-config naming the URL meant: ORCID registers webhooks at
// the API's root, and hookd appends each record's path to api_url. It was taken
// without a word. ORCID's root, with or without a slash, and any other host, are
// nothing to warn of.
func TestUpstreamNotTheAPIWarned(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "orcid-secret")
	if err := os.WriteFile(secretFile, []byte("up-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		api, token, want string
	}{
		{"https://api.sandbox.orcid.org/v3.0", "https://sandbox.orcid.org/oauth/token", `did you mean api_url = "https://api.sandbox.orcid.org"?`},
		{"https://pub.orcid.org", "https://orcid.org/oauth/token", `did you mean api_url = "https://api.orcid.org"?`},
		{"https://sandbox.orcid.org/", "https://sandbox.orcid.org/oauth/token", `did you mean api_url = "https://api.sandbox.orcid.org"?`},
		{"https://api.sandbox.orcid.org", "https://sandbox.orcid.org/oauth/token", ""},
		{"https://api.orcid.org/", "https://orcid.org/oauth/token", ""},
		{"https://orcid-proxy.uni.example/v3.0", "https://orcid.org/oauth/token", ""},
	} {
		t.Run(tt.api, func(t *testing.T) {
			is := is.New(t)
			path := writeConfig(t, fmt.Sprintf("[http]\npublic_url = \"https://hookd.example.org\"\n"+
				"[upstream]\napi_url = %q\ntoken_url = %q\nclient_id = \"APP-1\"\nclient_secret_file = %q\n", tt.api, tt.token, secretFile))
			cfg, err := LoadConfig(path)
			is.NoErr(err) // taken
			w := cfg.UpstreamNotTheAPI()
			is.True(strings.HasSuffix(w, tt.want)) // the URL meant
			is.Equal(w == "", tt.want == "")       // and only then
			_, stderr, err := runEnv(t, nil, "check-config", "-config", path)
			is.NoErr(err) // check-config passes it
			is.Equal(strings.Contains(stderr, "warning: upstream.api_url "), tt.want != "")
		})
	}
}
