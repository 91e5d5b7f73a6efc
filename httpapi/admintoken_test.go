package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/httpapi"
)

// TestAdminToken: the operator's static token (auth.admin_token_file) reaches the
// admin API and nothing else; a wrong one is a 401.
func TestAdminToken(t *testing.T) {
	const admin = "operator-token-0123456789"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = admin })
	call := func(method, path, tok, body string) int {
		req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return h.send(t, req).status
	}
	is := is.New(t)
	is.Equal(call(http.MethodPost, "/api/hub/v1/organisations", admin, `{"name":"Uni","tech-contact-email":"it@uni.example"}`), http.StatusCreated) // admin API
	is.Equal(call(http.MethodGet, "/api/hub/v1/organisations", admin, ""), http.StatusOK)
	is.Equal(call(http.MethodGet, "/api/hub/v1/organisations", admin+"x", ""), http.StatusUnauthorized)                             // a wrong token
	is.Equal(call(http.MethodGet, "/api/notifications/v1/webhooks", admin, ""), http.StatusForbidden)                               // no /webhook scope
	is.Equal(call(http.MethodPost, "/api/notifications/v1/events", admin, `{"orcid":"0000-0002-7253-3645"}`), http.StatusForbidden) // no /notify scope
}
