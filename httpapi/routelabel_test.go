package httpapi

import (
	"testing"

	"github.com/matryer/is"
)

func TestRouteLabel(t *testing.T) {
	for _, tt := range []struct {
		path, base string
		status     int
		want       string
	}{
		{"/0000-0002-7253-3645/webhook/http%3A%2F%2Fnowhere2.com%2Fx", "", 201, "/:orcid/webhook/:callback"},
		{"/orcid-api-web/0000-0002-7253-3645/webhook", "/orcid-api-web", 200, "/orcid-api-web/:orcid/webhook"},
		{"/orcid-api-web/oauth/token", "/orcid-api-web", 200, "/orcid-api-web/oauth/token"},
		{"/api/notifications/v1/webhooks/0b6c4e0e-8c0f-4d6e-9a53-2f1f3c8f1a11/replay", "", 202, "/api/notifications/v1/webhooks/:id/replay"},
		{"/api/hub/v1/organisations/12/members/0000-0002-9079-593X", "", 204, "/api/hub/v1/organisations/:id/members/:orcid"},
		{"/relay/0000-0002-7253-3645/abcdef", "", 204, "/relay/:orcid/:key"},
		{"/openapi.json", "", 200, "/openapi.json"},
		{"/inbox/demo/0000-0002-7253-3645/updated", "", 204, "/inbox/:name"},
		{"/inbox/demo", "", 500, "/inbox/:name"},
		{"/anything/at/all", "", 404, "unmatched"},
	} {
		is := is.New(t)
		is.Equal(routeLabel(tt.path, tt.base, tt.status), tt.want) // bounded label
	}
}

func TestRouteLabelBounded(t *testing.T) {
	is := is.New(t)
	is.Equal(routeLabel("/abcdefgh1/webhook/http%3A%2F%2Fx", "", 401), "unmatched")                         // a made-up first segment
	is.Equal(routeLabel("/api/notifications/v1/webhooks/zzz1", "", 400), "unmatched")                       // not an id
	is.Equal(routeLabel("/api/notifications/v1/webhooks/zzz1/replay", "", 404), "unmatched")                // not found
	is.Equal(routeLabel("/orcid-api-web/oauth/token", "/orcid-api-web", 401), "/orcid-api-web/oauth/token") // the base path is kept
}
