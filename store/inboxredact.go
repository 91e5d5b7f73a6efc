package store

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/url"
	"slices"
	"strings"
)

// An inbox keeps no credentials: whoever sees an inbox sees every request to it,
// those of other webhooks calling the same name too, and a webhook's callback
// credentials, a token hookd got with them, or a token its owner put in its URL
// or its headers, are its owner's alone. A request is recorded without them
// (RecordInboxRequest, once its signature is checked), and read without them too,
// for those an older hookd recorded whole (scanInboxRequest).
const inboxRedacted = "[redacted]"

// secretWords are the words of a header, query parameter or form field name that
// carries a credential ("Authorization", "X-Auth-Token", "client_secret",
// "apikey"); a webhook's signature is not one (the inbox checks it).
var secretWords = []string{"authoriz", "token", "secret", "passw", "apikey", "api-key", "api_key", "cookie", "session", "assertion", "credential"}

// SecretName reports whether a header's, parameter's or field's name is that of a
// credential (secretWords): the inbox keeps no such value, and a delivery redacts
// the value of such a custom header from what its receiver echoes. A '.', a space,
// a '+' and a '[' are read as '_', as PHP reads a field's name: a receiver in PHP
// takes "api.key", "api key" (api+key in a form) and "api[key" for its api_key.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	if strings.ContainsAny(n, " .+[") {
		n = phpNames.Replace(n)
	}
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(n, w) })
}

var phpNames = strings.NewReplacer(" ", "_", ".", "_", "+", "_", "[", "_")

// withoutCredential is a header's value as an inbox keeps it: a credential's goes,
// an Authorization keeping its scheme ("Basic [redacted]") so the record still
// says what kind was sent, when its first word is one hookd knows (authScheme):
// a token sent bare with more after it ("sk_live_H1 x", "abc123 x") goes whole. A value
// already redacted comes out the same; one that only ends in "[redacted]"
// ("s3cret [redacted]") goes like any other. Another header's value keeps no
// credential of the URLs in it (urlsWithoutSecrets): a proxy in front of hookd
// may send the URL it was called at ("X-Original-URI: /hookd/inbox/a?token=T"),
// and an API the next page's (Link: <https://x/?access_token=T>; rel="next").
func withoutCredential(name, v string) string {
	if !SecretName(name) {
		return urlsWithoutSecrets(v)
	}
	if v == inboxRedacted {
		return v
	}
	if scheme, _, ok := strings.Cut(strings.TrimSpace(v), " "); ok && authScheme(scheme) && strings.HasSuffix(strings.ToLower(name), "authorization") {
		return scheme + " " + inboxRedacted
	}
	return inboxRedacted
}

// authScheme reports whether an Authorization's first word is an authentication
// scheme hookd knows (authSchemes, in any case). Its shape cannot tell: a token
// or a password sent bare before more text may be a letter, then letters and
// digits ("abc123 x"), as AWS4-HMAC-SHA256 is, and a scheme unknown goes with
// the credential after it.
func authScheme(w string) bool {
	if len(w) > len("sharedaccesssignature") {
		return false
	}
	var b [len("sharedaccesssignature")]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 0x80 {
			return false
		}
		if c >= 'A' && c <= 'Z' {
			c |= 0x20
		}
		b[i] = c
	}
	return authSchemes[string(b[:len(w)])]
}

// authSchemes are the authentication schemes an Authorization keeps, in lower
// case: those of IANA's registry, and others that APIs use.
var authSchemes = map[string]bool{
	// IANA's HTTP Authentication Scheme Registry.
	"basic": true, "bearer": true, "concealed": true, "digest": true, "dpop": true, "gnap": true,
	"hoba": true, "mutual": true, "negotiate": true, "oauth": true, "privatetoken": true,
	"scram-sha-1": true, "scram-sha-256": true, "vapid": true,
	// Others.
	"aws": true, "aws4-hmac-sha256": true, "hmac-sha1": true, "hmac-sha256": true, "hmac-sha512": true,
	"eg1-hmac-sha256": true, "hawk": true, "mac": true, "signature": true, "ntlm": true, "kerberos": true,
	"token": true, "key": true, "apikey": true, "api-key": true, "jwt": true, "bot": true, "client-id": true,
	"sharedkey": true, "sharedkeylite": true, "sharedaccesssignature": true, "ssws": true, "splunk": true,
	"googlelogin": true, "geniekey": true, "klaviyo-api-key": true, "zoho-oauthtoken": true,
}

func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// withoutSecrets is r without the credentials of its headers, its query and, when
// it is a form (either kind), its body. A body is read as every kind its
// Content-Type headers name, when it has more than one (Go's reader takes the
// first, others the last), and as multipart under any of its subtypes
// (multipart/mixed, which Go's Request.MultipartReader reads too).
func withoutSecrets(r InboxRequest) InboxRequest {
	form, multi, boundaries := false, false, []string(nil)
	header := make([]HeaderField, len(r.Header))
	for i, f := range r.Header {
		header[i] = HeaderField{Name: f.Name, Value: withoutCredential(f.Name, f.Value)}
		if strings.EqualFold(f.Name, "Content-Type") {
			switch mt, boundary := mediaType(f.Value); {
			case mt == "application/x-www-form-urlencoded":
				form = true
			case strings.HasPrefix(mt, "multipart/"):
				multi = true
				if boundary != "" {
					boundaries = append(boundaries, boundary)
				}
			}
		}
	}
	r.Path, r.Header, r.Query = pathWithoutSecrets(r.Path), header, formWithoutSecrets(r.Query)
	if n := len(boundaries); n > 2 {
		// The first's and the last's, those readers take: each is a reading of the
		// whole body, and a request may have a thousand.
		boundaries = []string{boundaries[0], boundaries[n-1]}
	}
	if multi {
		// And by the boundary its first delimiter has, which may be none of theirs.
		boundaries = append(boundaries, firstDelimiter(r.Body))
	}
	for i, b := range boundaries {
		if b != "" && !slices.Contains(boundaries[:i], b) {
			r.Body = multipartWithoutSecrets(r.Body, b)
		}
	}
	if form && !jsonBody(r.Body) {
		r.Body = []byte(formWithoutSecrets(string(r.Body)))
	}
	return r
}

// jsonBody reports whether body is a JSON object or array, which no form is: it
// is kept whole as JSON is, whatever its Content-Type says (curl -d '{…}' sends
// it as a form). Read as a form, all of it up to its first '=' would be a field's
// name, which holds a credential's when a key does ("session_id"), and what
// follows would go: the JSON's end, and not the credential.
func jsonBody(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[') && json.Valid(b)
}

// mediaType is a Content-Type's media type, in lower case, and its boundary. One
// that Go's reader refuses is read as lenient readers read it: its type is what
// comes before a ';' or a ',' ("application/x-www-form-urlencoded, text/plain"),
// and its boundary what follows "boundary=" ("boundary=b; charset", a parameter
// with no value).
func mediaType(v string) (mt, boundary string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, params["boundary"]
	}
	t, _, _ := strings.Cut(v, ";")
	t, _, _ = strings.Cut(t, ",")
	mt = strings.ToLower(strings.TrimSpace(t))
	i := indexFold(v, "boundary=")
	if i < 0 {
		return mt, ""
	}
	b := v[i+len("boundary="):]
	if q, ok := strings.CutPrefix(b, `"`); ok {
		b, _, _ = strings.Cut(q, `"`)
		return mt, b
	}
	if end := strings.IndexAny(b, "; \t,"); end >= 0 {
		b = b[:end]
	}
	return mt, b
}

// indexFold is the index in s of the first instance of the ASCII word w, in any
// case of its letters, or -1. Unlike strings.ToLower's, it is an index in s: a
// byte that is not UTF-8, or a letter whose lower case is longer or shorter
// (K, the Kelvin sign), stays as long as it is.
func indexFold(s, w string) int {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for j < len(w) && s[i+j]|0x20 == w[j]|0x20 && (isLetter(w[j]) || s[i+j] == w[j]) {
			j++
		}
		if j == len(w) {
			return i
		}
	}
	return -1
}

// firstDelimiter is the boundary of a multipart body's first delimiter: what
// follows "--" on the first line that begins with it (a line ending in CRLF, LF
// or CR), or "".
func firstDelimiter(body []byte) string {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexAny(body, "\r\n"); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if b, ok := bytes.CutPrefix(bytes.TrimRight(line, " \t"), []byte("--")); ok {
			return string(b)
		}
	}
	return ""
}

// formWithoutSecrets replaces the values of a query's or a form's fields that
// carry credentials, keeping the rest as sent. A field's name is read with its
// escapes, one that is malformed ("%zz") left as it came, as lenient readers
// read it (PHP's: "%74oken%zz" is "token%zz"); and a ';' separates fields too,
// as it does to some readers (Go's refuses it, and keeps "a" = "1;token=T"):
// "a=1;token=T" is kept as "a=1;token=%5Bredacted%5D"; and so does a '?' in a
// value, which begins the query of a URL sent unescaped in it (fieldWithoutSecret).
func formWithoutSecrets(form string) string {
	if form == "" {
		return form
	}
	pairs := strings.Split(form, "&")
	changed := false
	for i, p := range pairs {
		if r := fieldWithoutSecret(p); r != p {
			pairs[i], changed = r, true
		}
	}
	if !changed {
		return form
	}
	return strings.Join(pairs, "&")
}

// fieldWithoutSecret is one of a form's fields ("name=value", between two '&')
// without its credential: its whole value when its name carries one, and
// otherwise that of each field after a ';', a '?' or a '#' in it whose name
// does: a '?' in a value begins the query of a URL sent unescaped in it
// ("next=https://x/cb?token=T", a return address), whose first field follows
// it, and a '#' its fragment, or the request's own, which a client may send
// in the request line ("?a=1#access_token=T", as OAuth's implicit grant
// returns a token).
func fieldWithoutSecret(p string) string {
	redacted := func(f string) string {
		k, _, _ := strings.Cut(f, "=")
		if !SecretName(looseUnescape(k)) {
			return f
		}
		return k + "=" + url.QueryEscape(inboxRedacted)
	}
	if r := redacted(p); r != p {
		return r
	}
	i := strings.IndexAny(p, ";?#")
	if i < 0 {
		return p
	}
	var out strings.Builder
	out.WriteString(p[:i+1])
	for rest := p[i+1:]; ; {
		f, sep := rest, ""
		if j := strings.IndexAny(rest, ";?#"); j >= 0 {
			f, sep, rest = rest[:j], rest[j:j+1], rest[j+1:]
		}
		out.WriteString(redacted(f))
		if sep == "" {
			break
		}
		out.WriteString(sep)
	}
	return out.String()
}

// pathWithoutSecrets is a path without the credentials of its parameters: the
// value of each ";name=value" whose name is a credential's (";jsessionid=…",
// which Java servers read from a URL's path, ";token=…"; read with its escapes),
// to the next ';', '/', '?' or '#', goes; an empty one holds nothing, and stays.
// A '#' begins a fragment, which a client may send in the request line: it is
// read as a query is (formWithoutSecrets). The access log writes paths so too
// (PathWithoutSecrets).
func pathWithoutSecrets(p string) string {
	if i := strings.IndexByte(p, '#'); i >= 0 {
		return pathWithoutSecrets(p[:i]) + "#" + formWithoutSecrets(p[i+1:])
	}
	out := splice{s: p}
	for i := strings.IndexByte(p, ';'); i >= 0; {
		from, to, secret := paramAt(p, i, 0, false)
		next := from // a value in quotes, kept, is read for parameters too
		if secret {
			out.replace(from, to, escapedRedacted)
			next = to
		}
		j := strings.IndexByte(p[next:], ';')
		if j < 0 {
			break
		}
		i = next + j
	}
	return out.String()
}

// splice is s with some of its parts replaced, in order, each written only when
// it changes s; String is s itself when none did.
type splice struct {
	s       string
	out     strings.Builder
	kept    int // s[:kept] is written
	changed bool
}

// replace puts with in the place of s[from:to], which comes after any part
// replaced before it.
func (b *splice) replace(from, to int, with string) {
	if b.s[from:to] == with {
		return
	}
	b.out.WriteString(b.s[b.kept:from])
	b.out.WriteString(with)
	b.kept, b.changed = to, true
}

func (b *splice) String() string {
	if !b.changed {
		return b.s
	}
	b.out.WriteString(b.s[b.kept:])
	b.kept = len(b.s)
	return b.out.String()
}

// PathWithoutSecrets is an escaped path without the credentials of its ";name=value"
// parameters, as an inbox records it: for a log line.
// Escaped, a fragment's '#' is "%23".
func PathWithoutSecrets(p string) string {
	if i := strings.Index(p, "%23"); i >= 0 {
		return pathWithoutSecrets(p[:i]) + "%23" + formWithoutSecrets(p[i+len("%23"):])
	}
	return pathWithoutSecrets(p)
}

// urlsWithoutSecrets is a header's value without the credentials of the URLs in
// it, alone or among other text: the query of each, from a '?' to a space, a
// '#' or, in a URL after a '<' or a '"', the '>' or '"' that closes it (Link's
// <https://x/?access_token=T>; rel="next"), and its fragment, from a '#' to the
// same but a '#' (#access_token=T), as formWithoutSecrets keeps a form; and
// each ";name=value" parameter, a path's or the header's own, as paramAt reads
// it (";jsessionid=T", "; session=T"), and so each "name=value" that begins the
// value or follows a ',', an '&', a space or a tab ("token=T; a=1", "a=1,
// token=T", "a=1&token=T"), in quotes or a URL too ('note="a b",token=T'), its
// name ending at a ',' or an '&' too and its value at a ',', not at a '/'. It
// reads the value once, a run of spaces and the name after each separator once.
func urlsWithoutSecrets(v string) string {
	if !strings.ContainsAny(v, "?;#=") {
		return v
	}
	out := splice{s: v}
	open := byte(0) // the '<' or '"' that a URL may be in
	for i := -1; i < len(v); i++ {
		closer := byte(0)
		switch open {
		case '<':
			closer = '>'
		case '"':
			closer = '"'
		}
		if i < 0 || listSeparator(v[i]) && (i+1 == len(v) || v[i+1] != ' ' && v[i+1] != '\t') {
			// A parameter without its ';': the value's first, or one of a list,
			// read once from the last of the spaces before it (paramAt skips
			// them: read from each, a run of them cost its length squared); in
			// a URL or quotes too, whose state a space ends, the closing quote
			// of a quoted text with a space in it then read as an opening one.
			if from, to, secret := paramAt(v, i, closer, true); secret {
				out.replace(from, to, escapedRedacted)
				i = to - 1
				continue
			}
			if i < 0 {
				continue
			}
		}
		switch c := v[i]; {
		case c == ' ' || c == '\t':
			open = 0
		case c == '<':
			open = c
		case c == '>' && open == '<', c == '"' && open == '"':
			open = 0
		case c == '"':
			open = c
		case c == '?' || c == '#':
			// A fragment is read as a query is: OAuth's implicit grant returns its
			// token in one (#access_token=T&token_type=bearer).
			end := i + 1
			for end < len(v) && v[end] != ' ' && v[end] != '\t' && (c == '#' || v[end] != '#') && (closer == 0 || v[end] != closer) {
				end++
			}
			out.replace(i+1, end, formWithoutSecrets(v[i+1:end]))
			i = end - 1
		case c == ';':
			from, to, secret := paramAt(v, i, closer, false)
			if !secret {
				i = from - 1 // a value kept is read on: a URL in quotes may be in it
				break
			}
			out.replace(from, to, escapedRedacted)
			i = to - 1
		}
	}
	return out.String()
}

// listSeparator reports whether c separates the "name=value" pairs of a
// header's value written as a list, without the ';' of a parameter.
func listSeparator(c byte) bool { return c == ',' || c == '&' || c == ' ' || c == '\t' }

// escapedRedacted is inboxRedacted as a query's or a path's value keeps it.
var escapedRedacted = url.QueryEscape(inboxRedacted)

// paramAt reads the parameter after the ';' at v[i] (";name=value", spaces and
// tabs after the ';' and around the '=' skipped, as Go's mime.ParseMediaType
// skips them: "; session = T"): v[from:to] is its value, to the next ';', '/',
// '?', '#', space or tab, or closer (when not 0), a value in double quotes to
// its closing quote (a '\' escaping the character after it, as Go's reader
// reads a header's "ab\"cd") and on to one of those ('"ab"cd' whole, as a Java
// server reads a path's); secret says whether its name is a credential's and its
// value not empty. A parameter with no '=' has none: from and to are where its
// name ends. In a list (a pair without its ';'), a ',' ends the value and the
// name too, and an '&' the name; a '/' ends the name alone, as base64 has it
// (secret=wJalr/K7MDENG/bPxRfi, whose last parts were kept, as a path's
// parameter ends at a '/'). The value of a name that is not a credential's
// is not read, to is from: read for each '&' of "a=x&b=x&…", which ends no
// value, it would cost the length of the list squared.
func paramAt(v string, i int, closer byte, list bool) (from, to int, secret bool) {
	stop := func(c byte) bool {
		return c == ';' || c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == closer && closer != 0 || c == ',' && list
	}
	space := func(j int) int {
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		return j
	}
	name := space(i + 1)
	end := name
	for end < len(v) && v[end] != '=' && !stop(v[end]) && (v[end] != '&' || !list) {
		end++
	}
	j := space(end)
	if j == len(v) || v[j] != '=' {
		return end, end, false
	}
	from = space(j + 1)
	to = from
	if !SecretName(looseUnescape(v[name:end])) {
		return from, to, false
	}
	if to < len(v) && v[to] == '"' {
		for to++; to < len(v) && v[to] != '"'; to++ {
			if v[to] == '\\' && to+1 < len(v) {
				to++ // an escaped character: \" does not close it
			}
		}
		to = min(to+1, len(v)) // and its closing quote
	}
	for to < len(v) && (!stop(v[to]) || v[to] == '/' && list) {
		to++ // what follows a closing quote is the value's too ("ab"cd)
	}
	return from, to, from < to
}

// looseUnescape is a name with its escapes read ('+' a space), each malformed
// one ("%zz", a '%' at the end) left as it is.
func looseUnescape(s string) string {
	if n, err := url.QueryUnescape(s); err == nil {
		return n
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || (c|0x20) >= 'a' && (c|0x20) <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}

// multipartWithoutSecrets replaces the content of a multipart/form-data body's
// parts whose field names carry credentials (by Content-Disposition's name, a
// file's too), keeping the rest byte for byte: its delimiters, each part's
// headers, the other parts. It reads the body twice: with lines that end in CRLF
// or, as Go's reader takes them, in LF alone, then as readers that end a line at
// a CR alone too (Python's email parser); what either reads as a credential
// goes. A part cut off by the body's end is read to it. A part whose content is
// multipart itself (a form's multipart/mixed field of files, which Python's cgi
// reads part by part, each by its name) is read so too, to maxPartNesting.
func multipartWithoutSecrets(body []byte, boundary string) []byte {
	return partsWithoutSecrets(partsWithoutSecrets(body, boundary, false, 0), boundary, true, 0)
}

// maxPartNesting is how deep in parts within parts a multipart body is read:
// each level reads its content once more.
const maxPartNesting = 4

// partsWithoutSecrets is multipartWithoutSecrets reading the body once, a CR
// alone ending a line when cr, as a part nested depth deep in another.
func partsWithoutSecrets(body []byte, boundary string, cr bool, depth int) []byte {
	delim := []byte("--" + boundary)
	next := func(from int) int { // the start of the next delimiter line at or after from
		for i := from; i <= len(body); {
			j := bytes.Index(body[i:], delim)
			if j < 0 {
				return -1
			}
			d := i + j
			if (d == 0 || body[d-1] == '\n' || cr && body[d-1] == '\r') && isDelimiter(body[d+len(delim):]) {
				return d
			}
			i = d + 1
		}
		return -1
	}
	var out []byte
	kept := 0 // body[:kept] is in out, or out is nil and nothing changed
	for d := next(0); d >= 0; {
		rest := body[d+len(delim):]
		if bytes.HasPrefix(rest, []byte("--")) {
			break // the close delimiter: what follows is the epilogue
		}
		n, brk := lineAt(rest, cr)
		if brk == 0 {
			break
		}
		start := d + len(delim) + n + brk
		end, nd := len(body), next(start)
		if nd >= 0 {
			end = nd - 1 // the line break before a delimiter is the delimiter's
			if body[end] == '\n' && end > start && body[end-1] == '\r' {
				end--
			}
			end = max(end, start)
		}
		if content, secret, nested, ok := partContent(body[start:end], cr); ok && content < end-start {
			at := start + content
			switch {
			case secret && string(body[at:end]) != inboxRedacted:
				out = append(append(out, body[kept:at]...), inboxRedacted...)
				kept = end
			case !secret && nested != "" && depth < maxPartNesting:
				if inner := partsWithoutSecrets(body[at:end], nested, cr, depth+1); !bytes.Equal(inner, body[at:end]) {
					out = append(append(out, body[kept:at]...), inner...)
					kept = end
				}
			}
		}
		d = nd
	}
	if out == nil {
		return body
	}
	return append(out, body[kept:]...)
}

// lineAt returns the length of the line b begins with and that of its line
// break: CRLF or LF, or with cr a CR alone too; brk is 0 for a line that ends
// with b.
func lineAt(b []byte, cr bool) (n, brk int) {
	for i, c := range b {
		switch {
		case c == '\n':
			return i, 1
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			return i, 2
		case c == '\r' && cr:
			return i, 1
		}
	}
	return len(b), 0
}

// isDelimiter reports whether what follows "--boundary" makes it a delimiter line:
// "--", or optional spaces and tabs and a line break.
func isDelimiter(rest []byte) bool {
	if bytes.HasPrefix(rest, []byte("--")) {
		return true
	}
	rest = bytes.TrimLeft(rest, " \t")
	return len(rest) == 0 || rest[0] == '\r' || rest[0] == '\n'
}

// partContent returns where the content of a multipart body's part starts (ok
// is false when it has none), whether its field's name carries a credential
// (SecretName), and the boundary of its content when its Content-Type says it
// is multipart. Its lines end as lineAt reads them with cr. Its headers end at
// the first empty line, or at the first line that is no header (one without a
// ':', where Go's reader fails and others read on): the content is what follows
// the one, and begins with the other.
func partContent(part []byte, cr bool) (start int, secret bool, nested string, ok bool) {
	// A header folded over lines (a line beginning with a space or a tab goes
	// on the one before) is read whole, as Go's reader reads it: its name may
	// be on a line of its own. Each is kept as its lines and joined once, a
	// header of thousands of lines costing its length.
	var fields [][]string
	for at := 0; ; {
		n, brk := lineAt(part[at:], cr)
		line := string(part[at : at+n])
		if k := len(fields); k > 0 && n > 0 && (line[0] == ' ' || line[0] == '\t') {
			fields[k-1] = append(fields[k-1], strings.TrimLeft(line, " \t"))
		} else if strings.Contains(line, ":") {
			fields = append(fields, []string{line})
		} else {
			start = at // a line that is no header begins the content
			if n == 0 {
				start += brk // the empty line ends the headers
			}
			if n == 0 && brk == 0 {
				return 0, false, "", false // no content
			}
			break
		}
		if brk == 0 {
			return 0, false, "", false // no content
		}
		at += n + brk
	}
	for _, lines := range fields {
		name, value, _ := strings.Cut(lines[0], ":")
		value = strings.Join(append([]string{value}, lines[1:]...), " ")
		switch name = strings.TrimSpace(name); {
		case strings.EqualFold(name, "Content-Disposition"):
			if _, params, err := mime.ParseMediaType(value); err == nil {
				if SecretName(params["name"]) {
					return start, true, "", true
				}
			} else if SecretName(value) { // unreadable: a name may still be in it
				return start, true, "", true
			}
		case strings.EqualFold(name, "Content-Type"):
			if mt, boundary := mediaType(value); strings.HasPrefix(mt, "multipart/") {
				nested = boundary
			}
		}
	}
	return start, false, nested, true
}
