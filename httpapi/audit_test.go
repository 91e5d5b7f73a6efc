package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

// TestAdminWritesAudited: every write of the admin APIs (/api/hub/v1/… and
// /api/admin/v1/…) adds one entry to the audit log, as the console's writes do:
// via api, who (the token's client, or the operator's admin token), from which
// address, what, to what, and whose that is (so its owner sees it); a refused
// write adds none. The cases cover every write route those APIs have.
func TestAdminWritesAudited(t *testing.T) {
	const adminTok = "operator-token-0123456789"
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = adminTok })
	ctx := context.Background()
	ops := h.client(t, "ops", store.ScopeAdmin)
	opsTok := h.token(t, ops, store.ScopeAdmin).AccessToken
	owner := h.client(t, "owner", store.ScopeWebhook)
	hook, _, err := h.st.CreateWebhook(ctx, owner.ID, store.WebhookSpec{TargetURL: "https://example.org/p", Auth: store.Auth{Type: store.AuthNone}})
	if err != nil {
		t.Fatal(err)
	}
	delivery, err := h.st.SendTestEvent(ctx, hook.UID, "")
	if err != nil {
		t.Fatal(err)
	}
	const member = "0000-0002-1825-0097"
	var orgID int64 // the organisation the first case creates
	org := func() string { return "/api/hub/v1/organisations/" + strconv.FormatInt(orgID, 10) }

	type want struct {
		actor, action, target, clientID string
		orgID                           func() int64
		detail                          string
	}
	ofOrg := func() int64 { return orgID }
	none := func() int64 { return 0 }
	cases := []struct {
		route        string // the route's pattern, as Routes lists it
		method, path string
		path2        func() string // the path, when it needs the organisation's id
		token, body  string
		status       int
		want         want
	}{
		{"POST /api/hub/v1/organisations", "POST", "/api/hub/v1/organisations", nil, adminTok,
			`{"name":"Uni","tech-contact-email":"it@uni.example"}`, http.StatusCreated,
			want{store.ActorAdminToken, "organisation.create", "", "", ofOrg, "Uni"}},
		{"PATCH /api/hub/v1/organisations/:id", "PATCH", "", func() string { return org() }, opsTok,
			`{"name":"Uni of Testing"}`, http.StatusOK,
			want{ops.ID, "organisation.update", "", "", ofOrg, "name Uni of Testing; technical contact it@uni.example"}},
		{"PUT /api/hub/v1/organisations/:id/webhook", "PUT", "", func() string { return org() + "/webhook" }, adminTok,
			`{"enabled":true,"url":"https://uni.example/orcid"}`, http.StatusCreated,
			want{store.ActorAdminToken, "organisation.webhook", "", "", ofOrg, "webhook active https://uni.example/orcid; e-mail deactivated"}},
		{"POST /api/hub/v1/organisations/:id/webhook/rotate-secret", "POST", "", func() string { return org() + "/webhook/rotate-secret" }, opsTok,
			"", http.StatusOK, want{ops.ID, "organisation.webhook.rotate-secret", "", "", ofOrg, ""}},
		{"POST /api/hub/v1/organisations/:id/webhook/rotate-secret", "POST", "", func() string { return org() + "/webhook/rotate-secret" }, adminTok,
			`{"revoke-previous": true}`, http.StatusOK, want{store.ActorAdminToken, "organisation.webhook.rotate-secret", "", "", ofOrg, "previous secrets revoked"}},
		{"PUT /api/hub/v1/organisations/:id/members/:orcid", "PUT", "", func() string { return org() + "/members/" + member }, opsTok,
			"", http.StatusCreated, want{ops.ID, "organisation.member.add", "", "", ofOrg, member}},
		{"PUT /api/hub/v1/organisations/:id/members/:orcid", "PUT", "", func() string { return org() + "/members/" + member }, opsTok,
			`{"name":"Josiah Carberry"}`, http.StatusNoContent, want{ops.ID, "organisation.member.update", "", "", ofOrg, member}},
		{"DELETE /api/hub/v1/organisations/:id/members/:orcid", "DELETE", "", func() string { return org() + "/members/" + member }, adminTok,
			"", http.StatusNoContent, want{store.ActorAdminToken, "organisation.member.remove", "", "", ofOrg, member}},
		{"DELETE /api/hub/v1/organisations/:id/webhook", "DELETE", "", func() string { return org() + "/webhook" }, adminTok,
			"", http.StatusNoContent, want{store.ActorAdminToken, "organisation.webhook.delete", "", "", ofOrg, ""}},
		{"DELETE /api/hub/v1/organisations/:id", "DELETE", "", func() string { return org() }, opsTok,
			"", http.StatusNoContent, want{ops.ID, "organisation.delete", "", "", ofOrg, "Uni of Testing"}},
		{"POST /api/admin/v1/webhooks/:id/deactivate", "POST", "/api/admin/v1/webhooks/" + hook.UID + "/deactivate", nil, adminTok,
			"", http.StatusOK, want{store.ActorAdminToken, "webhook.deactivate", hook.UID, owner.ID, none, "https://example.org/p"}},
		{"POST /api/admin/v1/webhooks/:id/activate", "POST", "/api/admin/v1/webhooks/" + hook.UID + "/activate", nil, opsTok,
			"", http.StatusOK, want{ops.ID, "webhook.activate", hook.UID, owner.ID, none, "https://example.org/p"}},
		{"POST /api/admin/v1/replay", "POST", "/api/admin/v1/replay", nil, adminTok,
			`{"deliveryId":` + strconv.FormatInt(delivery, 10) + `}`, http.StatusAccepted,
			want{store.ActorAdminToken, "delivery.replay", strconv.FormatInt(delivery, 10), owner.ID, none, "https://example.org/p"}},
		{"POST /api/admin/v1/replay", "POST", "/api/admin/v1/replay", nil, opsTok,
			`{"since":"2024-03-01","client":"owner"}`, http.StatusAccepted,
			want{ops.ID, "deliveries.replay", "", owner.ID, none, "since 2024-03-01T00:00:00Z, client owner: 0 replayed, 0 left (webhook deactivated)"}},
		{"DELETE /api/admin/v1/webhooks/:id", "DELETE", "/api/admin/v1/webhooks/" + hook.UID, nil, opsTok,
			"", http.StatusNoContent, want{ops.ID, "webhook.delete", hook.UID, owner.ID, none, "https://example.org/p"}},
	}

	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.route] = true
	}
	for _, r := range httpapi.Routes(h.opts) {
		if r[0] != http.MethodGet && (strings.HasPrefix(r[1], "/api/hub/v1/") || strings.HasPrefix(r[1], "/api/admin/v1/")) {
			if !covered[r[0]+" "+r[1]] {
				t.Errorf("the write route %s %s has no case here: is it audited?", r[0], r[1])
			}
		}
	}

	log := func(tb testing.TB) []store.AuditEntry {
		tb.Helper()
		es, err := h.st.AuditLog(ctx, store.AuditQuery{Limit: 1000})
		is.New(tb).NoErr(err)
		return es
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i)+" "+c.want.action, func(t *testing.T) {
			is := is.New(t)
			path := c.path
			if c.path2 != nil {
				path = c.path2()
			}
			before := len(log(t))
			res := h.doJSON(t, c.method, path, c.token, c.body)
			is.Equal(res.status, c.status) // done
			if orgID == 0 {
				var o struct {
					ID int64 `json:"id"`
				}
				decodeLoose(t, res.body, &o)
				orgID = o.ID
			}
			es := log(t)
			is.Equal(len(es), before+1) // one entry
			e := es[0]
			is.Equal(e.Via, store.ViaAPI)     // from the API
			is.Equal(e.Actor, c.want.actor)   // by the token's client or the admin token
			is.Equal(e.Address, "127.0.0.1")  // from the request's address
			is.Equal(e.Action, c.want.action) // what
			is.Equal(e.ClientID, c.want.clientID)
			is.Equal(e.OrgID, c.want.orgID()) // whose
			is.Equal(e.Detail, c.want.detail)
			is.True(e.At.Equal(h.clock.Now())) // when
			target := c.want.target
			if target == "" && c.want.orgID() != 0 {
				target = strconv.FormatInt(orgID, 10)
			}
			is.Equal(e.Target, target) // to what
		})
		h.clock.Advance(time.Second)
	}

	t.Run("a refused write records nothing", func(t *testing.T) {
		is := is.New(t)
		before := len(log(t))
		is.Equal(h.doJSON(t, "POST", "/api/hub/v1/organisations", adminTok, `{"name":"","tech-contact-email":"x"}`).status, http.StatusBadRequest)
		is.Equal(h.doJSON(t, "POST", "/api/admin/v1/webhooks/nope/deactivate", adminTok, "").status, http.StatusNotFound)
		is.Equal(h.doJSON(t, "POST", "/api/admin/v1/replay", opsTok, `{"since":"yesterday"}`).status, http.StatusBadRequest)
		is.Equal(h.doJSON(t, "DELETE", "/api/admin/v1/webhooks/"+hook.UID, owner.Secret, "").status, http.StatusUnauthorized)
		is.Equal(len(log(t)), before) // nothing recorded
	})

	t.Run("the owner sees what was done to its webhook", func(t *testing.T) {
		is := is.New(t)
		es, err := h.st.AuditLog(ctx, store.AuditQuery{Visible: store.Visibility{ClientID: owner.ID}})
		is.NoErr(err)
		var actions []string
		for _, e := range es {
			actions = append(actions, e.Action)
		}
		is.Equal(strings.Join(actions, " "), "webhook.delete deliveries.replay delivery.replay webhook.activate webhook.deactivate")
	})
}

// TestMemberPutAgainNotAudited: the Hub API's member PUT of a member as it is
// (a sync sending every member again) answers 204 and adds no audit entry; one
// that changes a detail adds one. Each PUT was logged as
// organisation.member.update.
func TestMemberPutAgainNotAudited(t *testing.T) {
	const adminTok = "operator-token-0123456789"
	is := is.New(t)
	h := newHarness(t, func(o *httpapi.Options) { o.AdminToken = adminTok })
	ctx := context.Background()
	res := h.doJSON(t, "POST", "/api/hub/v1/organisations", adminTok, `{"name":"Uni","tech-contact-email":"it@uni.example"}`)
	is.Equal(res.status, http.StatusCreated)
	var o struct {
		ID int64 `json:"id"`
	}
	decodeLoose(t, res.body, &o)
	path := "/api/hub/v1/organisations/" + strconv.FormatInt(o.ID, 10) + "/members/0000-0002-1825-0097"
	entries := func() int {
		es, err := h.st.AuditLog(ctx, store.AuditQuery{Action: "organisation.member.update"})
		is.NoErr(err)
		return len(es)
	}
	is.Equal(h.doJSON(t, "PUT", path, adminTok, `{"name":"Josiah Carberry","email":"j@uni.example"}`).status, http.StatusCreated)
	is.Equal(h.doJSON(t, "PUT", path, adminTok, `{"name":"Josiah Carberry","email":"j@uni.example"}`).status, http.StatusNoContent)
	is.Equal(h.doJSON(t, "PUT", path, adminTok, "").status, http.StatusNoContent)
	is.Equal(entries(), 0) // as it was: nothing to log
	is.Equal(h.doJSON(t, "PUT", path, adminTok, `{"name":"Josiah S. Carberry"}`).status, http.StatusNoContent)
	is.Equal(entries(), 1) // a change is logged
}
