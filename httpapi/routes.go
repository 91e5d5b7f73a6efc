package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"hookd/orcid"
	"hookd/store"
)

// routes lists every route hookd serves.
func (s *Server) routes() {
	base := s.opts.BasePath
	get, post, put, patch, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	fixed := func(method, path string, h http.Handler) { s.handle(s.router, method, path, h) }

	// ORCID-compatible OAuth.
	fixed(post, base+"/oauth/token", s.handleToken())
	fixed(post, base+"/oauth/revoke", s.handleRevoke())

	// Operations.
	fixed(get, "/healthz", s.handleHealthz())
	fixed(get, "/readyz", s.handleReadyz())
	if s.opts.MetricsHandler != nil {
		fixed(get, "/metrics", s.opts.MetricsHandler)
	}
	fixed(get, "/openapi.json", s.handleOpenAPI())

	// Platform API.
	fixed(post, "/api/notifications/v1/events", s.bearer(store.ScopeNotify, styleProblem, s.handleEvents()))

	platform := func(h http.Handler) http.Handler { return s.bearer(store.ScopeWebhook, styleProblem, h) }
	const wh = "/api/notifications/v1/webhooks"
	fixed(post, wh, platform(s.handleWebhookCreate()))
	fixed(get, wh, platform(s.handlePlatformList()))
	fixed(get, wh+"/:id", platform(s.handleWebhookGetOne()))
	fixed(patch, wh+"/:id", platform(s.handleWebhookPatch()))
	fixed(del, wh+"/:id", platform(s.noBody(s.handleWebhookDeleteOne())))
	fixed(post, wh+"/:id/deactivate", platform(s.noBody(s.handleWebhookActive(false))))
	fixed(post, wh+"/:id/activate", platform(s.noBody(s.handleWebhookActive(true))))
	fixed(post, wh+"/:id/rotate-secret", platform(s.handleWebhookRotate()))
	fixed(get, wh+"/:id/deliveries", platform(s.handleWebhookDeliveries()))
	fixed(get, wh+"/:id/deliveries/:delivery", platform(s.handleWebhookDelivery()))
	fixed(post, wh+"/:id/replay", platform(s.handleWebhookReplay()))
	fixed(get, "/api/notifications/v1/orcid-webhooks/deliveries", platform(s.handleOrcidDeliveries()))

	// Admin API (scope /admin): the operator's view of every webhook and delivery.
	admin := func(h http.Handler) http.Handler { return s.bearer(store.ScopeAdmin, styleProblem, h) }
	const adm = "/api/admin/v1"
	fixed(get, adm+"/webhooks", admin(s.handleAdminWebhooks()))
	fixed(get, adm+"/webhooks/:id", admin(s.handleAdminWebhook()))
	fixed(del, adm+"/webhooks/:id", admin(s.noBody(s.handleAdminWebhookRemove())))
	fixed(post, adm+"/webhooks/:id/deactivate", admin(s.noBody(s.handleAdminWebhookActive(false))))
	fixed(post, adm+"/webhooks/:id/activate", admin(s.noBody(s.handleAdminWebhookActive(true))))
	fixed(get, adm+"/deliveries", admin(s.handleAdminDeliveries()))
	fixed(get, adm+"/deliveries/:id", admin(s.handleAdminDelivery()))
	fixed(post, adm+"/replay", admin(s.handleAdminReplay()))

	s.hubRoutes()

	// The inbox: any method, any path below /inbox/{name} (inbox.go); a method the
	// router does not know reaches it through methodNotAllowed.
	if s.opts.Inbox != nil {
		s.inbox = s.handleInbox()
		for _, m := range inboxMethods {
			fixed(m, "/inbox/*path", s.inbox)
		}
	}

	// The web console (package console), and the root that leads to it.
	if s.opts.Console != nil {
		console := s.publicPath() + "/console/" // as the browser reaches it
		fixed(get, "/", http.RedirectHandler(console, http.StatusFound))
		fixed(get, "/console", http.RedirectHandler(console, http.StatusMovedPermanently))
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			fixed(m, "/console/*path", s.opts.Console)
		}
	}

	// ORCID-compatible webhook registration, routed on the escaped path (serveORCID)
	// because the callback segment holds percent-encoded slashes. ORCID's PUT has no
	// body: one beyond a few bytes is refused before anything is registered.
	webhook := func(h http.Handler) http.Handler {
		return s.bearer(store.ScopeWebhook, styleORCID, s.orcidNoBody(h))
	}
	orcid := func(method, path string, h http.Handler) { s.handle(s.orcid, method, path, h) }
	orcid(put, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookPut()))
	orcid(del, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookDelete()))
	orcid(get, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookGet()))
	orcid(get, base+"/:orcid/webhook", webhook(s.handleWebhookList()))

	s.router.NotFound = http.HandlerFunc(s.serveORCID)
	s.router.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
	s.orcid.NotFound = http.HandlerFunc(s.notFound)
	s.orcid.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
}

// CheckBasePath reports whether base (http.base_path) would put the ORCID routes
// where hookd serves something else (its console, inbox, relay, APIs): the router
// refuses such a pair of routes. ':' and '*' would name parameters.
func CheckBasePath(base string) (err error) {
	if strings.ContainsAny(base, ":*") {
		return fmt.Errorf("must not hold ':' or '*', got %q", base)
	}
	if base == "/api" || strings.HasPrefix(base, "/api/") {
		// /api/… is hookd's own API: its paths' 404s are its own (serveORCID).
		return fmt.Errorf("%q puts the ORCID routes among hookd's own API (/api/…): choose another, such as \"/orcid-api-web\"", base)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%q puts the ORCID routes among hookd's own (%v): choose another, such as \"/orcid-api-web\"", base, r)
		}
	}()
	NewServer(Options{BasePath: base, Inbox: &InboxOptions{}, Console: http.NotFoundHandler(), MetricsHandler: http.NotFoundHandler()})
	return nil
}

// routeKey is the context key of the request's route label: the access log puts a
// *string there, and the route that serves the request fills it in.
type infoKey struct{}

// requestInfo is what a request carries from the outermost handler down, in one
// context value (one copy of the request, not one for each): the route label the
// metrics and the access log read once it was served, and the token that
// authenticated it.
type requestInfo struct {
	label  string
	token  store.Token
	authed bool // token is set
}

// handle registers h for method and path on router, labelled with path for metrics:
// a request is counted under the route that served it, whatever it answered (a 404
// for an unknown webhook id is still that route's), and anything no route served
// is "unmatched", so no request adds a label of its own making. It records the
// route for the tests that hold the routes against openapi.json.
func (s *Server) handle(router *httprouter.Router, method, path string, h http.Handler) {
	s.registered = append(s.registered, route{method, path})
	label := strings.ReplaceAll(path, "*", ":")
	labelled := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			info.label = label
		}
		h.ServeHTTP(w, r)
	})
	// HEAD is GET without the body (net/http drops it), as RFC 9110 has every
	// general-purpose server answer it: a GET route answers it too, unless a route
	// of its own does (the inbox takes every method).
	if s.heads == nil {
		s.heads = map[string]bool{}
	}
	methods := []string{method}
	if method == http.MethodGet {
		methods = append(methods, http.MethodHead)
	}
	for _, m := range methods {
		key := fmt.Sprintf("%p %s %s", router, m, path)
		if m == http.MethodHead && s.heads[key] {
			continue // a GET's twin answers it already
		}
		s.heads[key] = true
		router.Handler(m, path, labelled)
	}
}

// route is a method and a path pattern in httprouter's syntax (":id", "*callback").
type route struct{ method, path string }

// withInfo returns the request's info, and the request that carries it: r itself
// when it has one already.
func withInfo(r *http.Request) (*http.Request, *requestInfo) {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return r, info
	}
	info := new(requestInfo)
	return r.WithContext(context.WithValue(r.Context(), infoKey{}, info)), info
}

// notFound answers a path no route takes: in the body of the routes its path
// belongs to (hookd's API and the relay answer problems), else in ORCID's.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/relay/") {
		writeProblemBody(w, http.StatusNotFound, "no such resource: "+r.Method+" "+r.URL.Path, "")
		return
	}
	msg := "404 Not Found: no such resource: " + r.Method + " " + r.URL.Path
	if bp := s.opts.BasePath; bp != "" && orcidShaped(r.URL.Path) {
		// Walk-throughs and clients written for the root are the usual cause.
		msg += " (the ORCID routes are under http.base_path " + bp + ": " + bp + r.URL.Path + ")"
	}
	if s.inbox == nil && strings.HasPrefix(r.URL.Path, "/inbox/") {
		// A sender pointed at the inbox of a hookd serve, where it is off unless asked for.
		msg += " (hookd's inbox is off: [inbox] enabled = true turns it on)"
	}
	writeORCIDBody(w, r, http.StatusNotFound, codeNotFound, msg, "The resource was not found.")
}

// orcidShaped reports whether a path is one of the ORCID-compatible routes' at
// the root: /oauth/… or /{orcid}/webhook…
func orcidShaped(path string) bool {
	first, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return first == "oauth" || (orcid.Check(first) == nil && strings.HasPrefix(rest, "webhook"))
}

// methodNotAllowed answers a method a route does not take, in the route's error
// format: problem details for the JSON APIs and the relay, OAuth's body for the token and revoke
// endpoints (an OAuth client parses nothing else there), ORCID's body otherwise
// (ORCID's 9001 covers "endpoint and method mismatch").
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if s.inbox != nil && strings.HasPrefix(r.URL.Path, "/inbox/") {
		w.Header().Del("Allow")
		if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			info.label = "/inbox/:path" // the inbox's route serves it, as it serves the methods it knows
		}
		s.inbox.ServeHTTP(w, r)
		return
	}
	// httprouter lists OPTIONS too, which hookd does not answer (HandleOPTIONS is off).
	var methods []string
	for _, m := range strings.Split(w.Header().Get("Allow"), ", ") {
		if m != http.MethodOptions && m != "" {
			methods = append(methods, m)
		}
	}
	allowed := strings.Join(methods, ", ")
	w.Header().Set("Allow", allowed)
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/relay/"):
		writeProblemBody(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here (allowed: "+allowed+")", "")
	case strings.HasPrefix(r.URL.Path, s.opts.BasePath+"/oauth/"):
		writeOAuthBody(w, http.StatusMethodNotAllowed, "invalid_request", r.Method+" is not supported here: send the request with "+allowed)
	default:
		writeORCIDBody(w, r, http.StatusMethodNotAllowed, codeMethod, "405 Method Not Allowed: "+r.Method+" is not allowed here (allowed: "+allowed+")", "")
	}
}
