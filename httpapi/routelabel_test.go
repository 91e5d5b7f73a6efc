package httpapi_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

// requests records what the server counts for /metrics.
type requests struct {
	mu     sync.Mutex
	labels []string
}

func (m *requests) Request(route, method string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.labels = append(m.labels, route)
}

func (m *requests) Events(int) {}

func (m *requests) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.labels[len(m.labels)-1]
}

// TestRouteLabels: a request is counted under the route that served it, whatever it
// answered (a 404 for an unknown id, a 401, a 400 are still that route's), and what
// no route served is "unmatched", so labels are the routes' and nothing else.
func TestRouteLabels(t *testing.T) {
	m := &requests{}
	h := newHarness(t, func(o *httpapi.Options) { o.Metrics = m; o.BasePath = "/orcid-api-web" })
	tok := h.webhookToken(t, "labels")
	admin := h.token(t, h.client(t, "admin", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	for _, tt := range []struct {
		method, path, token string
		status              int
		want                string
	}{
		{http.MethodPut, "/orcid-api-web" + webhookPath(seedOrcid, seedSegment), tok, 201, "/orcid-api-web/:orcid/webhook/:callback"},
		{http.MethodGet, "/orcid-api-web/" + seedOrcid + "/webhook", tok, 200, "/orcid-api-web/:orcid/webhook"},
		{http.MethodGet, "/orcid-api-web" + webhookPath(seedOrcid, "http%3A%2F%2Fnowhere2.com%2Fother"), tok, 404, "/orcid-api-web/:orcid/webhook/:callback"},
		{http.MethodGet, "/orcid-api-web" + webhookPath("0000-0002-7253-3646", seedSegment), tok, 400, "/orcid-api-web/:orcid/webhook/:callback"},
		{http.MethodGet, "/api/notifications/v1/webhooks/0b6c4e0e-8c0f-4d6e-9a53-2f1f3c8f1a11", tok, 404, "/api/notifications/v1/webhooks/:id"},
		{http.MethodGet, "/api/notifications/v1/webhooks/not-an-id/deliveries", tok, 404, "/api/notifications/v1/webhooks/:id/deliveries"},
		{http.MethodGet, "/api/notifications/v1/webhooks", "not-a-token", 401, "/api/notifications/v1/webhooks"},
		{http.MethodGet, "/api/admin/v1/deliveries/12345", admin, 404, "/api/admin/v1/deliveries/:id"},
		{http.MethodGet, "/api/hub/v1/organisations/12", admin, 404, "/api/hub/v1/organisations/:id"},
		{http.MethodPost, "/relay/" + seedOrcid + "/wrong-key", "", 404, "/relay/:orcid/:key"},
		{http.MethodGet, "/openapi.json", "", 200, "/openapi.json"},
		{http.MethodGet, "/anything/at/all", "", 404, "unmatched"},
		{http.MethodGet, "/orcid-api-web/oauth/token", "", 405, "unmatched"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			is := is.New(t)
			res := h.doRaw(t, tt.method, tt.path, tt.token)
			is.Equal(res.status, tt.status) // the answer
			is.Equal(m.last(), tt.want)     // counted under its route
		})
	}
}

// TestInboxRouteLabel: the inbox's route counts every method it serves, those the
// router does not know too.
func TestInboxRouteLabel(t *testing.T) {
	m := &requests{}
	h := newInboxHarness(t, store.InboxLimits{}, func(o *httpapi.Options) { o.Metrics = m })
	for _, method := range []string{http.MethodPost, "PROPFIND", "FOOBAR"} {
		t.Run(method, func(t *testing.T) {
			is := is.New(t)
			is.Equal(h.post(t, method, "/inbox/demo/x", "").status, http.StatusNoContent)
			is.Equal(m.last(), "/inbox/:path")
		})
	}
}
