package dispatch

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// redacted stands in for a secret in what hookd stores or logs.
const redacted = "[redacted]"

// maxErrorText bounds the error of one attempt as stored and logged: a token
// endpoint's error carries its whole response body.
const maxErrorText = 1024

// sent lists the secrets a call sent: passwords, client secrets, the tokens it got
// for them, API keys, relay keys, signing secrets. A receiver or token endpoint may
// echo any of them back (a form, a header, an error page), so whatever the call
// brings back is redacted before it becomes an outcome, which is stored (attempt
// log, a delivery's last error, a deactivation's reason, an upstream registration's
// state) and logged. Secrets are kept raw; their encodings are made only when
// there is text to redact.
type sent []string

// add notes secrets the call sends; empty ones are skipped.
func (s *sent) add(secrets ...string) {
	for _, v := range secrets {
		if v != "" {
			*s = append(*s, v)
		}
	}
}

// addSigning notes whsec_ signing secrets: each whole, and the base64 key after
// the prefix, which Standard Webhooks libraries hold (and a receiver's debug output
// may print).
func (s *sent) addSigning(secrets ...string) {
	for _, v := range secrets {
		s.add(v, strings.TrimPrefix(v, "whsec_"))
	}
}

// addBasic notes HTTP Basic credentials: the password, and the base64 of
// "user:password" the header carries.
func (s *sent) addBasic(user, password string) {
	s.add(password, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

// addClient notes the client credentials of an OAuth token request, as
// golang.org/x/oauth2 sends them: in the form, or form-encoded in HTTP Basic;
// and the base64 of "id:secret" not form-encoded, as an endpoint that does not
// form-encode them (RFC 6749 §2.3.1 says to, and many do not) may write what
// it expected, when the id or the secret has a character the encoding changes.
func (s *sent) addClient(id, secret string) {
	s.add(secret)
	if secret != "" {
		s.addBasic(url.QueryEscape(id), url.QueryEscape(secret))
		if url.QueryEscape(id) != id || url.QueryEscape(secret) != secret {
			s.add(base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)))
		}
	}
}

// forms are the encodings a secret may come back in: as sent, form- or
// path-encoded, as a JSON string (with or without HTML escaping), as a Go
// string (oauth2 quotes an OAuth error's description so, writing a character
// Go does not know as printable, one newer than its Unicode tables, as a \U
// escape, which a JSON reading does not undo), in base64 (an HTML-escaped echo
// is read first: redact).
func forms(v string) []string {
	quoted := strconv.Quote(v)
	out := []string{v, url.QueryEscape(v), url.PathEscape(v), quoted[1 : len(quoted)-1],
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		s := strings.TrimSpace(b.String())
		s = s[1 : len(s)-1]
		out = append(out, s, asciiJSON(s))
	}
	return out
}

// mayHoldForm reports whether text may hold one of the forms of secret v. Making
// them takes ten encodings, and most answers hold none, so it looks first for
// what every form has:
//   - every form is at least as long as v: an escape or base64 only lengthens it;
//   - every escaped form (as sent, form-, path-, JSON- and Go-escaped) keeps
//     v's ASCII letters and digits as they are, so it holds v's longest run of
//     them;
//   - the four base64 forms differ from the standard padded one only in its
//     '+' and '/' (the URL alphabet's '-' and '_') and its padding, so they all
//     hold the longest run of it between those.
func mayHoldForm(text, v string) bool {
	if len(text) < len(v) {
		return false
	}
	run := longestRun(v, func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' })
	if run == "" || strings.Contains(text, run) {
		return true
	}
	run = longestRun(base64.StdEncoding.EncodeToString([]byte(v)), func(c byte) bool { return c != '+' && c != '/' && c != '=' })
	return run == "" || strings.Contains(text, run)
}

// longestRun is the longest run of s's bytes that are in.
func longestRun(s string, in func(byte) bool) string {
	best, start := "", -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && in(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start > len(best) {
			best = s[start:i]
		}
		start = -1
	}
	return best
}

// asciiJSON escapes the non-ASCII characters of a JSON string's contents as \uXXXX,
// as encoders that keep to ASCII (Python's json) write them.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// lookahead is how much text past a cut redaction must see, so that a secret
// that begins before the cut is found whole: the longest encoding of a secret.
func (s sent) lookahead() int {
	n := 0
	for _, v := range s {
		n = max(n, len(v))
	}
	return 6*n + 256 // a JSON \u00XX escape is six bytes a byte; base64 is shorter
}

// credentialPatterns find credential-shaped text that hookd did not itself send
// but that must not be stored either, such as an echoed Authorization header:
// the value goes, the name stays so the text still says what was there. Every
// match of a pattern holds one of its words, so a text that has none of them
// (mayMatch) is not searched: most answers ("OK", a short JSON receipt) have
// none, and the search costs several microseconds a delivery.
var credentialPatterns = []struct {
	re    *regexp.Regexp
	repl  string
	words []string // one of them is in every match, in ASCII letters of either case
}{
	// A header that carries credentials, as text ("Authorization: Basic …") or
	// JSON ("Authorization":["Bearer …"]): its whole value. A '[' is taken for a
	// JSON array's only before a quote, so that a value already redacted
	// ("Apikey: [redacted]") is not marked again inside its own marker.
	{regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|apikey)("?\s*[:=]\s*(?:\[\s*"|"?))[^\r\n"]+`), "${1}${2}" + redacted,
		[]string{"authorization", "cookie", "api-key", "apikey"}},
	// A credential after its scheme, anywhere.
	{regexp.MustCompile(`(?i)\b(basic|bearer|digest)(\s+)[A-Za-z0-9\-._~+/]{8,}=*`), "${1}${2}" + redacted,
		[]string{"basic", "bearer", "digest"}},
	// A form or JSON field that carries a secret.
	{regexp.MustCompile(`(?i)\b(client_secret|password|passwd|access_token|refresh_token|id_token|api_key)("?\s*[:=]\s*"?)[^&\s"',;}<]+`), "${1}${2}" + redacted,
		[]string{"client_secret", "password", "passwd", "access_token", "refresh_token", "id_token", "api_key"}},
}

// redact replaces in text every form of every secret the call sent, and every
// credential-shaped value.
func (s sent) redact(text string) string {
	if text == "" {
		return text
	}
	text = s.redactForms(text)
	// An echo HTML-escaped by whatever escaper (&#039;, &apos;, &#x22;, …): when
	// the text, its entities read, still holds a secret as sent, it is searched
	// again, and kept, as it reads (after the forms as sent went: a secret that
	// itself reads as an entity, "&not", is found before it is read as "¬").
	if strings.Contains(text, "&") {
		if un := html.UnescapeString(text); un != text && slices.ContainsFunc(s, func(v string) bool { return strings.Contains(un, v) }) {
			text = s.redactForms(un)
		}
	}
	// So is an echo in JSON escaped by an encoder that escapes more than Go's
	// (PHP's json_encode writes "/" as "\/", .NET's "+" as "\u002B"): the forms
	// above are what Go, Python and JavaScript write.
	if strings.Contains(text, `\`) {
		if un := jsonUnescape(text); un != text && slices.ContainsFunc(s, func(v string) bool { return strings.Contains(un, v) }) {
			text = s.redactForms(un)
		}
	}
	lower, known := []byte(nil), false // text in lower case, while it is ASCII
	for _, p := range credentialPatterns {
		if !known {
			lower, known = asciiLower(text), true
		}
		if !mayMatch(lower, p.words) {
			continue
		}
		if t := p.re.ReplaceAllString(text, p.repl); t != text {
			text, known = t, false
		}
	}
	return text
}

// jsonUnescape reads the escapes of JSON strings in text (\", \\, \/, \b, \f,
// \n, \r, \t, \uXXXX and surrogate pairs of them), leaving everything else,
// and backslashes that start none, as it is.
func jsonUnescape(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '\\' || i+1 == len(text) {
			b.WriteByte(c)
			continue
		}
		switch e := text[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n := jsonRune(text[i:])
			if n == 0 {
				b.WriteByte(c)
				continue
			}
			b.WriteRune(r)
			i += n - 2
		default:
			b.WriteByte(c)
			continue
		}
		i++
	}
	return b.String()
}

// jsonRune reads the \uXXXX escape (or surrogate pair of them) at the start of s:
// the character and the escape's length, or a length of 0 when s starts with none.
func jsonRune(s string) (rune, int) {
	hex4 := func(s string) (rune, bool) {
		if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(s[2:6], 16, 16)
		return rune(n), err == nil
	}
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(s[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
	}
	return r, 6
}

// redactForms replaces in text every form of every secret the call sent.
func (s sent) redactForms(text string) string {
	// The forms are made only when the text may hold one of some secret's
	// (mayHoldForm), and then every secret's are: a replaced form may make a
	// shorter one of another secret appear across the marker, which is then
	// replaced too, whether that secret passed the check or not.
	if !slices.ContainsFunc(s, func(v string) bool { return mayHoldForm(text, v) }) {
		return text
	}
	var all []string
	for _, v := range s {
		all = append(all, forms(v)...)
	}
	// Longer forms first, so that none is cut short by a shorter one inside it.
	slices.SortFunc(all, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	for _, v := range slices.Compact(all) {
		if v != "" && strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, redacted)
		}
	}
	return text
}

// asciiLower is text in lower case when it is all ASCII, else nil.
func asciiLower(text string) []byte {
	b := make([]byte, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= utf8.RuneSelf:
			return nil
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b
}

// mayMatch reports whether a pattern with these words may match a text, lower
// being asciiLower of it. A text that is not all ASCII (lower nil) may match
// whatever it holds: (?i) also matches the Kelvin sign for a k and the long s
// for an s.
func mayMatch(lower []byte, words []string) bool {
	if lower == nil {
		return true
	}
	for _, w := range words {
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	return false
}

// truncate cuts text to at most n bytes, at a character boundary.
func truncate(text string, n int) string {
	if len(text) <= n {
		return text
	}
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n]
}

// redactResult makes what a call brought back safe to store and log: its error
// and its response snippet, with every secret it sent redacted, both bounded.
// Its Retry-After stays as the receiver sent it, to be read: a secret that is
// part of it (a short password, "12" in "120") must not make it unreadable. The
// outcome redacts it where it quotes one that does not read (retryAfterQuoted).
func (r *result) redactResult() {
	r.err = strings.ToValidUTF8(truncate(r.sent.redact(r.err), maxErrorText), "?") // a token endpoint's answer is in it
	r.body = strings.ToValidUTF8(truncate(r.sent.redact(r.body), responseSnippet), "?")
}

// retryAfterQuoted is the call's Retry-After as the attempt log may quote it:
// bounded, with every secret the call sent redacted (a receiver may echo one there).
func (r *result) retryAfterQuoted() string {
	return strings.ToValidUTF8(truncate(r.sent.redact(r.retryAfter), 64), "?")
}
