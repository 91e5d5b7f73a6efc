package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"hookd/store"
)

// adminWebhook is a webhook as the admin API shows it.
type adminWebhook struct {
	ID           string    `json:"id"`
	Format       string    `json:"format"`
	ClientID     string    `json:"clientId"`
	OrgID        int64     `json:"orgId"`
	Orcid        string    `json:"orcid"`
	Target       string    `json:"target"`
	Status       string    `json:"status"`
	Reason       string    `json:"reason"`
	FailingSince time.Time `json:"failingSince"`
	Types        []string  `json:"types"`
	Description  string    `json:"description"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Unchanged    bool      `json:"unchanged"`
}

// adminFixture is a harness with an admin token, two clients' webhooks (an
// ORCID-style registration and a platform webhook) and an organisation's webhook,
// each with a delivery that failed once.
type adminFixture struct {
	*harness
	admin          string
	owner, other   store.Credentials
	ownerTok       string
	orcidUID       string
	platUID        string
	hubUID         string
	org            store.Organisation
	platDeliveryID int64
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	f := &adminFixture{harness: newHarness(t)}
	f.admin = f.token(t, f.client(t, "operator", store.ScopeAdmin), store.ScopeAdmin).AccessToken
	f.owner = f.client(t, "owner", store.ScopeWebhook)
	f.ownerTok = f.token(t, f.owner, store.ScopeWebhook).AccessToken
	f.other = f.client(t, "other", store.ScopeWebhook)
	reg, _, err := f.st.PutOrcidWebhook(ctx, f.owner.ID, seedOrcid, seedCallback)
	is.NoErr(err)
	f.orcidUID = reg.UID
	plat, _, err := f.st.CreateWebhook(ctx, f.other.ID, store.WebhookSpec{TargetURL: "https://example.org/p", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	f.platUID = plat.UID
	f.org, err = f.st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	_, _, err = f.st.SetHubSettings(ctx, f.org.ID, store.HubSettings{Enabled: true, URL: "https://example.org/hub"})
	is.NoErr(err)
	_, err = f.st.PutMember(ctx, f.org.ID, seedOrcid, store.MemberInfo{}, 0)
	is.NoErr(err)
	hub, err := f.st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: f.org.ID})
	is.NoErr(err)
	f.hubUID = hub[0].UID
	_, err = f.st.Intake(ctx, "", "", []store.Event{{Orcid: seedOrcid}}, 0)
	is.NoErr(err)
	claimed, err := f.st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 3) // a delivery per webhook
	var failed []store.Outcome
	for _, c := range claimed {
		if c.Target.UID == f.platUID {
			f.platDeliveryID = c.ID
		}
		failed = append(failed, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeRetry,
			Attempt: c.Attempt, StartedAt: f.clock.Now(), Status: 500, Error: "HTTP 500", RetryAt: f.clock.Now().Add(time.Hour)})
	}
	_, err = f.st.Exchange(ctx, failed, 0, 0)
	is.NoErr(err)
	return f
}

// get calls the admin API and decodes a 200's body into v.
func (f *adminFixture) get(t *testing.T, path string, v any) {
	t.Helper()
	platformOK(t, platformCall(t, f.harness, http.MethodGet, path, f.admin, ""), http.StatusOK, v)
}

// TestAdminAPI: what the command line shows an operator, the admin API shows too,
// with the same filters and actions, on webhooks of every kind and owner.
func TestAdminAPI(t *testing.T) {
	f := newAdminFixture(t)
	type webhooks struct {
		Webhooks   []adminWebhook `json:"webhooks"`
		NextCursor string         `json:"nextCursor"`
	}
	type deliveries struct {
		Deliveries []platformDelivery `json:"deliveries"`
		NextCursor string             `json:"nextCursor"`
	}

	t.Run("webhooks of every kind", func(t *testing.T) {
		is := is.New(t)
		var all webhooks
		f.get(t, "/api/admin/v1/webhooks", &all)
		formats := map[string]string{}
		for _, w := range all.Webhooks {
			formats[w.ID] = w.Format
		}
		is.Equal(formats, map[string]string{f.orcidUID: "empty", f.platUID: "standard", f.hubUID: "hub"}) // every client's and organisation's
		var page webhooks
		f.get(t, "/api/admin/v1/webhooks?limit=2", &page)
		is.Equal(len(page.Webhooks), 2) // a page
		var rest webhooks
		f.get(t, "/api/admin/v1/webhooks?limit=2&cursor="+page.NextCursor, &rest)
		is.Equal(len(rest.Webhooks), 1) // and the rest
		for query, want := range map[string]string{
			"client=" + f.owner.ID:                   f.orcidUID,
			"org=" + strconv.FormatInt(f.org.ID, 10): f.hubUID,
			"format=standard":                        f.platUID,
			"orcid=" + seedOrcid:                     f.orcidUID,
			"orcid=https://orcid.org/" + seedOrcid:   f.orcidUID, // as a webhook's orcid may be given
		} {
			var got webhooks
			f.get(t, "/api/admin/v1/webhooks?"+query, &got)
			is.Equal(len(got.Webhooks), 1)     // narrowed
			is.Equal(got.Webhooks[0].ID, want) // to the one
		}
		var one adminWebhook
		f.get(t, "/api/admin/v1/webhooks/"+f.orcidUID, &one)
		is.Equal(one.ClientID, f.owner.ID) // whose it is
		is.Equal(one.Target, seedCallback) // and where it goes
	})

	t.Run("deliveries with the command line's filters", func(t *testing.T) {
		is := is.New(t)
		var all deliveries
		f.get(t, "/api/admin/v1/deliveries", &all)
		is.Equal(len(all.Deliveries), 3) // every delivery
		for _, d := range all.Deliveries {
			is.Equal(len(d.AttemptsLog), 1) // with its attempts
			is.Equal(d.State, "failed")
		}
		for query, n := range map[string]int{
			"webhook=" + f.platUID:                        1,
			"client=" + f.other.ID:                        1,
			"org=" + strconv.FormatInt(f.org.ID, 10):      1,
			"state=failed&orcid=" + seedOrcid:             3,
			"orcid=https://orcid.org/" + seedOrcid:        3, // as a webhook's orcid may be given
			"state=dead":                                  0,
			"since=2h":                                    3,
			"since=2024-03-01&until=2024-03-01T11:00:00Z": 0,
			"limit=1": 1,
		} {
			var got deliveries
			f.get(t, "/api/admin/v1/deliveries?"+query, &got)
			is.Equal(len(got.Deliveries), n) // narrowed as the query says
		}
		var page deliveries
		f.get(t, "/api/admin/v1/deliveries?limit=2", &page)
		var rest deliveries
		f.get(t, "/api/admin/v1/deliveries?limit=2&cursor="+page.NextCursor, &rest)
		is.Equal(len(rest.Deliveries), 1)                      // the next page
		is.True(rest.Deliveries[0].ID < page.Deliveries[1].ID) // newest first
		var one platformDelivery
		f.get(t, "/api/admin/v1/deliveries/"+strconv.FormatInt(f.platDeliveryID, 10), &one)
		is.Equal(one.WebhookID, f.platUID) // one delivery, with its webhook
		is.Equal(one.ClientID, f.other.ID) // and its client
		is.Equal(len(one.AttemptsLog), 1)  // and attempts
		platformProblem(t, platformCall(t, f.harness, http.MethodGet, "/api/admin/v1/deliveries/999", f.admin, ""), http.StatusNotFound)
		for _, alias := range []string{"0", "+"} { // one delivery, one URL
			platformProblem(t, platformCall(t, f.harness, http.MethodGet, "/api/admin/v1/deliveries/"+alias+strconv.FormatInt(f.platDeliveryID, 10), f.admin, ""), http.StatusNotFound)
		}
	})

	t.Run("deactivate, replay, activate, remove", func(t *testing.T) {
		is := is.New(t)
		var w adminWebhook
		platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/webhooks/"+f.platUID+"/deactivate", f.admin, ""), http.StatusOK, &w)
		is.Equal(w.Status, "deactivated")                // any client's webhook
		is.Equal(w.Reason, "deactivated by an operator") // with a reason its owner sees
		body := `{"deliveryId":` + strconv.FormatInt(f.platDeliveryID, 10) + `}`
		p := platformProblem(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, body), http.StatusConflict)
		is.True(strings.Contains(p.Detail, "deactivated"))          // says why
		is.True(strings.Contains(p.Detail, "activate the webhook")) // and what to do
		var res struct {
			Replayed    int `json:"replayed"`
			Deactivated int `json:"deactivated"`
		}
		platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, `{"since":"2h"}`), http.StatusAccepted, &res)
		is.Equal(res.Replayed, 2)    // the others, by the command line's time forms
		is.Equal(res.Deactivated, 1) // and it says which it left
		platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/webhooks/"+f.platUID+"/activate", f.admin, ""), http.StatusOK, &w)
		is.Equal(w.Status, "active")
		platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, body), http.StatusAccepted, &res)
		is.Equal(res.Replayed, 1) // one delivery by id

		res2 := platformCall(t, f.harness, http.MethodDelete, "/api/admin/v1/webhooks/"+f.orcidUID, f.admin, "")
		is.Equal(res2.status, http.StatusNoContent) // removed, whoever owned it
		is.Equal(len(f.list(t, seedOrcid, f.ownerTok).Webhooks), 0)
		var kept deliveries
		f.get(t, "/api/admin/v1/deliveries?webhook="+f.orcidUID, &kept)
		is.Equal(len(kept.Deliveries), 1)                      // its history stays
		is.True(!kept.Deliveries[0].WebhookRemovedAt.IsZero()) // marked
		p = platformProblem(t, platformCall(t, f.harness, http.MethodGet, "/api/admin/v1/webhooks/"+f.orcidUID, f.admin, ""), http.StatusNotFound)
		is.True(strings.Contains(p.Detail, "was removed")) // and says when it went
	})

	t.Run("an id that names nothing is quoted", func(t *testing.T) {
		is := is.New(t)
		p := platformProblem(t, platformCall(t, f.harness, http.MethodGet, "/api/admin/v1/webhooks/%E2%80%AE", f.admin, ""), http.StatusNotFound)
		is.Equal(p.Detail, `webhook "\u202e" not found`) // a direction control is not written as it came
	})
}

// TestAdminClientByName: the admin API names a client by its id or its name in
// every filter, as the command line does, and refuses an organisation id that is
// not a positive number in a replay's body as in a query.
func TestAdminClientByName(t *testing.T) {
	is := is.New(t)
	f := newAdminFixture(t)
	type deliveries struct {
		Deliveries []platformDelivery `json:"deliveries"`
	}
	var byID, byName deliveries
	f.get(t, "/api/admin/v1/deliveries?client="+f.other.ID, &byID)
	f.get(t, "/api/admin/v1/deliveries?client=other", &byName)
	is.Equal(len(byName.Deliveries), 1)                      // the client named "other"
	is.Equal(byName.Deliveries[0].ID, byID.Deliveries[0].ID) // is the client of that id
	var webhooks struct {
		Webhooks []adminWebhook `json:"webhooks"`
	}
	f.get(t, "/api/admin/v1/webhooks?client=other", &webhooks)
	is.Equal(len(webhooks.Webhooks), 1)                 // the webhooks list takes the name too
	is.Equal(webhooks.Webhooks[0].ClientID, f.other.ID) // of that client

	var res struct {
		Replayed int `json:"replayed"`
	}
	platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, `{"since":"2h","client":"other"}`), http.StatusAccepted, &res)
	is.Equal(res.Replayed, 1) // a replay's client by name: its one failed delivery
	for _, org := range []string{"0", "-1"} {
		p := platformProblem(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, `{"since":"2h","org":`+org+`}`), http.StatusBadRequest)
		is.Equal(p.Field, "org") // not an organisation id, as ?org= says
	}
	p := platformProblem(t, platformCall(t, f.harness, http.MethodGet, "/api/admin/v1/deliveries?client=nobody", f.admin, ""), http.StatusBadRequest)
	is.Equal(p.Field, "client") // a name nobody has names nothing
}

// TestReplayEmptyFilterRefused: a replay's filter given empty ("orcid": "", as a
// script's unset variable writes it) is a 400 naming it that replays nothing, in
// the admin API and the platform API, where it would otherwise narrow nothing and
// replay every record's (every webhook's, every client's) deliveries.
func TestReplayEmptyFilterRefused(t *testing.T) {
	f := newAdminFixture(t)
	platTok := f.token(t, f.other, store.ScopeWebhook).AccessToken
	platReplay := "/api/notifications/v1/webhooks/" + f.platUID + "/replay"
	for _, c := range []struct{ path, token, body, field string }{
		{"/api/admin/v1/replay", f.admin, `{"since":"2h","orcid":""}`, "orcid"},
		{"/api/admin/v1/replay", f.admin, `{"since":"2h","state":""}`, "state"},
		{"/api/admin/v1/replay", f.admin, `{"since":"2h","webhook":""}`, "webhook"},
		{"/api/admin/v1/replay", f.admin, `{"since":"2h","client":""}`, "client"},
		{"/api/admin/v1/replay", f.admin, `{"deliveryId":` + strconv.FormatInt(f.platDeliveryID, 10) + `,"webhook":""}`, "webhook"},
		{platReplay, platTok, `{"since":"2h","orcid":""}`, "orcid"},
		{platReplay, platTok, `{"since":"2h","state":""}`, "state"},
	} {
		t.Run(c.path+" "+c.body, func(t *testing.T) {
			is := is.New(t)
			p := platformProblem(t, platformCall(t, f.harness, http.MethodPost, c.path, c.token, c.body), http.StatusBadRequest)
			is.Equal(p.Field, c.field)                                       // names the empty filter
			is.True(strings.HasPrefix(p.Detail, c.field+": is empty: give")) // and what to give
		})
	}
	// A state a replay does not take, a real one or not, is named with the two it
	// takes, not all five there are.
	for _, c := range []struct{ path, token, body string }{
		{"/api/admin/v1/replay", f.admin, `{"since":"2h","state":"   "}`},
		{"/api/admin/v1/replay", f.admin, `{"since":"2h","state":"delivered"}`},
		{platReplay, platTok, `{"since":"2h","state":"in-flight"}`},
	} {
		t.Run(c.path+" "+c.body, func(t *testing.T) {
			is := is.New(t)
			p := platformProblem(t, platformCall(t, f.harness, http.MethodPost, c.path, c.token, c.body), http.StatusBadRequest)
			is.Equal(p.Field, "state")
			is.True(strings.HasPrefix(p.Detail, "state: a replay takes failed or dead deliveries")) // the two it takes
		})
	}
	is := is.New(t)
	var res struct {
		Replayed int `json:"replayed"`
	}
	platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, `{"since":"2h"}`), http.StatusAccepted, &res)
	is.Equal(res.Replayed, 3) // the refused replays replayed nothing: all three still failed
}

// TestReplayFutureSinceRefused: a replay since a time to come (a year mistyped,
// tomorrow's date) is a 400 naming since, in the admin API and the platform API,
// as hookd deliveries replay -since refuses one: it was a 202 {"replayed": 0},
// which reads as if no delivery had failed.
func TestReplayFutureSinceRefused(t *testing.T) {
	f := newAdminFixture(t)
	platTok := f.token(t, f.other, store.ScopeWebhook).AccessToken
	platReplay := "/api/notifications/v1/webhooks/" + f.platUID + "/replay"
	tomorrow := f.clock.Now().AddDate(0, 0, 1)
	for _, c := range []struct{ path, token, since string }{
		{"/api/admin/v1/replay", f.admin, tomorrow.Format(time.DateOnly)},
		{"/api/admin/v1/replay", f.admin, tomorrow.Format(time.RFC3339)},
		{platReplay, platTok, tomorrow.Format(time.DateOnly)},
	} {
		t.Run(c.path+" "+c.since, func(t *testing.T) {
			is := is.New(t)
			p := platformProblem(t, platformCall(t, f.harness, http.MethodPost, c.path, c.token, `{"since":"`+c.since+`"}`), http.StatusBadRequest)
			is.Equal(p.Field, "since")                                                                                                        // names since
			is.True(strings.HasPrefix(p.Detail, "since: "+tomorrow.Truncate(24*time.Hour).Format("2006-01-02T")))                             // and the time
			is.True(strings.Contains(p.Detail, "is in the future, so no delivery's last event is at or after it and none would be replayed")) // why
			is.True(strings.HasSuffix(p.Detail, "; nothing was replayed"))
		})
	}
	is := is.New(t)
	var res struct {
		Replayed int `json:"replayed"`
	}
	platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/replay", f.admin, `{"since":"2h"}`), http.StatusAccepted, &res)
	is.Equal(res.Replayed, 3) // the refused replays replayed nothing: all three still failed
}

// TestUnknownFilterValues is the rule on every list of the APIs: a query parameter
// the list does not take, or a value that names nothing, is a 400 naming it, never
// a 200 with everything.
func TestUnknownFilterValues(t *testing.T) {
	f := newAdminFixture(t)
	platTok := f.token(t, f.other, store.ScopeWebhook).AccessToken
	type list struct {
		path, token string
		bad         []string // queries that are refused, each naming the first parameter
	}
	admin := func(path string, bad ...string) list { return list{path, f.admin, bad} }
	plat := func(path string, bad ...string) list { return list{path, platTok, bad} }
	for _, l := range []list{
		admin("/api/admin/v1/deliveries", "garbage=1", "state=garbage", "orcid=0000-0002-7253-3646", "webhook=nope", "client=nope",
			"org=999", "org=x", "since=yesterday", "until=soon", "limit=0", "cursor=x", "state=dead&state=failed"),
		admin("/api/admin/v1/webhooks", "garbage=1", "format=garbage", "status=garbage", "client=nope", "org=999", "orcid=x", "limit=x", "cursor=nope"),
		admin("/api/hub/v1/organisations", "garbage=1"),
		admin("/api/hub/v1/organisations/"+strconv.FormatInt(f.org.ID, 10)+"/members", "garbage=1", "limit=0", "limit=x", "cursor=nope"),
		plat("/api/notifications/v1/webhooks", "garbage=1", "limit=0", "cursor=nope"),
		plat("/api/notifications/v1/webhooks/"+f.platUID+"/deliveries", "garbage=1", "state=garbage", "orcid=x", "since=yesterday", "webhook="+f.platUID),
	} {
		for _, q := range l.bad {
			t.Run(l.path+"?"+q, func(t *testing.T) {
				is := is.New(t)
				p := platformProblem(t, platformCall(t, f.harness, http.MethodGet, l.path+"?"+q, l.token, ""), http.StatusBadRequest)
				name, _, _ := strings.Cut(q, "=")
				is.Equal(p.Field, name)                      // names the parameter
				is.True(!strings.Contains(p.Detail, "2006")) // in words, not a Go layout
			})
		}
	}
}

// TestEmptyFilterValuesAreRefused: a list's filter given empty or blank (?client=,
// a script's unset variable in ?client=$CLIENT) is a 400 naming it, saying what
// to give or to leave out, as the command line's filters and a replay's body
// refuse one: it narrowed nothing, so every client's, record's or webhook's rows
// were listed as the one's. limit and cursor, which page and narrow nothing,
// given empty are left out: the same first page.
func TestEmptyFilterValuesAreRefused(t *testing.T) {
	f := newAdminFixture(t)
	platTok := f.token(t, f.other, store.ScopeWebhook).AccessToken
	history := orcidDeliveriesPath + "?" + url.Values{"orcid": {seedOrcid}, "callback": {seedCallback}}.Encode() + "&"
	for _, l := range []struct {
		path, token string
		filters     []string
	}{
		{"/api/admin/v1/deliveries?", f.admin, []string{"state", "orcid", "webhook", "client", "org", "since", "until"}},
		{"/api/admin/v1/webhooks?", f.admin, []string{"client", "org", "orcid", "format", "status"}},
		{"/api/notifications/v1/webhooks/" + f.platUID + "/deliveries?", platTok, []string{"state", "orcid", "since", "until"}},
		{history, f.ownerTok, []string{"state", "since", "until"}},
	} {
		for _, name := range l.filters {
			for _, q := range []string{name + "=", name + "=%20", name, name + "=&limit=5"} {
				t.Run(l.path+q, func(t *testing.T) {
					is := is.New(t)
					p := platformProblem(t, platformCall(t, f.harness, http.MethodGet, l.path+q, l.token, ""), http.StatusBadRequest)
					is.Equal(p.Field, name)                                        // names the filter
					is.True(strings.HasPrefix(p.Detail, name+": is empty: give ")) // says what is wrong
					is.True(strings.Contains(p.Detail, "or leave "+name+" out"))   // and how to list every row
				})
			}
		}
		t.Run(l.path+"limit=&cursor=", func(t *testing.T) {
			is := is.New(t)
			all := platformCall(t, f.harness, http.MethodGet, strings.TrimRight(l.path, "?&"), l.token, "")
			is.Equal(all.status, http.StatusOK) // listed
			empty := platformCall(t, f.harness, http.MethodGet, l.path+"limit=&cursor=", l.token, "")
			is.Equal(empty.status, http.StatusOK)          // listed, the document taking the request
			is.Equal(string(empty.body), string(all.body)) // the same page
		})
	}
	// The record and the callback of a registration's history are required: given
	// blank, they are told as missing.
	for _, q := range []url.Values{{"orcid": {" "}, "callback": {seedCallback}}, {"orcid": {seedOrcid}, "callback": {" "}}} {
		is := is.New(t)
		p := platformProblem(t, orcidDeliveries(t, f.harness, f.ownerTok, q), http.StatusBadRequest)
		is.True(strings.HasPrefix(p.Detail, p.Field+": required: "))
	}
	// The platform's list of webhooks takes no filter: given empty, its limit and
	// cursor are left out.
	all := platformCall(t, f.harness, http.MethodGet, "/api/notifications/v1/webhooks", platTok, "")
	empty := platformCall(t, f.harness, http.MethodGet, "/api/notifications/v1/webhooks?limit=&cursor=", platTok, "")
	is.New(t).Equal(string(empty.body), string(all.body))
}

// TestPlatformReplayForms: the platform API replays one delivery by id, or by the
// command line's time forms, and shows one delivery.
func TestPlatformReplayForms(t *testing.T) {
	is := is.New(t)
	f := newAdminFixture(t)
	tok := f.token(t, f.other, store.ScopeWebhook).AccessToken
	base := "/api/notifications/v1/webhooks/" + f.platUID
	id := strconv.FormatInt(f.platDeliveryID, 10)

	var d platformDelivery
	platformOK(t, platformCall(t, f.harness, http.MethodGet, base+"/deliveries/"+id, tok, ""), http.StatusOK, &d)
	is.Equal(d.State, "failed")                                                                                                                                // one delivery
	is.Equal(len(d.AttemptsLog), 1)                                                                                                                            // with its attempt
	platformProblem(t, platformCall(t, f.harness, http.MethodGet, base+"/deliveries/"+id, f.ownerTok, ""), http.StatusNotFound)                                // not another client's
	platformProblem(t, platformCall(t, f.harness, http.MethodGet, "/api/notifications/v1/webhooks/"+f.orcidUID+"/deliveries/1", tok, ""), http.StatusNotFound) // nor through another's webhook

	var res struct {
		Replayed int `json:"replayed"`
	}
	failAgain := func() { // a replayed row waits, fresh, for its attempt: fail it again
		t.Helper()
		ctx := context.Background()
		claimed, err := f.st.Exchange(ctx, nil, 10, time.Minute)
		is.NoErr(err)
		var outs []store.Outcome
		for _, c := range claimed {
			outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeRetry,
				Attempt: c.Attempt, StartedAt: f.clock.Now(), Status: 500, Error: "HTTP 500", RetryAt: f.clock.Now().Add(time.Hour)})
		}
		_, err = f.st.Exchange(ctx, outs, 0, 0)
		is.NoErr(err)
	}
	for _, since := range []string{"2h", "2024-03-01", "2024-03-01T11:00:00Z", "1d"} {
		platformOK(t, platformCall(t, f.harness, http.MethodPost, base+"/replay", tok, `{"since":"`+since+`"}`), http.StatusAccepted, &res)
		is.Equal(res.Replayed, 1) // each form of since
		failAgain()
	}
	platformOK(t, platformCall(t, f.harness, http.MethodPost, base+"/replay", tok, `{"deliveryId":`+id+`}`), http.StatusAccepted, &res)
	is.Equal(res.Replayed, 1) // one delivery by id
	platformProblem(t, platformCall(t, f.harness, http.MethodPost, base+"/replay", tok, `{"deliveryId":999}`), http.StatusNotFound)
	p := platformProblem(t, platformCall(t, f.harness, http.MethodPost, base+"/replay", tok, `{"since":"2h","webhook":"x"}`), http.StatusBadRequest)
	is.Equal(p.Field, "webhook") // the path names the webhook
}

// TestORCIDPutBody: ORCID's PUT carries no body; a few stray bytes are ignored, a
// body beyond the limit is refused before anything is registered.
func TestORCIDPutBody(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	tok := h.webhookToken(t, "bodies")
	path := webhookPath(seedOrcid, seedSegment)
	send := func(body string) response {
		req, err := http.NewRequest(http.MethodPut, h.srv.URL, strings.NewReader(body))
		is.NoErr(err)
		req.URL.Opaque = path
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		return h.send(t, req)
	}
	orcidError(t, send(strings.Repeat("x", 2048)), http.StatusRequestEntityTooLarge, 9001) // too large
	is.Equal(len(h.allSubscriptions(t)), 0)                                                // nothing registered
	is.Equal(send("{}").status, http.StatusCreated)                                        // a stray "{}" is ignored
}

// TestListCursorInCapitals: a webhook's id as a list's cursor (the cursor of
// earlier versions) is taken in capitals, as GET …/webhooks/{id} takes the id,
// on the platform API and the admin API alike.
func TestListCursorInCapitals(t *testing.T) {
	f := newAdminFixture(t)
	t.Run("platform", func(t *testing.T) {
		is := is.New(t)
		tok := f.webhookToken(t, "pager")
		var ids []string
		for _, p := range []string{"a", "b", "c"} {
			ids = append(ids, platformCreate(t, f.harness, tok, `{"targetURL":"https://example.com/`+p+`"}`).ID)
		}
		upper := strings.ToUpper(ids[0])
		is.Equal(platformGet(t, f.harness, tok, upper).ID, ids[0]) // the id in capitals is the webhook
		p := platformList(t, f.harness, tok, "cursor="+upper)
		is.Equal(len(p.Webhooks), 2)       // the page after it
		is.Equal(p.Webhooks[0].ID, ids[1]) // as in lower case
		res := platformProblem(t, platformCall(t, f.harness, http.MethodGet, platformPath+"?cursor="+strings.ToUpper(uuid.NewString()), tok, ""), http.StatusBadRequest)
		is.Equal(res.Field, "cursor") // an id of no webhook is still refused
	})
	t.Run("admin", func(t *testing.T) {
		is := is.New(t)
		type webhooks struct {
			Webhooks   []adminWebhook `json:"webhooks"`
			NextCursor string         `json:"nextCursor"`
		}
		var all, after webhooks
		f.get(t, "/api/admin/v1/webhooks", &all)
		is.True(len(all.Webhooks) > 1)
		f.get(t, "/api/admin/v1/webhooks?cursor="+strings.ToUpper(all.Webhooks[0].ID), &after)
		is.Equal(after.Webhooks[0].ID, all.Webhooks[1].ID) // the page after it
	})
}

// TestAdminActivateAgainChangesNothing: the admin API's deactivate or activate of
// a webhook that is so already (a request sent again) leaves it as it was, with
// the reason it was deactivated for, says "unchanged": true and writes no audit
// entry, as the console's buttons do; one that changes it says nothing of the
// kind and writes one.
func TestAdminActivateAgainChangesNothing(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	entries := func(t *testing.T) int {
		t.Helper()
		es, err := f.st.AuditLog(ctx, store.AuditQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	call := func(t *testing.T, action, uid string) adminWebhook {
		t.Helper()
		var w adminWebhook
		platformOK(t, platformCall(t, f.harness, http.MethodPost, "/api/admin/v1/webhooks/"+uid+"/"+action, f.admin, ""), http.StatusOK, &w)
		return w
	}
	is := is.New(t)
	n := entries(t)
	w := call(t, "activate", f.platUID)
	is.Equal(w.Status, "active")
	is.True(w.Unchanged)    // it was active already
	is.Equal(entries(t), n) // and nothing is audited
	w = call(t, "deactivate", f.platUID)
	is.Equal(w.Status, "deactivated")
	is.True(!w.Unchanged)     // a change
	is.Equal(entries(t), n+1) // audited once
	f.clock.Advance(time.Minute)
	again := call(t, "deactivate", f.platUID)
	is.Equal(again.Status, "deactivated")
	is.True(again.Unchanged)                    // sent again: nothing changed
	is.True(again.UpdatedAt.Equal(w.UpdatedAt)) // not even its time
	is.Equal(entries(t), n+1)                   // and no second entry
	w = call(t, "activate", f.platUID)
	is.True(!w.Unchanged)
	is.Equal(entries(t), n+2)
	w = call(t, "activate", f.platUID)
	is.True(w.Unchanged)
	is.Equal(entries(t), n+2)

	// Deactivated by its owner (no reason), an operator's deactivate keeps it so.
	_, err := f.st.SetWebhookActive(ctx, f.other.ID, f.platUID, false)
	is.NoErr(err)
	w = call(t, "deactivate", f.platUID)
	is.True(w.Unchanged)
	is.Equal(w.Reason, "") // the owner's own, as it was
	is.Equal(entries(t), n+2)
}
