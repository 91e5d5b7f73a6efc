package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

const orcidDeliveriesPath = "/api/notifications/v1/orcid-webhooks/deliveries"

// orcidDeliveries asks for a registration's deliveries with the query q.
func orcidDeliveries(tb testing.TB, h *harness, token string, q url.Values) response {
	tb.Helper()
	return platformCall(tb, h, http.MethodGet, orcidDeliveriesPath+"?"+q.Encode(), token, "")
}

// TestOrcidWebhookDeliveries: the client that registered a callback reads its
// deliveries and their attempts over HTTP, also after it removed the
// registration; another client is refused as ORCID's routes refuse it.
func TestOrcidWebhookDeliveries(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	ctx := context.Background()
	const callback = "https://nowhere2.example/cb?x=1&y=2"
	tok := h.webhookToken(t, "lab")
	other := h.webhookToken(t, "other")
	res := h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(callback)), tok, "Content-Length", "0")
	is.Equal(res.status, http.StatusCreated) // registered
	sub := h.allSubscriptions(t)[0]

	// Two deliveries: the first tried twice (500, then 204), the second waiting.
	_, err := h.st.Intake(ctx, "", "", []store.Event{{Orcid: seedOrcid}}, 0)
	is.NoErr(err)
	outcome := func(kind store.OutcomeKind, status int) {
		t.Helper()
		claimed, err := h.st.Exchange(ctx, nil, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1) // the registration's delivery
		c := claimed[0]
		_, err = h.st.Exchange(ctx, []store.Outcome{{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind,
			Attempt: c.Attempt, StartedAt: h.clock.Now(), Duration: 30 * time.Millisecond, Status: status, RetryAt: h.clock.Now()}}, 0, 0)
		is.NoErr(err)
	}
	outcome(store.OutcomeRetry, 500)
	outcome(store.OutcomeDelivered, 204)
	h.clock.Advance(time.Minute)
	_, err = h.st.Intake(ctx, "", "", []store.Event{{Orcid: seedOrcid}}, time.Hour)
	is.NoErr(err)

	q := url.Values{"orcid": {seedOrcid}, "callback": {callback}}
	var page struct {
		Deliveries []platformDelivery `json:"deliveries"`
		NextCursor string             `json:"nextCursor"`
	}
	platformOK(t, orcidDeliveries(t, h, tok, q), http.StatusOK, &page)
	is.Equal(len(page.Deliveries), 2)             // both, newest first
	is.Equal(page.Deliveries[0].State, "pending") // the waiting one
	d := page.Deliveries[1]                       // the delivered one
	is.Equal(d.State, "delivered")                // delivered
	is.Equal(d.Format, "empty")                   // an ORCID-style call
	is.Equal(d.Target, callback)                  // to the callback
	is.Equal(d.Orcid, seedOrcid)                  // of the record
	is.Equal(d.WebhookID, sub.UID)                // of the registration
	is.Equal(len(d.AttemptsLog), 2)               // with its attempts
	is.Equal(d.AttemptsLog[0].Status, 500)        // the failed one
	is.Equal(d.AttemptsLog[1].Status, 204)        // and the one that succeeded
	is.True(d.WebhookRemovedAt.IsZero())          // of a registration that exists
	is.Equal(page.NextCursor, "")                 // all on one page

	t.Run("a page at a time, filtered", func(t *testing.T) {
		is := is.New(t)
		var p1, p2 struct {
			Deliveries []platformDelivery `json:"deliveries"`
			NextCursor string             `json:"nextCursor"`
		}
		q := url.Values{"orcid": {seedOrcid}, "callback": {callback}, "limit": {"1"}}
		platformOK(t, orcidDeliveries(t, h, tok, q), http.StatusOK, &p1)
		is.Equal(len(p1.Deliveries), 1) // one
		is.True(p1.NextCursor != "")    // and a next page
		q.Set("cursor", p1.NextCursor)
		platformOK(t, orcidDeliveries(t, h, tok, q), http.StatusOK, &p2)
		is.Equal(len(p2.Deliveries), 1)     // the other
		is.Equal(p2.Deliveries[0].ID, d.ID) // older
		q = url.Values{"orcid": {seedOrcid}, "callback": {callback}, "state": {"delivered"}}
		platformOK(t, orcidDeliveries(t, h, tok, q), http.StatusOK, &p1)
		is.Equal(len(p1.Deliveries), 1) // only the delivered one
		is.Equal(p1.Deliveries[0].ID, d.ID)
	})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			token  string
			q      url.Values
			status int
			field  string
		}{
			{"another client's registration", other, q, http.StatusForbidden, ""},
			{"no such callback", tok, url.Values{"orcid": {seedOrcid}, "callback": {"https://nowhere2.example/other"}}, http.StatusNotFound, ""},
			{"no such registration for the record", tok, url.Values{"orcid": {"0000-0002-1825-0097"}, "callback": {callback}}, http.StatusNotFound, ""},
			{"without orcid", tok, url.Values{"callback": {callback}}, http.StatusBadRequest, "orcid"},
			{"without callback", tok, url.Values{"orcid": {seedOrcid}}, http.StatusBadRequest, "callback"},
			{"a bad iD", tok, url.Values{"orcid": {"0000-0002-7253-3646"}, "callback": {callback}}, http.StatusBadRequest, "orcid"},
			{"a callback that is no URL", tok, url.Values{"orcid": {seedOrcid}, "callback": {"ftp://nowhere2.example/x"}}, http.StatusBadRequest, "callback"},
			{"a bad state", tok, url.Values{"orcid": {seedOrcid}, "callback": {callback}, "state": {"lost"}}, http.StatusBadRequest, "state"},
			{"an unknown parameter", tok, url.Values{"orcid": {seedOrcid}, "callback": {callback}, "client": {"x"}}, http.StatusBadRequest, "client"},
			{"a bad token", "not-a-token", q, http.StatusUnauthorized, ""},
			{"no token", "", q, http.StatusUnauthorized, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				p := platformProblem(t, orcidDeliveries(t, h, tt.token, tt.q), tt.status)
				is.Equal(p.Field, tt.field) // names what is wrong
			})
		}
		t.Run("a token without /webhook", func(t *testing.T) {
			_, notify := platformTokens(t, h, "notifier")
			platformProblem(t, orcidDeliveries(t, h, notify, q), http.StatusForbidden)
		})
	})

	t.Run("kept after the registration is removed", func(t *testing.T) {
		is := is.New(t)
		res := h.do(t, http.MethodDelete, webhookPath(seedOrcid, httpapi.EscapeSegment(callback)), tok)
		is.Equal(res.status, http.StatusNoContent) // removed
		var after struct {
			Deliveries []platformDelivery `json:"deliveries"`
		}
		platformOK(t, orcidDeliveries(t, h, tok, q), http.StatusOK, &after)
		is.Equal(len(after.Deliveries), 2)                                       // still listed
		is.True(!after.Deliveries[1].WebhookRemovedAt.IsZero())                  // as a removed registration's
		is.Equal(after.Deliveries[1].AttemptsLog[1].Status, 204)                 // with its attempts
		platformProblem(t, orcidDeliveries(t, h, other, q), http.StatusNotFound) // not another client's to see

		// Another client registers the same callback: each sees its own.
		res = h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(callback)), other, "Content-Length", "0")
		is.Equal(res.status, http.StatusCreated)
		var theirs struct {
			Deliveries []platformDelivery `json:"deliveries"`
		}
		platformOK(t, orcidDeliveries(t, h, other, q), http.StatusOK, &theirs)
		is.Equal(len(theirs.Deliveries), 0) // a new registration: no history
		platformOK(t, orcidDeliveries(t, h, tok, q), http.StatusOK, &after)
		is.Equal(len(after.Deliveries), 2) // the first client's stays its own
	})
}
