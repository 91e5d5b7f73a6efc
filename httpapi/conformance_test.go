package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestBulkReplayOfOneWebhookAudited: a bulk replay narrowed to one webhook
// ({"since":…,"webhook":…}) concerns that webhook's owner, who must see the entry
// in the console (the audit log's visibility is by the entry's client/org), as the
// console's own webhook replay records it.
func TestBulkReplayOfOneWebhookAudited(t *testing.T) {
	is := is.New(t)
	f := newAdminFixture(t)
	res := platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, `{"since":"2h","webhook":"`+f.platUID+`"}`)
	is.Equal(res.status, http.StatusAccepted)
	es, err := f.st.AuditLog(context.Background(), store.AuditQuery{Limit: 1})
	is.NoErr(err)
	is.Equal(len(es), 1)
	is.Equal(es[0].ClientID, f.other.ID) // the webhook's owner is named
	seen, err := f.st.AuditLog(context.Background(), store.AuditQuery{Visible: store.Visibility{ClientID: f.other.ID}})
	is.NoErr(err)
	is.True(len(seen) > 0) // and sees what was done to its webhook
}

// TestAcceptQZeroXML: "Accept: application/xml;q=0" says XML is not
// acceptable (RFC 9110 §12.4.2); ORCID's error body must then not be XML.
func TestAcceptQZeroXML(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	res := h.doRaw(t, http.MethodGet, "/nowhere", "", "Accept", "application/xml;q=0")
	is.Equal(res.status, http.StatusNotFound)
	is.True(strings.HasPrefix(res.header.Get("Content-Type"), "application/json")) // not the XML the client refused
}

// TestAcceptWildcardsRankJSON: */* and application/* take JSON as well as XML, so
// an XML type ranked below them is not preferred (RFC 9110 §12.5.1), while one
// ranked above them is.
func TestAcceptWildcardsRankJSON(t *testing.T) {
	h := newHarness(t)
	for accept, want := range map[string]string{
		"*/*, application/xml;q=0.5":                 "application/json",
		"application/*, application/xml;q=0.1":       "application/json",
		"application/xml, */*;q=0.1":                 "application/xml",
		"application/json;q=0.1, */*":                "application/xml", // XML by */* at 1, JSON at its own 0.1
		"*/*":                                        "application/json",
		"application/xml;q=0.5, application/*;q=0.9": "application/json",
	} {
		res := h.doRaw(t, http.MethodGet, "/nowhere", "", "Accept", accept)
		if got := res.header.Get("Content-Type"); res.status != http.StatusNotFound || !strings.HasPrefix(got, want) {
			t.Errorf("Accept %q: %d %s, want 404 in %s", accept, res.status, got, want)
		}
	}
}

// TestHEADAnswersAsGET: a GET resource answers HEAD (RFC 9110 §9.1: general-purpose
// servers MUST support GET and HEAD) rather than 405 with Allow: GET, with the
// status and headers of its GET and no body, as openapi.json says (the harness
// checks each answer against it), on the ORCID routes too.
func TestHEADAnswersAsGET(t *testing.T) {
	h := newHarness(t)
	admin := h.token(t, h.client(t, "ops", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	tok := h.webhookToken(t, "c")
	if res := h.do(t, http.MethodPut, "/"+seedOrcid+"/webhook/"+seedSegment, tok); res.status != http.StatusCreated {
		t.Fatalf("register: %d", res.status)
	}
	for _, tt := range []struct {
		path, token string
		status      int
	}{
		{"/openapi.json", "", http.StatusOK},
		{"/api/admin/v1/webhooks", admin, http.StatusOK},
		{"/api/hub/v1/organisations", admin, http.StatusOK},
		{"/" + seedOrcid + "/webhook", tok, http.StatusOK},
		{"/" + seedOrcid + "/webhook/" + seedSegment, tok, http.StatusOK},
		{"/" + seedOrcid + "/webhook/http%3A%2F%2Fnowhere2.com%2Fnone", tok, http.StatusNotFound},
		{"/0000-0002-7253-3646/webhook", tok, http.StatusBadRequest},
		{"/" + seedOrcid + "/webhook", "", http.StatusUnauthorized},
	} {
		res := h.doRaw(t, http.MethodHead, tt.path, tt.token)
		if res.status != tt.status || len(res.body) > 0 {
			t.Errorf("HEAD %s: %d with %d bytes (Allow: %q), want %d as GET answers, without a body", tt.path, res.status, len(res.body), res.header.Get("Allow"), tt.status)
		}
	}
}

// TestAPIPathProblemBody: a path under /api/ that no API route serves is a
// problem+json 404, whatever token comes with it: not ORCID's error body (which
// /api/{x}/webhook gets, taken for the ORCID route /{orcid}/webhook).
func TestAPIPathProblemBody(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "c")
	// Sent past the harness's check against openapi.json, which takes the path
	// for the ORCID operation /{orcid}/webhook as the router did.
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+"/api/webhook", nil)
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json, application/problem+json")
	res, err := h.http.Do(req)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusNotFound)
	is.Equal(res.Header.Get("Content-Type"), "application/problem+json")
}
