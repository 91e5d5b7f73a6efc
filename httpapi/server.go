// Package httpapi is hookd's HTTP front: the ORCID-compatible OAuth and webhook
// registration API, the platform API, and the operational endpoints.
package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"hookd/secret"
	"hookd/store"
)

// Options configures NewServer.
type Options struct {
	Logger *slog.Logger
	Store  *store.Store
	// BasePath mounts the ORCID-compatible routes under a prefix, e.g. "/orcid-api-web".
	BasePath string
	// PublicURL is how callers reach hookd, for absolute Location headers.
	PublicURL string
	// TokenTTL is the lifetime of issued access tokens.
	TokenTTL time.Duration
	// AllowPrivateTargets lets callbacks point at loopback and private addresses.
	AllowPrivateTargets bool
	// EmailConfigured says hookd's configuration names an SMTP relay to send
	// organisations' e-mail through ([email] smtp_addr and from).
	EmailConfigured bool
	// CoalesceWindow is how long after its first event a delivery becomes due.
	CoalesceWindow time.Duration
	// Nudge, when set, is called after events are committed, to wake the dispatcher.
	Nudge func()
	// AdminToken, when set, is a static bearer token (auth.admin_token_file) that
	// carries the /admin scope and nothing else.
	AdminToken string
	// Metrics, when set, counts requests and events; MetricsHandler serves /metrics.
	Metrics interface {
		Request(route, method string, status int)
		Events(n int)
	}
	MetricsHandler http.Handler
	// Ready reports whether the daemon is ready to serve (for /readyz); nil means ready.
	Ready func(ctx context.Context) error
	// Inbox, when set, serves the inbox (/inbox/{name}/…, inbox.go).
	Inbox *InboxOptions
	// Console, when set, serves the web console under /console/ (GET / leads there).
	Console http.Handler
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client
	// (http.trusted_proxies; proxy.go).
	TrustedProxies []netip.Prefix
}

// Server is the HTTP handler of hookd.
type Server struct {
	opts   Options
	log    *slog.Logger
	store  *store.Store
	router *httprouter.Router // fixed routes, on the decoded path
	orcid  *httprouter.Router // ORCID webhook routes, on the escaped path
	// registered lists the routes of routes(), in the order they were registered.
	registered []route
	heads      map[string]bool // the router, method and path of each route handle made (its HEAD twins)
	inbox      http.Handler    // the inbox, when on
	delays     inboxDelays
	guard      *authGuard     // slows failed client authentications
	faultLog   store.FaultLog // rate-limits the log lines of store faults
	// adminDigest is secret.Hash of opts.AdminToken, when there is one: what a
	// bearer token's digest is compared with (isAdminDigest).
	adminDigest []byte
}

// NewServer returns hookd's HTTP handler with every route of routes.go.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = store.DefaultTokenTTL
	}
	if opts.Nudge == nil {
		opts.Nudge = func() {}
	}
	opts.PublicURL = strings.TrimSuffix(opts.PublicURL, "/")
	s := &Server{opts: opts, log: opts.Logger, store: opts.Store, delays: inboxDelays{stop: make(chan struct{})}, guard: newAuthGuard()}
	if opts.AdminToken != "" {
		s.adminDigest = secret.Hash(opts.AdminToken)
	}
	s.router = newRouter()
	s.orcid = newRouter()
	s.routes()
	return s
}

func newRouter() *httprouter.Router {
	r := httprouter.New()
	// The callback segment holds "%2F%2F" and must reach the handler as sent: no
	// redirects to "clean" paths.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	return r
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No answer of hookd's is to be read as another type than it names: an
	// error body that echoes a caller's input is never script or a page.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if encodedSlash(r) {
		// The router sees the decoded path, where "%2F" would be a separator:
		// "/webhooks/{id}%2Fdeactivate" would deactivate the webhook.
		writeProblemBody(w, http.StatusNotFound, "no such resource: "+r.Method+" "+rawPath(r)+" (an encoded slash, %2F, is no path separator, and no id of this API holds one)", "")
		return
	}
	s.router.ServeHTTP(w, r)
}

// encodedSlash reports whether r's path is one of hookd's own API (/api/…) with an
// encoded slash in it. Only an ORCID route's callback segment holds one.
func encodedSlash(r *http.Request) bool {
	if r.URL.RawPath == "" || !strings.HasPrefix(r.URL.Path, "/api/") {
		return false // RawPath is set only when the path has an escape of its own
	}
	p := rawPath(r)
	return strings.Contains(p, "%2F") || strings.Contains(p, "%2f")
}

// serveORCID routes on the escaped path, so a percent-encoded callback stays one
// segment and is decoded exactly once, by the handler.
func (s *Server) serveORCID(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") { // never the base path's (CheckBasePath)
		// hookd's own API's paths are never an ORCID route's ("/api/webhook" is no
		// iD's): what no API route serves is its 404, in problem+json.
		s.notFound(w, r)
		return
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path = rawPath(r)
	u.RawPath = ""
	r2.URL = &u
	s.orcid.ServeHTTP(w, r2)
}

// rawPath is the path of the request exactly as the client sent it. URL.EscapedPath
// is not: for a path with a character it would escape itself (such as '"'), it
// escapes the decoded path again, so "%2F" becomes "/" and the callback segment
// falls apart.
func rawPath(r *http.Request) string {
	p, _, _ := strings.Cut(r.RequestURI, "?")
	if !strings.HasPrefix(p, "/") { // an absolute-form request target, or none (tests)
		return r.URL.EscapedPath()
	}
	return p
}

// params returns the router parameters of a request.
func params(r *http.Request) httprouter.Params { return httprouter.ParamsFromContext(r.Context()) }

// webhookParam is the webhook id of a route's path, in lower case as hookd writes
// it: a UUID in capitals is the same id.
func webhookParam(r *http.Request) string { return strings.ToLower(params(r).ByName("id")) }

// jsonType is the Content-Type of hookd's JSON answers.
const jsonType = "application/json;charset=UTF-8"

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header()[hContentType] = jsonTypeHeader
	w.WriteHeader(status)
	writeJSONBody(w, v)
}

func writeJSONBody(w http.ResponseWriter, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return // the client went away; nothing to tell it
	}
}

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged wraps the whole handler with a debug access log line (never the query or
// headers, which may carry secrets).
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		r, info := withInfo(r)
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		label := info.label
		if label == "" {
			label = "unmatched"
		}
		if s.opts.Metrics != nil {
			s.opts.Metrics.Request(label, r.Method, sw.status)
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("http", "method", r.Method, "path", logPath(r), "route", label, "status", sw.status,
				"duration", time.Since(start))
		}
	})
}

// logPath is a request's path as the log shows it: without the key of a relay
// callback, which is a credential, and with an ORCID registration's callback URL
// (encoded in the path) as URLs are logged, without its user, query or fragment.
// A relay call is known by its decoded path, which the router matches: an escape
// ("/%72elay/…", "%2F" before the key) reaches the relay all the same.
func logPath(r *http.Request) string {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/relay/"); ok {
		if id, _, ok := strings.Cut(rest, "/"); ok {
			return "/relay/" + url.PathEscape(id) + "/[redacted]"
		}
	}
	p := r.URL.EscapedPath()
	if i := strings.Index(p, "/webhook/"); i >= 0 {
		i += len("/webhook/")
		return store.PathWithoutSecrets(p[:i]) + logCallback(p[i:])
	}
	return store.PathWithoutSecrets(p)
}

// logCallback is an encoded callback URL without what may carry a credential
// (store.LoggedURL): its user, query and fragment, and the key of a relay callback,
// which a hookd in Hub mode registers here when this hookd serves as its upstream.
func logCallback(escaped string) string {
	raw, err := url.PathUnescape(escaped)
	if err != nil {
		return "[redacted]"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted]"
	}
	return url.QueryEscape(store.LoggedURL(u))
}

// Handler returns the server wrapped in its access log, with the client's address
// from a trusted proxy.
func (s *Server) Handler() http.Handler { return fromProxies(s.opts.TrustedProxies, s.logged(s)) }
