package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// authRoute is one route that needs a token, with the scope it needs.
type authRoute struct {
	method, path, body string
	scope              string
	orcidStyle         bool // errors in ORCID's body and OAuth's 401
}

// TestAuthMatrix sends every route that needs a token every kind of bad token, and
// another client's token for the owner's resources: none of them gets through, and
// nothing of the owner's changes.
func TestAuthMatrix(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	h := newHarness(t)

	// The owner's resources: an ORCID-style registration, a platform webhook, an
	// organisation with a member.
	ownerCreds := h.client(t, "owner", store.ScopeWebhook, store.ScopeNotify, store.ScopeAdmin)
	owner := h.token(t, ownerCreds, "/webhook /notify /admin").AccessToken
	is.Equal(h.do(t, http.MethodPut, webhookPath(seedOrcid, seedSegment), owner).status, http.StatusCreated) // register
	res := h.doJSON(t, http.MethodPost, "/api/notifications/v1/webhooks", owner, `{"targetURL":"https://example.org/hook"}`)
	is.Equal(res.status, http.StatusOK) // platform webhook
	var wh struct {
		ID string `json:"id"`
	}
	decodeLoose(t, res.body, &wh)
	res = h.doJSON(t, http.MethodPost, "/api/hub/v1/organisations", owner, `{"name":"Uni","tech-contact-email":"it@uni.example"}`)
	is.Equal(res.status, http.StatusCreated) // organisation
	var org struct {
		ID int64 `json:"id"`
	}
	decodeLoose(t, res.body, &org)
	orgPath := "/api/hub/v1/organisations/" + strconv.FormatInt(org.ID, 10)
	is.Equal(h.doJSON(t, http.MethodPut, orgPath+"/members/"+seedOrcid, owner, `{}`).status, http.StatusCreated) // member

	// Bad tokens of every kind.
	expiring := h.token(t, h.client(t, "expiring", store.ScopeWebhook, store.ScopeNotify, store.ScopeAdmin), "/webhook /notify /admin")
	h.clock.Advance(2 * time.Hour) // past the harness's one-hour token lifetime
	owner = h.token(t, ownerCreds, "/webhook /notify /admin").AccessToken
	revokedCreds := h.client(t, "revoked", store.ScopeWebhook, store.ScopeNotify, store.ScopeAdmin)
	revoked := h.token(t, revokedCreds, "/webhook /notify /admin")
	is.Equal(h.postForm(t, "/oauth/revoke", url.Values{"token": {revoked.AccessToken}}, revokedCreds.ID, revokedCreds.Secret).status, http.StatusOK) // revoke
	noScope := h.client(t, "narrow", store.ScopeWebhook, store.ScopeNotify, store.ScopeAdmin)
	tokens := map[string]string{ // kind → the Authorization header
		"none":          "",
		"basic":         "Basic " + ownerCreds.ID + ":" + ownerCreds.Secret,
		"empty bearer":  "Bearer ",
		"unknown":       "Bearer 00000000-0000-0000-0000-000000000000",
		"expired":       "Bearer " + expiring.AccessToken,
		"revoked":       "Bearer " + revoked.AccessToken,
		"refresh token": "Bearer " + h.token(t, ownerCreds, "/webhook /notify /admin").RefreshToken,
		"client secret": "Bearer " + ownerCreds.Secret,
		"webhook scope": "Bearer " + h.token(t, noScope, store.ScopeWebhook).AccessToken,
		"notify scope":  "Bearer " + h.token(t, noScope, store.ScopeNotify).AccessToken,
		"admin scope":   "Bearer " + h.token(t, noScope, store.ScopeAdmin).AccessToken,
		"uppercased":    "Bearer " + strings.ToUpper(owner),
	}

	wp := "/api/notifications/v1/webhooks"
	routes := []authRoute{
		{method: http.MethodPut, path: webhookPath(seedOrcid, seedSegment), scope: store.ScopeWebhook, orcidStyle: true},
		{method: http.MethodDelete, path: webhookPath(seedOrcid, seedSegment), scope: store.ScopeWebhook, orcidStyle: true},
		{method: http.MethodGet, path: webhookPath(seedOrcid, seedSegment), scope: store.ScopeWebhook, orcidStyle: true},
		{method: http.MethodGet, path: "/" + seedOrcid + "/webhook", scope: store.ScopeWebhook, orcidStyle: true},
		{method: http.MethodPost, path: "/api/notifications/v1/events", body: `{"orcid":"` + seedOrcid + `"}`, scope: store.ScopeNotify},
		{method: http.MethodPost, path: wp, body: `{"targetURL":"https://example.org/other"}`, scope: store.ScopeWebhook},
		{method: http.MethodGet, path: wp, scope: store.ScopeWebhook},
		{method: http.MethodGet, path: wp + "/" + wh.ID, scope: store.ScopeWebhook},
		{method: http.MethodPatch, path: wp + "/" + wh.ID, body: `{"description":"taken"}`, scope: store.ScopeWebhook},
		{method: http.MethodDelete, path: wp + "/" + wh.ID, scope: store.ScopeWebhook},
		{method: http.MethodPost, path: wp + "/" + wh.ID + "/deactivate", scope: store.ScopeWebhook},
		{method: http.MethodPost, path: wp + "/" + wh.ID + "/activate", scope: store.ScopeWebhook},
		{method: http.MethodPost, path: wp + "/" + wh.ID + "/rotate-secret", scope: store.ScopeWebhook},
		{method: http.MethodGet, path: wp + "/" + wh.ID + "/deliveries", scope: store.ScopeWebhook},
		{method: http.MethodPost, path: wp + "/" + wh.ID + "/replay", body: `{"since":"2024-01-01T00:00:00Z"}`, scope: store.ScopeWebhook},
		{method: http.MethodGet, path: wp + "/" + wh.ID + "/deliveries/1", scope: store.ScopeWebhook},
		{method: http.MethodGet, path: "/api/admin/v1/webhooks", scope: store.ScopeAdmin},
		{method: http.MethodGet, path: "/api/admin/v1/webhooks/" + wh.ID, scope: store.ScopeAdmin},
		{method: http.MethodDelete, path: "/api/admin/v1/webhooks/" + wh.ID, scope: store.ScopeAdmin},
		{method: http.MethodPost, path: "/api/admin/v1/webhooks/" + wh.ID + "/deactivate", scope: store.ScopeAdmin},
		{method: http.MethodPost, path: "/api/admin/v1/webhooks/" + wh.ID + "/activate", scope: store.ScopeAdmin},
		{method: http.MethodGet, path: "/api/admin/v1/deliveries", scope: store.ScopeAdmin},
		{method: http.MethodGet, path: "/api/admin/v1/deliveries/1", scope: store.ScopeAdmin},
		{method: http.MethodPost, path: "/api/admin/v1/replay", body: `{"since":"2024-01-01T00:00:00Z"}`, scope: store.ScopeAdmin},
		{method: http.MethodPost, path: "/api/hub/v1/organisations", body: `{"name":"Other","tech-contact-email":"x@uni.example"}`, scope: store.ScopeAdmin},
		{method: http.MethodGet, path: "/api/hub/v1/organisations", scope: store.ScopeAdmin},
		{method: http.MethodGet, path: orgPath, scope: store.ScopeAdmin},
		{method: http.MethodPatch, path: orgPath, body: `{"name":"Taken"}`, scope: store.ScopeAdmin},
		{method: http.MethodDelete, path: orgPath, scope: store.ScopeAdmin},
		{method: http.MethodPut, path: orgPath + "/webhook", body: `{"enabled":true,"url":"https://example.org/org"}`, scope: store.ScopeAdmin},
		{method: http.MethodGet, path: orgPath + "/webhook", scope: store.ScopeAdmin},
		{method: http.MethodDelete, path: orgPath + "/webhook", scope: store.ScopeAdmin},
		{method: http.MethodGet, path: orgPath + "/members", scope: store.ScopeAdmin},
		{method: http.MethodPut, path: orgPath + "/members/" + seedOrcidX, body: `{}`, scope: store.ScopeAdmin},
		{method: http.MethodDelete, path: orgPath + "/members/" + seedOrcid, scope: store.ScopeAdmin},
	}

	for _, rt := range routes {
		for kind, auth := range tokens {
			t.Run(rt.method+" "+rt.path+" "+kind, func(t *testing.T) {
				is := is.New(t)
				want := http.StatusUnauthorized
				if strings.HasSuffix(kind, " scope") {
					if strings.TrimSuffix(kind, " scope") == strings.TrimPrefix(rt.scope, "/") {
						return // the right scope: not a bad token for this route
					}
					want = http.StatusForbidden
				}
				res := h.call(t, rt.method, rt.path, auth, rt.body)
				if res.status != want {
					t.Logf("body: %s", res.body)
				}
				is.Equal(res.status, want) // refused
				if want == http.StatusUnauthorized {
					is.True(strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer")) // says how to authenticate
				}
				if rt.orcidStyle && want == http.StatusForbidden {
					orcidError(t, res, http.StatusForbidden, 9038) // ORCID's scope error
				}
			})
		}
	}

	// Another client with every scope: the owner's platform webhook is not found, its
	// ORCID registration belongs to another client.
	other := h.token(t, h.client(t, "other", store.ScopeWebhook, store.ScopeNotify), "/webhook /notify").AccessToken
	for _, rt := range routes {
		if rt.scope != store.ScopeWebhook || !strings.Contains(rt.path, wh.ID) {
			continue
		}
		t.Run("other client "+rt.method+" "+rt.path, func(t *testing.T) {
			is := is.New(t)
			res := h.call(t, rt.method, rt.path, "Bearer "+other, rt.body)
			is.Equal(res.status, http.StatusNotFound) // another client's webhook does not exist for it
		})
	}
	orcidError(t, h.do(t, http.MethodDelete, webhookPath(seedOrcid, seedSegment), other), http.StatusForbidden, 9014)
	orcidError(t, h.do(t, http.MethodGet, webhookPath(seedOrcid, seedSegment), other), http.StatusForbidden, 9014)
	is.Equal(len(h.list(t, seedOrcid, other).Webhooks), 0) // the other client lists none of the owner's

	// Nothing of the owner's changed.
	l := h.list(t, seedOrcid, owner)
	is.Equal(len(l.Webhooks), 1)             // the registration is there
	is.Equal(l.Webhooks[0].Status, "active") // and active
	sub, err := h.st.Webhook(ctx, ownerCreds.ID, wh.ID)
	is.NoErr(err)                 // the platform webhook is there
	is.True(sub.Active)           // active
	is.Equal(sub.Description, "") // unchanged
	orgs, err := h.st.Organisations(ctx)
	is.NoErr(err)                 // organisations
	is.Equal(len(orgs), 1)        // none added, none removed
	is.Equal(orgs[0].Name, "Uni") // not renamed
	is.Equal(orgs[0].Members, 1)  // the member stays
}

// call sends body (JSON when not empty) with the Authorization header auth as given.
func (h *harness) call(tb testing.TB, method, rawPath, auth, body string) response {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(method, h.srv.URL, strings.NewReader(body))
	is.NoErr(err) // make request
	path, query, _ := strings.Cut(h.opts.BasePath+rawPath, "?")
	req.URL.Opaque = path
	req.URL.RawQuery = query
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return h.send(tb, req)
}

// doJSON sends a JSON body with a bearer token.
func (h *harness) doJSON(tb testing.TB, method, rawPath, token, body string) response {
	tb.Helper()
	return h.call(tb, method, rawPath, "Bearer "+token, body)
}

// decodeLoose decodes a JSON body, ignoring fields v does not name.
func decodeLoose(tb testing.TB, body []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("decode %s: %v", body, err)
	}
}
