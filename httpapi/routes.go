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
	s.router.Handler(http.MethodPost, base+"/oauth/token", s.handleToken())
	s.router.Handler(http.MethodPost, base+"/oauth/revoke", s.handleRevoke())

	// Operations.
	s.router.Handler(http.MethodGet, "/healthz", s.handleHealthz())
	s.router.Handler(http.MethodGet, "/readyz", s.handleReadyz())
	if s.opts.MetricsHandler != nil {
		s.router.Handler(http.MethodGet, "/metrics", s.opts.MetricsHandler)
	}

	// Platform API.
	s.router.Handler(http.MethodPost, "/api/notifications/v1/events", s.bearer(store.ScopeNotify, styleProblem, s.handleEvents()))

	platform := func(h http.Handler) http.Handler { return s.bearer(store.ScopeWebhook, styleProblem, h) }
	const wh = "/api/notifications/v1/webhooks"
	s.router.Handler(http.MethodPost, wh, platform(s.handleWebhookCreate()))
	s.router.Handler(http.MethodGet, wh, platform(s.handlePlatformList()))
	s.router.Handler(http.MethodGet, wh+"/:id", platform(s.handleWebhookGetOne()))
	s.router.Handler(http.MethodPatch, wh+"/:id", platform(s.handleWebhookPatch()))
	s.router.Handler(http.MethodDelete, wh+"/:id", platform(s.handleWebhookDeleteOne()))
	s.router.Handler(http.MethodPost, wh+"/:id/deactivate", platform(s.handleWebhookActive(false)))
	s.router.Handler(http.MethodPost, wh+"/:id/activate", platform(s.handleWebhookActive(true)))
	s.router.Handler(http.MethodPost, wh+"/:id/rotate-secret", platform(s.handleWebhookRotate()))
	s.router.Handler(http.MethodGet, wh+"/:id/deliveries", platform(s.handleWebhookDeliveries()))
	s.router.Handler(http.MethodPost, wh+"/:id/replay", platform(s.handleWebhookReplay()))

	s.hubRoutes()

	// The web console (package console), and the root that leads to it.
	if s.opts.Console != nil {
		s.router.Handler(http.MethodGet, "/", http.RedirectHandler("/console/", http.StatusFound))
		s.router.Handler(http.MethodGet, "/console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			s.router.Handler(m, "/console/*path", s.opts.Console)
		}
	}

	// ORCID-compatible webhook registration, routed on the escaped path (serveORCID)
	// because the callback segment holds percent-encoded slashes.
	webhook := func(h http.Handler) http.Handler { return s.bearer(store.ScopeWebhook, styleORCID, h) }
	s.orcid.Handler(http.MethodPut, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookPut()))
	s.orcid.Handler(http.MethodDelete, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookDelete()))
	s.orcid.Handler(http.MethodGet, base+"/:orcid/webhook/*callback", webhook(s.handleWebhookGet()))
	s.orcid.Handler(http.MethodGet, base+"/:orcid/webhook", webhook(s.handleWebhookList()))

	s.router.NotFound = http.HandlerFunc(s.serveORCID)
	s.router.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
	s.orcid.NotFound = http.HandlerFunc(s.notFound)
	s.orcid.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeProblem(w, http.StatusNotFound, "no such resource: "+r.Method+" "+r.URL.Path, "")
		return
	}
	writeORCIDError(w, r, http.StatusNotFound, codeNotFound, "404 Not Found: no such resource: "+r.Method+" "+r.URL.Path, "The resource was not found.")
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeProblem(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here (allowed: "+w.Header().Get("Allow")+")", "")
		return
	}
	writeORCIDError(w, r, http.StatusMethodNotAllowed, codeMethod, "405 Method Not Allowed: "+r.Method+" is not allowed here (allowed: "+w.Header().Get("Allow")+")", "")
}
