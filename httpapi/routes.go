package httpapi

import (
	"net/http"
	"strings"

	"hookd/store"
)

// routes lists every route hookd serves.
func (s *Server) routes() {
	base := s.opts.BasePath

	// ORCID-compatible OAuth.
	s.handle(http.MethodPost, base+"/oauth/token", s.handleToken())
	s.handle(http.MethodPost, base+"/oauth/revoke", s.handleRevoke())

	// Operations.
	s.handle(http.MethodGet, "/healthz", s.handleHealthz())
	s.handle(http.MethodGet, "/readyz", s.handleReadyz())
	if s.opts.MetricsHandler != nil {
		s.handle(http.MethodGet, "/metrics", s.opts.MetricsHandler)
	}
	s.handle(http.MethodGet, "/openapi.json", s.handleOpenAPI())

	// Platform API.
	s.handle(http.MethodPost, "/api/notifications/v1/events", s.bearer(store.ScopeNotify, styleProblem, s.handleEvents()))

	platform := func(h http.Handler) http.Handler { return s.bearer(store.ScopeWebhook, styleProblem, h) }
	const wh = "/api/notifications/v1/webhooks"
	s.handle(http.MethodPost, wh, platform(s.handleWebhookCreate()))
	s.handle(http.MethodGet, wh, platform(s.handlePlatformList()))
	s.handle(http.MethodGet, wh+"/:id", platform(s.handleWebhookGetOne()))
	s.handle(http.MethodPatch, wh+"/:id", platform(s.handleWebhookPatch()))
	s.handle(http.MethodDelete, wh+"/:id", platform(s.handleWebhookDeleteOne()))
	s.handle(http.MethodPost, wh+"/:id/deactivate", platform(s.handleWebhookActive(false)))
	s.handle(http.MethodPost, wh+"/:id/activate", platform(s.handleWebhookActive(true)))
	s.handle(http.MethodPost, wh+"/:id/rotate-secret", platform(s.handleWebhookRotate()))
	s.handle(http.MethodGet, wh+"/:id/deliveries", platform(s.handleWebhookDeliveries()))
	s.handle(http.MethodPost, wh+"/:id/replay", platform(s.handleWebhookReplay()))

	s.hubRoutes()

	// The inbox: any method, any path below /inbox/{name} (inbox.go); a method the
	// router does not know reaches it through methodNotAllowed.
	if s.opts.Inbox != nil {
		s.inbox = s.handleInbox()
		for _, m := range inboxMethods {
			s.handle(m, "/inbox/*path", s.inbox)
		}
	}

	// ORCID-compatible webhook registration, routed on the escaped path (serveORCID)
	// because the callback segment holds percent-encoded slashes.
	webhook := func(h http.Handler) http.Handler { return s.bearer(store.ScopeWebhook, styleORCID, h) }
	s.handleORCID(http.MethodPut, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookPut()))
	s.handleORCID(http.MethodDelete, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookDelete()))
	s.handleORCID(http.MethodGet, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookGet()))
	s.handleORCID(http.MethodGet, base+"/:orcid/webhook", webhook(s.handleWebhookList()))

	s.router.NotFound = http.HandlerFunc(s.serveORCID)
	s.router.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
	s.orcid.NotFound = http.HandlerFunc(s.notFound)
	s.orcid.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
}

// handle registers h for method and path on the router of the fixed routes, and
// records the route for the tests that hold the routes against openapi.json.
func (s *Server) handle(method, path string, h http.Handler) {
	s.registered = append(s.registered, route{method, path})
	s.router.Handler(method, path, h)
}

// handleORCID is handle for the ORCID webhook routes, which route on the escaped path.
func (s *Server) handleORCID(method, path string, h http.Handler) {
	s.registered = append(s.registered, route{method, path})
	s.orcid.Handler(method, path, h)
}

// route is a method and a path pattern in httprouter's syntax (":id", "*callback").
type route struct{ method, path string }

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeProblemBody(w, http.StatusNotFound, "no such resource: "+r.Method+" "+r.URL.Path, "")
		return
	}
	writeORCIDBody(w, r, http.StatusNotFound, codeNotFound, "404 Not Found: no such resource: "+r.Method+" "+r.URL.Path, "The resource was not found.")
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if s.inbox != nil && strings.HasPrefix(r.URL.Path, "/inbox/") {
		w.Header().Del("Allow")
		s.inbox.ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeProblemBody(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here (allowed: "+w.Header().Get("Allow")+")", "")
		return
	}
	writeORCIDBody(w, r, http.StatusMethodNotAllowed, codeMethod, "405 Method Not Allowed: "+r.Method+" is not allowed here (allowed: "+w.Header().Get("Allow")+")", "")
}
