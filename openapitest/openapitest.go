// Package openapitest holds hookd's HTTP exchanges against its OpenAPI document
// (httpapi/openapi.json) with kin-openapi, so the document cannot drift from the
// program: the tests of httpapi check every response their harness receives, and the
// daemon's end-to-end tests every response from a daemon they started.
//
// Check finds the document's operation for a request (kin-openapi's gorilla/mux
// router, on the path as it was sent) and then:
//   - validates the response: its status must be one the operation lists, and its
//     headers and body must match what the document says of that status; a status
//     whose document has no body must come without one;
//   - validates the request when hookd took it (a 2xx answer): what hookd accepts
//     the document must accept too (parameters, body, and the kind of credentials);
//   - checks a HEAD as the GET it stands for, as the document says every GET
//     operation answers HEAD: its status and headers, and no body;
//   - for a request the document has no operation for, expects the 404 or 405 that
//     hookd's routers answer, with the error body of that family of routes
//     (problem+json under /api/; OAuth's body for a 405 under {base}/oauth/, where
//     an OAuth client parses nothing else; ORCID's body elsewhere).
//
// It is a test helper: only tests import it, so kin-openapi is not in the binary.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator checks exchanges against one OpenAPI document. It is safe for
// concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	// catchAll are the paths of the routes whose last parameter hookd's router takes
	// as a catch-all ("*callback"): the parameter is the rest of the path, "/"
	// included. An OpenAPI path parameter is one segment, so Check encodes the
	// slashes of the rest before it looks the route up again.
	catchAll []*regexp.Regexp
	// oauth are the prefixes of the OAuth endpoints ("/oauth/" under their
	// servers' paths), where a method the document lacks is answered in OAuth's body.
	oauth []string
}

// catchAllParam is the path parameter that httprouter's "*callback" becomes.
const catchAllParam = "{callback}"

// oauthPrefix starts the paths of the OAuth endpoints (token, revoke).
const oauthPrefix = "/oauth/"

// New loads an OpenAPI document, validates it (as OpenAPI 3.1 when it says so) and
// makes its router. The ORCID-compatible routes are matched under the default of
// their {base} server variable, which GET /openapi.json sets to http.base_path.
func New(doc []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := t.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	router, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	v := &Validator{doc: t, router: router}
	for path, item := range t.Paths.Map() {
		for _, base := range serverBases(t, item) {
			if strings.HasSuffix(path, "/"+catchAllParam) {
				v.catchAll = append(v.catchAll, catchAllPattern(base+path))
			}
			if strings.HasPrefix(path, oauthPrefix) && !slices.Contains(v.oauth, base+oauthPrefix) {
				v.oauth = append(v.oauth, base+oauthPrefix)
			}
		}
	}
	return v, nil
}

// Doc is the loaded document.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Operations lists the document's operations as its router matches them: the
// method, a space, and the path with its server's path (its variables at their
// defaults) before it, e.g. "PUT /orcid-api-web/{orcid}/webhook/{callback}".
func (v *Validator) Operations() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			for _, base := range serverBases(v.doc, item) {
				out = append(out, method+" "+base+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// serverBases are the path prefixes of the servers of a path item (or of the
// document), with their variables at their defaults, as gorillamux matches them.
func serverBases(doc *openapi3.T, item *openapi3.PathItem) []string {
	servers := item.Servers
	if len(servers) == 0 {
		servers = doc.Servers
	}
	if len(servers) == 0 {
		return []string{""}
	}
	var bases []string
	for _, s := range servers {
		u := s.URL
		for name, sv := range s.Variables {
			u = strings.ReplaceAll(u, "{"+name+"}", sv.Default)
		}
		if p, err := url.Parse(u); err == nil {
			u = p.Path
		}
		bases = append(bases, strings.TrimSuffix(u, "/"))
	}
	return bases
}

// catchAllPattern matches a path of the template whose last parameter is the rest
// of the path, and captures that rest, which may be empty (as "*callback" may).
func catchAllPattern(template string) *regexp.Regexp {
	rest := strings.TrimSuffix(template, catchAllParam)
	var expr strings.Builder
	expr.WriteString("^")
	for {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			break
		}
		expr.WriteString(regexp.QuoteMeta(rest[:i]) + "[^/]+")
		rest = rest[j+1:]
	}
	expr.WriteString(regexp.QuoteMeta(rest) + "(.*)$")
	return regexp.MustCompile(expr.String())
}

// Exchange is one request and the response hookd gave it, both bodies read.
type Exchange struct {
	// Request is the request as it was sent: its path is URL.Opaque when set (sent
	// byte for byte), URL.EscapedPath otherwise. Its Body is not read.
	Request     *http.Request
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// outsideDocument are the routes that openapi.json leaves out, because they are not
// JSON APIs: each with why. A pattern ending in "*" covers every path that starts
// with what comes before it.
var outsideDocument = map[string]string{
	"/":          "redirects to the web console",
	"/console":   "redirects to the web console",
	"/console/*": "the web console: HTML pages",
	"/inbox/*":   "the developer inbox: takes callbacks of any method and body",
}

// Outside reports whether the route pattern or request path is one the document
// leaves out (outsideDocument); Check passes every exchange with one.
func Outside(path string) bool {
	for p := range outsideDocument {
		if path == p || strings.HasSuffix(p, "*") && strings.HasPrefix(path, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

// Check validates an exchange against the document. Its error names the request,
// the operation it matched and what does not match.
func (v *Validator) Check(ex Exchange) error {
	raw := wirePath(ex.Request)
	if Outside(raw) {
		return nil
	}
	name := ex.Request.Method + " " + raw
	if ex.Request.URL.RawQuery != "" {
		name += "?" + ex.Request.URL.RawQuery
	}
	if _, err := url.PathUnescape(raw); err != nil {
		// net/http refuses a request-target that does not parse before any router
		// sees it: 400 in plain text.
		if ex.Status != http.StatusBadRequest || !strings.HasPrefix(ex.Header.Get("Content-Type"), "text/plain") {
			return fmt.Errorf("%s → %d: the path is not valid percent-encoding (%v), so net/http answers it with a plain-text 400, not this", name, ex.Status, err)
		}
		return nil
	}
	head := ex.Request.Method == http.MethodHead
	if head {
		// The document says every GET operation answers HEAD (RFC 9110 §9.3.2): it
		// is checked as that GET, status and headers, and must come without a body.
		if len(ex.Body) > 0 {
			return fmt.Errorf("%s → %d: an answer to HEAD has no body, but this one has %d bytes", name, ex.Status, len(ex.Body))
		}
		get := ex.Request.Clone(context.Background())
		get.Method = http.MethodGet
		ex.Request = get
	}
	req := routable(ex.Request, raw, ex.RequestBody)
	route, params, err := v.router.FindRoute(req)
	if err != nil && !errors.Is(err, routers.ErrMethodNotAllowed) {
		for _, re := range v.catchAll {
			m := re.FindStringSubmatchIndex(raw)
			if m == nil {
				continue
			}
			rest := raw[m[2]:m[3]]
			alt := raw[:m[2]] + strings.ReplaceAll(rest, "/", "%2F")
			if rest == "" {
				alt += "-" // one segment for the router; the parameter is empty below
			}
			r2 := routable(ex.Request, alt, ex.RequestBody)
			if route, params, err = v.router.FindRoute(r2); err == nil {
				req = r2
				if rest == "" {
					params[strings.Trim(catchAllParam, "{}")] = ""
				}
			}
			break
		}
	}
	if err != nil {
		if cerr := v.checkUnrouted(ex, raw, err, head); cerr != nil {
			return fmt.Errorf("%s → %d: %w", name, ex.Status, cerr)
		}
		return nil
	}
	op := route.Method + " " + route.Path
	opts := &openapi3filter.Options{
		AuthenticationFunc:      authenticate,
		IncludeResponseStatus:   true,
		MultiError:              true,
		SkipSettingDefaults:     true,
		ExcludeResponseBody:     head,
		SchemaValidationOptions: formats,
	}
	reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if ex.Status >= 200 && ex.Status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
			return fmt.Errorf("%s (operation %s) → %d: hookd took a request the document refuses: %w", name, op, ex.Status, err)
		}
	}
	if err := v.checkResponse(reqIn, ex); err != nil {
		return fmt.Errorf("%s (operation %s) → %d: %w", name, op, ex.Status, err)
	}
	return nil
}

// checkResponse validates the response with kin-openapi, and checks that a status
// the document gives no body comes without one (kin-openapi does not).
func (v *Validator) checkResponse(reqIn *openapi3filter.RequestValidationInput, ex Exchange) error {
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 ex.Status,
		Header:                 ex.Header,
		Options:                reqIn.Options,
	}
	in.SetBodyBytes(ex.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	ref := reqIn.Route.Operation.Responses.Status(ex.Status)
	if ref != nil && ref.Value != nil && len(ref.Value.Content) == 0 && len(ex.Body) > 0 {
		return fmt.Errorf("the document gives status %d no body, but the response has %d bytes (Content-Type %q)",
			ex.Status, len(ex.Body), ex.Header.Get("Content-Type"))
	}
	return nil
}

// checkUnrouted checks the answer to a request for which the document has no
// operation: hookd's routers answer 404 (no such path) or 405 (no such method),
// with the error body of the path's family, which the document describes as
// components.responses: Problem… under /api/ and /relay/, OAuthMethodNotAllowed
// for a method the OAuth endpoints do not take, Orcid… elsewhere. For a HEAD
// (head; ex holds it as its GET), whose answer has no body, the headers are checked.
func (v *Validator) checkUnrouted(ex Exchange, raw string, routeErr error, head bool) error {
	family := "Orcid"
	switch {
	case strings.HasPrefix(raw, "/api/") || strings.HasPrefix(raw, "/relay/"):
		family = "Problem"
	case ex.Status == http.StatusMethodNotAllowed && slices.ContainsFunc(v.oauth, func(p string) bool { return strings.HasPrefix(raw, p) }):
		family = "OAuth"
	}
	var name string
	switch ex.Status {
	case http.StatusNotFound:
		name = family + "NotFound"
	case http.StatusMethodNotAllowed:
		name = family + "MethodNotAllowed"
	default:
		return fmt.Errorf("the document has no operation for this request (%v), yet hookd answered it with %d", routeErr, ex.Status)
	}
	ref := v.doc.Components.Responses[name]
	if ref == nil {
		return fmt.Errorf("the document has no components.responses.%s for a request it has no operation for", name)
	}
	responses := openapi3.NewResponses()
	responses.Set(fmt.Sprint(ex.Status), ref)
	req := routable(ex.Request, "/", nil)
	route := &routers.Route{
		Spec:      v.doc,
		Path:      "(no operation)",
		PathItem:  &openapi3.PathItem{},
		Method:    ex.Request.Method,
		Operation: &openapi3.Operation{Responses: responses},
	}
	reqIn := &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: &openapi3filter.Options{
		IncludeResponseStatus:   true,
		MultiError:              true,
		ExcludeResponseBody:     head,
		SchemaValidationOptions: formats,
	}}
	if err := v.checkResponse(reqIn, ex); err != nil {
		return fmt.Errorf("not an operation of the document; as components.responses.%s: %w", name, err)
	}
	return nil
}

// wirePath is the path of a request as it goes on the wire.
func wirePath(r *http.Request) string {
	if r.URL.Opaque != "" {
		return r.URL.Opaque
	}
	return r.URL.EscapedPath()
}

// routable is a copy of r for the router and the validators: its URL has the raw
// path (made a valid escaping, so URL.EscapedPath returns it) and its body is body.
// raw must unescape.
func routable(r *http.Request, raw string, body []byte) *http.Request {
	esc := validEscaping(raw)
	path, _ := url.PathUnescape(esc)
	u := &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: path, RawPath: esc, RawQuery: r.URL.RawQuery}
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	if u.Host == "" {
		u.Host = r.Host
	}
	out := r.Clone(context.Background())
	out.URL = u
	out.RequestURI = ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	return out
}

// validEscaping percent-encodes the bytes of a raw path that may not appear in a
// path as they are (a quote, a space), keeping its escapes, so that the URL keeps
// the path as it was sent.
func validEscaping(raw string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			b.WriteByte(c) // raw unescapes: a valid escape follows
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// authenticate is the request validator's check of credentials: hookd's tokens are
// opaque, so it checks that the request carries the kind the security scheme
// names (a bearer token, or HTTP Basic).
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	want := "Bearer"
	if s := in.SecurityScheme; s.Type == "http" && strings.EqualFold(s.Scheme, "basic") {
		want = "Basic"
	}
	kind, cred, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(kind, want) || strings.TrimSpace(cred) == "" {
		return in.NewError(fmt.Errorf("no %s credentials in Authorization", want))
	}
	return nil
}

// formats are the string formats the document uses that kin-openapi does not
// check by itself (it checks date-time): uri, email and uuid.
var formats = []openapi3.SchemaValidationOption{
	openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if u.Scheme == "" {
			return fmt.Errorf("%q is not an absolute URI", s)
		}
		return nil
	})),
	openapi3.WithStringFormatValidator("email", openapi3.NewCallbackValidator(func(s string) error {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			return fmt.Errorf("%q is not an e-mail address", s)
		}
		return nil
	})),
	openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
}
