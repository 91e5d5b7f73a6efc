package httpapi

import (
	"net/http/httptest"
	"testing"

	"github.com/matryer/is"
)

// TestLogPath: the access log's path keeps no credential: not a relay's key, nor
// the user, query or fragment of an ORCID registration's callback URL, nor the
// key of one that is another hookd's relay (registered by a hookd in Hub mode),
// nor a credential sent as a parameter of the path (";jsessionid=…").
func TestLogPath(t *testing.T) {
	for _, tt := range []struct{ path, want string }{
		{"/relay/0000-0002-7253-3645/secret-key", "/relay/0000-0002-7253-3645/[redacted]"},
		{"/0000-0002-7253-3645/webhook/http%3A%2F%2F127.0.0.1%3A18510%2Fecho%2Fx%3Ftoken%3DQUERYTOKEN", "/0000-0002-7253-3645/webhook/http%3A%2F%2F127.0.0.1%3A18510%2Fecho%2Fx"},
		{"/v3.0/0000-0002-7253-3645/webhook/https%3A%2F%2Fcbuser%3ACBPASS%40hooks.example%2Fin%23frag", "/v3.0/0000-0002-7253-3645/webhook/https%3A%2F%2Fhooks.example%2Fin"},
		{"/0000-0002-7253-3645/webhook/not%20a%20url%3Fsecret", "/0000-0002-7253-3645/webhook/[redacted]"},
		{"/0000-0002-7253-3645/webhook/http%3A%2F%2Fhub.example%2Frelay%2F0000-0002-7253-3645%2F6dc9ba0ed70fab6ccfd2d1e54de534654cccbde1", "/0000-0002-7253-3645/webhook/http%3A%2F%2Fhub.example%2Frelay%2F0000-0002-7253-3645%2F%5Bredacted%5D"},
		{"/0000-0002-7253-3645/webhook", "/0000-0002-7253-3645/webhook"},
		{"/api/notifications/v1/webhooks/0190a000-0000-7000-8000-000000000001", "/api/notifications/v1/webhooks/0190a000-0000-7000-8000-000000000001"},
		{"/inbox/pp/x;jsessionid=JSESSION/y;token=TOKEN;page=2", "/inbox/pp/x;jsessionid=%5Bredacted%5D/y;token=%5Bredacted%5D;page=2"},
		{"/inbox/pp/y#access_token=FRAGTOKEN&expires_in=60", "/inbox/pp/y%23access_token=%5Bredacted%5D&expires_in=60"},
		{"/0000-0002-7253-3645;access_token=TOKEN/webhook/http%3A%2F%2F127.0.0.1%3A18510%2Fecho", "/0000-0002-7253-3645;access_token=%5Bredacted%5D/webhook/http%3A%2F%2F127.0.0.1%3A18510%2Fecho"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			is := is.New(t)
			is.Equal(logPath(httptest.NewRequest("PUT", tt.path, nil)), tt.want)
		})
	}
}
