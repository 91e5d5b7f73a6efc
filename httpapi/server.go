// Package httpapi is hookd's HTTP front: the ORCID-compatible OAuth and webhook
// registration API, the platform API, and the operational endpoints.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

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
	// Console, when set, serves the web console under /console/ (GET / leads there).
	Console http.Handler
}

// Server is the HTTP handler of hookd.
type Server struct {
	opts   Options
	log    *slog.Logger
	store  *store.Store
	router *httprouter.Router // fixed routes, on the decoded path
	orcid  *httprouter.Router // ORCID webhook routes, on the escaped path
}

// NewServer returns hookd's HTTP handler with every route of routes.go.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 175316 * time.Hour // ORCID's ~20-year /webhook tokens
	}
	if opts.Nudge == nil {
		opts.Nudge = func() {}
	}
	opts.PublicURL = strings.TrimSuffix(opts.PublicURL, "/")
	s := &Server{opts: opts, log: opts.Logger, store: opts.Store}
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
	s.router.ServeHTTP(w, r)
}

// serveORCID routes on the escaped path, so a percent-encoded callback stays one
// segment and is decoded exactly once, by the handler.
func (s *Server) serveORCID(w http.ResponseWriter, r *http.Request) {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path = r.URL.EscapedPath()
	u.RawPath = ""
	r2.URL = &u
	s.orcid.ServeHTTP(w, r2)
}

// params returns the router parameters of a request.
func params(r *http.Request) httprouter.Params { return httprouter.ParamsFromContext(r.Context()) }

// maxBody caps every request body hookd reads.
const maxBody = 1 << 20

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
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

// errBody is a decode error a caller can act on.
type errBody struct {
	msg   string
	field string
}

func (e *errBody) Error() string { return e.msg }

// decode reads one JSON value from the body into v, capped at limit bytes (maxBody
// when 0), rejecting unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if limit == 0 {
		limit = maxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &errBody{msg: fmt.Sprintf("Content-Type must be application/json, got %q", ct)}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return &errBody{msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
		case errors.Is(err, io.EOF):
			return &errBody{msg: "request body is empty; a JSON value is required"}
		case errors.As(err, &se):
			return &errBody{msg: fmt.Sprintf("request body is not valid JSON (at byte %d): %v", se.Offset, err)}
		case errors.As(err, &te):
			return &errBody{msg: fmt.Sprintf("field %q must be a %s, got %s", te.Field, te.Type, te.Value), field: te.Field}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &errBody{msg: fmt.Sprintf("unknown field %q", f), field: f}
		default:
			return &errBody{msg: "request body: " + err.Error()}
		}
	}
	if dec.More() {
		return &errBody{msg: "request body has data after the JSON value"}
	}
	return nil
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
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		if s.opts.Metrics != nil {
			s.opts.Metrics.Request(routeLabel(r.URL.EscapedPath(), s.opts.BasePath, sw.status), r.Method, sw.status)
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("http", "method", r.Method, "path", r.URL.EscapedPath(), "status", sw.status, "duration", time.Since(start))
		}
	})
}

// Handler returns the server wrapped in its access log.
func (s *Server) Handler() http.Handler { return s.logged(s) }

// routeWords are the fixed segments of hookd's routes; a label made of anything
// else is "unmatched", so no request can add labels of its own choosing.
var routeWords = map[string]bool{
	"oauth": true, "token": true, "revoke": true, "webhook": true, "api": true, "notifications": true,
	"v1": true, "webhooks": true, "events": true, "deactivate": true, "activate": true, "rotate-secret": true,
	"deliveries": true, "replay": true, "hub": true, "organisations": true, "members": true, "relay": true,
	"healthz": true, "readyz": true, "metrics": true, "console": true,
}

// routeLabel turns a request path into a bounded metrics label: iDs, ids and
// callbacks become placeholders, and anything else is "unmatched".
func routeLabel(path, base string, status int) string {
	label := routeShape(path, base, status)
	for _, seg := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(label, base), "/"), "/") {
		if !routeWords[seg] && !strings.HasPrefix(seg, ":") {
			return "unmatched"
		}
	}
	return label
}

func routeShape(path, base string, status int) string {
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		return "unmatched"
	}
	if strings.HasPrefix(path, "/console/") {
		return "/console" // one label for all of the console's pages
	}
	prefix := ""
	if base != "" && strings.HasPrefix(path, base+"/") {
		prefix, path = base, strings.TrimPrefix(path, base)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, p := range parts {
		switch {
		case i == 2 && parts[0] == "relay":
			parts[i] = ":key"
		case orcidShape(p):
			parts[i] = ":orcid"
		case len(p) == 36 && strings.Count(p, "-") == 4:
			parts[i] = ":id"
		case i == 2 && parts[1] == "webhook" && parts[0] == ":orcid":
			parts = append(parts[:i], ":callback")
			return prefix + "/" + strings.Join(parts, "/")
		case i > 0 && (parts[i-1] == "organisations" || parts[i-1] == "members") && p != "":
			parts[i] = ":id"
		}
	}
	return prefix + "/" + strings.Join(parts, "/")
}

// orcidShape reports whether s looks like an iD (its check digit aside).
func orcidShape(s string) bool {
	return len(s) == 19 && s[4] == '-' && s[9] == '-' && s[14] == '-'
}
