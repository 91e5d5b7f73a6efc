package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/store"
)

// The caps on how far one client's webhooks multiply its events: at most
// delivery.max_every_record_webhooks active webhooks for every record, and at
// most delivery.max_webhooks_per_record for one iD, per client. Small caps here
// (3 and 2), through the real router on a real store.

// cappedHarness is a harness whose store caps each client at every active
// webhooks for every record and per active webhooks for one record.
func cappedHarness(tb testing.TB, every, per int) *harness {
	tb.Helper()
	return newHarnessOn(tb, func(o *store.Options) { o.FanOut = store.FanOutCaps{EveryRecord: every, PerRecord: per} })
}

// activeCount counts the active subscriptions of client clientID in the store.
func activeCount(tb testing.TB, h *harness, clientID string) (all, active int) {
	tb.Helper()
	for _, s := range h.allSubscriptions(tb) {
		if s.ClientID == clientID {
			all++
			if s.Active {
				active++
			}
		}
	}
	return all, active
}

// TestFanOutCapEveryRecord: a client's fourth active webhook for every record,
// past a cap of 3, is a 409 that names the cap, the count and the configuration
// key, and creates nothing; an idempotent repeat of a creation still answers; a
// webhook deactivated frees a place, and activating it again past the cap is
// refused; a PATCH that widens a webhook to every record past the cap is refused
// and changes nothing; the operator's activation is held to the cap too.
func TestFanOutCapEveryRecord(t *testing.T) {
	is := is.New(t)
	h := cappedHarness(t, 3, 2)
	c := h.client(t, "platform", store.ScopeWebhook)
	tok := h.token(t, c, store.ScopeWebhook).AccessToken
	other := h.webhookToken(t, "other")
	admin := h.token(t, h.client(t, "operator", store.ScopeAdmin), store.ScopeAdmin).AccessToken

	const every = `{"targetURL":"https://example.com/all"}`
	first := platformCreate(t, h, tok, every) // orcid left out: every record
	var replay platformRecord
	keyed := platformCall(t, h, http.MethodPost, platformPath, tok, `{"targetURL":"https://example.com/keyed","orcid":"*"}`, "Idempotency-Key", "k1")
	platformOK(t, keyed, http.StatusOK, &replay)
	platformCreate(t, h, tok, `{"targetURL":"https://example.com/all3","types":["orcid.record.updated"]}`)

	res := platformCall(t, h, http.MethodPost, platformPath, tok, every)
	p := platformProblem(t, res, http.StatusConflict)
	is.Equal(p.Field, "orcid") // the field that chose every record
	is.Equal(p.Detail, "orcid: client "+c.ID+" has 3 active webhooks for every record, and delivery.max_every_record_webhooks allows 3: "+
		"nothing was changed; delete or deactivate one of them first, or raise delivery.max_every_record_webhooks in hookd's configuration") // the cap, the count, the key
	all, active := activeCount(t, h, c.ID)
	is.Equal(all, 3)    // nothing was stored
	is.Equal(active, 3) // nor activated
	is.Equal(len(platformList(t, h, tok, "").Webhooks), 3)

	// The same creation again, with its key: the webhook it made, not a new one.
	again := platformCall(t, h, http.MethodPost, platformPath, tok, `{"targetURL":"https://example.com/keyed","orcid":"*"}`, "Idempotency-Key", "k1")
	var rep platformRecord
	platformOK(t, again, http.StatusOK, &rep)
	is.Equal(again.header.Get("Idempotent-Replayed"), "true") // a repeat at the cap answers
	is.Equal(rep.ID, replay.ID)                               // with the webhook it made

	// Per client, and per cap: another client, and this one for one record, may.
	platformCreate(t, h, other, every)
	perRecord := platformCreate(t, h, tok, `{"targetURL":"https://example.com/one","orcid":"`+seedOrcid+`"}`)

	// A PATCH that widens an active webhook to every record is refused, and
	// changes nothing.
	p = platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+perRecord.ID, tok, `{"orcid":"*","description":"wider"}`), http.StatusConflict)
	is.Equal(p.Field, "orcid")                                                // the field at fault
	is.True(strings.Contains(p.Detail, "delivery.max_every_record_webhooks")) // names the key
	got := platformGet(t, h, tok, perRecord.ID)
	is.Equal(got.Orcid, seedOrcid) // still its record
	is.Equal(got.Description, "")  // nothing else changed either
	is.True(got.UpdatedAt.Equal(perRecord.UpdatedAt))

	// Deactivating one frees a place.
	var off platformRecord
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+first.ID+"/deactivate", tok, ""), http.StatusOK, &off)
	is.Equal(off.Status, "deactivated")
	fourth := platformCreate(t, h, tok, every)
	is.Equal(fourth.Status, "active") // in the place the deactivated one left

	// Activating the deactivated one would be a fourth: refused, by its owner and
	// by an operator, and it stays deactivated.
	p = platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+first.ID+"/activate", tok, ""), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "has 3 active webhooks for every record")) // the count
	p = platformProblem(t, platformCall(t, h, http.MethodPost, "/api/admin/v1/webhooks/"+first.ID+"/activate", admin, ""), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "delivery.max_every_record_webhooks allows 3")) // the cap and its key
	is.Equal(platformGet(t, h, tok, first.ID).Status, "deactivated")                   // unchanged

	// A deactivated webhook may be widened: it makes no delivery until activated.
	platformOK(t, platformCall(t, h, http.MethodPost, platformPath+"/"+perRecord.ID+"/deactivate", tok, ""), http.StatusOK, &off)
	var wide platformRecord
	platformOK(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+perRecord.ID, tok, `{"orcid":"*"}`), http.StatusOK, &wide)
	is.Equal(wide.Orcid, "") // every record, deactivated
	platformProblem(t, platformCall(t, h, http.MethodPost, platformPath+"/"+perRecord.ID+"/activate", tok, ""), http.StatusConflict)
}

// TestFanOutCapPerRecord: a client's third active webhook for one iD, past a cap
// of 2, is refused whether it is an ORCID-style registration or a platform
// webhook (409, in each API's error body, naming the cap, the count and the
// key), and registers nothing; registering one of the two again is a 204 at the
// cap; other iDs and other clients are not bounded by it; a registration
// deactivated frees a place, and the PUT that would turn it on again past the cap
// is refused.
func TestFanOutCapPerRecord(t *testing.T) {
	is := is.New(t)
	h := cappedHarness(t, 3, 2)
	c := h.client(t, "member", store.ScopeWebhook)
	tok := h.token(t, c, store.ScopeWebhook).AccessToken
	other := h.webhookToken(t, "other")
	put := func(orcid, cb, token string, header ...string) response {
		return h.do(t, http.MethodPut, webhookPath(orcid, httpapi.EscapeSegment(cb)), token, header...)
	}
	const cb1, cb2, cb3 = "https://example.com/1", "https://example.com/2", "https://example.com/3"
	is.Equal(put(seedOrcid, cb1, tok).status, http.StatusCreated)
	is.Equal(put(seedOrcid, cb2, tok).status, http.StatusCreated)

	e := orcidError(t, put(seedOrcid, cb3, tok), http.StatusConflict, 9001)
	is.Equal(e.DeveloperMessage, "409 Conflict: client "+c.ID+" has 2 active webhooks for ORCID iD "+seedOrcid+
		", and delivery.max_webhooks_per_record allows 2: nothing was changed; delete or deactivate one of them first, or raise delivery.max_webhooks_per_record in hookd's configuration")
	orcidXMLError(t, put(seedOrcid, cb3, tok, "Accept", "application/xml"), http.StatusConflict, 9001) // in XML too
	is.Equal(len(h.list(t, seedOrcid, tok).Webhooks), 2)                                               // nothing registered
	all, _ := activeCount(t, h, c.ID)
	is.Equal(all, 2)

	is.Equal(put(seedOrcid, cb1, tok).status, http.StatusNoContent)                         // the same callback again, at the cap
	is.Equal(put(seedOrcid, "HTTPS://Example.COM:443/2", tok).status, http.StatusNoContent) // under another spelling too
	is.Equal(put(seedOrcidX, cb3, tok).status, http.StatusCreated)                          // another iD: its own count
	is.Equal(put(seedOrcid, "https://example.com/other", other).status, http.StatusCreated) // another client: its own count

	// A platform webhook for the iD counts with the registrations.
	p := platformProblem(t, platformCall(t, h, http.MethodPost, platformPath, tok, `{"targetURL":"https://example.com/p","orcid":"`+seedOrcid+`"}`), http.StatusConflict)
	is.Equal(p.Field, "orcid")
	is.True(strings.Contains(p.Detail, "has 2 active webhooks for ORCID iD "+seedOrcid+", and delivery.max_webhooks_per_record allows 2"))
	// And a PATCH that moves a platform webhook to the iD.
	elsewhere := platformCreate(t, h, tok, `{"targetURL":"https://example.com/p","orcid":"`+seedOrcidX+`"}`)
	p = platformProblem(t, platformCall(t, h, http.MethodPatch, platformPath+"/"+elsewhere.ID, tok, `{"orcid":"`+seedOrcid+`"}`), http.StatusConflict)
	is.True(strings.Contains(p.Detail, "delivery.max_webhooks_per_record"))
	is.Equal(platformGet(t, h, tok, elsewhere.ID).Orcid, seedOrcidX) // unchanged

	// A registration deactivated (hookd does so after a 410) frees a place.
	reg := h.list(t, seedOrcid, tok).Webhooks
	is.Equal(len(reg), 2)
	var first store.Subscription
	for _, s := range h.allSubscriptions(t) {
		if s.ClientID == c.ID && s.Target == cb1 {
			first = s
		}
	}
	_, err := h.st.SetSubscriptionActive(t.Context(), first.UID, false, store.ReasonOperator)
	is.NoErr(err)                                                 // deactivate the first
	is.Equal(put(seedOrcid, cb3, tok).status, http.StatusCreated) // the place it left

	// Its owner's PUT would turn it on again as a third: refused, and it stays off.
	orcidError(t, put(seedOrcid, cb1, tok), http.StatusConflict, 9001)
	sub, err := h.st.Subscription(t.Context(), first.UID)
	is.NoErr(err)
	is.True(!sub.Active) // still deactivated
	all, active := activeCount(t, h, c.ID)
	is.Equal(all, 5)    // cb1, cb2, cb3 for the iD; cb3 and the platform webhook for the other iD
	is.Equal(active, 4) // two of them for the iD, none past the cap
}
