package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

// TestScopeRefusalSaysHowToGetIt: a token refused for a scope it lacks (a 403 on
// the platform API, ORCID's 9038 on its routes) and a token request refused for a
// scope the client is not granted (invalid_scope) say how a client gets that
// scope: from the token endpoint when the client is granted it, else from hookd's
// operator, who grants scopes when making a client (hookd client add -scopes,
// the console's Clients page). They named the scope alone.
func TestScopeRefusalSaysHowToGetIt(t *testing.T) {
	const admin = "operator-token-0123456789"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = admin })
	webhookOnly := h.client(t, "webhook-only", store.ScopeWebhook)
	both := h.client(t, "both", store.ScopeWebhook, store.ScopeNotify)
	notifyOnly := h.client(t, "notify-only", store.ScopeNotify)
	event := `{"orcid":"0000-0002-7253-3645"}`
	const operator = "hookd's operator grants scopes when making a client (hookd client add -scopes /notify, or the console's Clients page), and a client's scopes do not change once it is made"

	t.Run("a client not granted the scope", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, webhookOnly, store.ScopeWebhook).AccessToken
		p := platformProblem(t, platformCall(t, h, http.MethodPost, "/api/notifications/v1/events", tok, event), http.StatusForbidden)
		is.Equal(p.Detail, "the access token lacks the /notify scope, and the token's client is not granted it: "+operator)
	})
	t.Run("a token asked without the scope its client is granted", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, both, store.ScopeWebhook).AccessToken
		p := platformProblem(t, platformCall(t, h, http.MethodPost, "/api/notifications/v1/events", tok, event), http.StatusForbidden)
		is.Equal(p.Detail, "the access token lacks the /notify scope, which the token's client is granted: ask the token endpoint for a token with it (scope /notify, or no scope for every scope the client is granted)")
	})
	t.Run("the admin token", func(t *testing.T) {
		is := is.New(t)
		p := platformProblem(t, platformCall(t, h, http.MethodPost, "/api/notifications/v1/events", admin, event), http.StatusForbidden)
		is.Equal(p.Detail, "the access token lacks the /notify scope: the admin token has /admin alone; call with the token of a client granted /notify ("+operator+")")
	})
	t.Run("an ORCID route", func(t *testing.T) {
		is := is.New(t)
		tok := h.token(t, notifyOnly, store.ScopeNotify).AccessToken
		e := orcidError(t, h.do(t, http.MethodGet, "/0000-0002-7253-3645/webhook", tok), http.StatusForbidden, 9038)
		is.True(strings.HasPrefix(e.DeveloperMessage, "403 Forbidden: You do not have the required permissions. Insufficient or wrong scope: this call needs /webhook, ")) // ORCID's words first
		is.True(strings.HasSuffix(e.DeveloperMessage, "the token's client is not granted it: "+strings.ReplaceAll(operator, "/notify", "/webhook")))                       // then how to get it
	})
	t.Run("the token endpoint", func(t *testing.T) {
		is := is.New(t)
		res := h.postForm(t, "/oauth/token", url.Values{"client_id": {webhookOnly.ID}, "client_secret": {webhookOnly.Secret},
			"grant_type": {"client_credentials"}, "scope": {"/notify"}}, "", "")
		e := oauthError(t, res, http.StatusBadRequest, "invalid_scope")
		is.Equal(e.Description, "Invalid scope: /notify (/notify is not granted to this client: "+operator+")") // ORCID's words first
		// A refresh token issued without a scope the client has: a new token has it.
		tr := h.token(t, both, store.ScopeWebhook)
		res = h.postForm(t, "/oauth/token", url.Values{"client_id": {both.ID}, "client_secret": {both.Secret},
			"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "scope": {"/notify"}}, "", "")
		e = oauthError(t, res, http.StatusBadRequest, "invalid_scope")
		is.Equal(e.Description, "Invalid scope: /notify (the refresh token was not issued with /notify: ask for a new token with it (grant_type client_credentials, scope /notify))")
	})
}
