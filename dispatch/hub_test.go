package dispatch_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/smtptest"
	"hookd/store"
)

// hubPayload is the body the Hub's organisation webhook receives.
type hubPayload struct {
	Orcid     string `json:"orcid"`
	URL       string `json:"url"`
	Type      string `json:"type"`
	UpdatedAt string `json:"updated-at"`
	CreatedAt string `json:"created-at"`
	Email     string `json:"email"`
	EPPN      string `json:"eppn"`
}

func TestHubWebhookAndEmail(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	rv := newReceiver(t, nil)
	mail := smtptest.NewServer(t, "hookd", "mail-pass")

	org, err := e.st.CreateOrganisation(ctx, "University of Testing", "tech@uni.example")
	is.NoErr(err) // create organisation
	key := "hub-api-key"
	settings, _, err := e.st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: rv.URL + "/hooks/", AppendOrcid: true, APIKey: &key,
		EmailEnabled: true, NotificationEmail: "orcid@uni.example"})
	is.NoErr(err) // webhook and e-mail on
	name, email, eppn := "Ann Example", "ann@uni.example", "ann@uni"
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{Name: &name, Email: &email, EPPN: &eppn}, 0)
	is.NoErr(err) // add member

	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@uni.example", Username: "hookd", Password: "mail-pass"}})
	is.Equal(e.tick(d), 2) // the webhook and the e-mail of CREATED

	reqs := rv.requests()
	is.Equal(len(reqs), 1)
	is.Equal(reqs[0].path, "/hooks/"+orcidA)                                                       // the iD appended
	is.Equal(reqs[0].header.Get("apikey"), key)                                                    // the apikey header
	is.True(verifies(t, settings.SigningSecret, reqs[0].header.Get("webhook-signature"), reqs[0])) // signed with the organisation's secret
	is.Equal(reqs[0].header.Get("Content-Type"), "application/json")
	var p hubPayload
	is.NoErr(json.Unmarshal(reqs[0].body, &p))
	is.Equal(p, hubPayload{Orcid: orcidA, URL: "https://orcid.org/" + orcidA, Type: "CREATED",
		UpdatedAt: "2024-03-01T12:00:00Z", CreatedAt: "2024-03-01T12:00:00Z", Email: email, EPPN: eppn})

	msgs := mail.Messages()
	is.Equal(len(msgs), 1)
	m := msgs[0]
	is.Equal(m.User, "hookd") // authenticated
	is.Equal(m.From, "hookd@uni.example")
	is.Equal(strings.Join(m.To, ","), "orcid@uni.example") // to the notification address alone, as the Hub sends it
	is.True(strings.Contains(m.Data, "Subject: ORCID Profile Update ("+orcidA+")"))
	is.True(!strings.Contains(m.Data, "Cc:")) // the technical contact is not copied
	is.True(strings.Contains(m.Data, "Ann Example"))
	is.True(regexp.MustCompile(`(?m)^Auto-Submitted: auto-generated\r$`).MatchString(m.Data)) // no out-of-office replies to it
	is.True(regexp.MustCompile(`(?m)^X-Mailer: hookd/1.2.3-test\r$`).MatchString(m.Data))     // hookd's name, not the library's
	is.True(!strings.Contains(m.Data, "go-mail"))
	var emailed store.Delivery
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(dl.StateName(), "delivered") // both delivered
		if dl.Format == store.FormatEmail {
			emailed = dl
		}
	}
	// A Message-ID of its own for the delivery, the same on every try of it.
	is.True(regexp.MustCompile(`(?m)^Message-ID: <` + store.MessageID(emailed.ID, 0) + `\.[0-9a-f-]{36}@uni\.example>\r?$`).MatchString(m.Data))

	// An update of the record: UPDATED, without created-at.
	e.clock.Advance(time.Hour)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 2)
	reqs = rv.requests()
	is.Equal(len(reqs), 2)
	p = hubPayload{}
	is.NoErr(json.Unmarshal(reqs[1].body, &p))
	is.Equal(p.Type, "UPDATED")
	is.Equal(p.UpdatedAt, "2024-03-01T13:00:00Z")
	is.Equal(p.CreatedAt, "") // only for CREATED
	is.Equal(len(mail.Messages()), 2)
}

func TestEmailToTechContactAndFailure(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	_, err = e.st.PutMember(ctx, org.ID, orcidB, store.MemberInfo{}, 0)
	is.NoErr(err)

	// No SMTP server configured: a failure with a reason, retried later.
	d := e.dispatcher(nil)
	is.Equal(e.tick(d), 1)
	dl := e.only()
	is.Equal(dl.StateName(), "failed")
	is.True(strings.Contains(dl.LastError, "smtp_addr")) // says what to configure

	d2 := e.dispatcher(nil)
	d2.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@a.example"}})
	_, err = e.st.Replay(ctx, store.DeliveryFilter{ID: dl.ID})
	is.NoErr(err)
	is.Equal(e.tick(d2), 1)
	msgs := mail.Messages()
	is.Equal(len(msgs), 1)
	is.Equal(strings.Join(msgs[0].To, ","), "tech@a.example") // the technical contact, no cc
	is.True(!strings.Contains(msgs[0].Data, "Cc:"))
	is.Equal(e.only().StateName(), "delivered")
}

// answerToken answers a stand-in upstream's token request with a /webhook token.
func answerToken(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"access_token":"tok","token_type":"bearer","expires_in":3600,"scope":"/webhook"}`)
}

func TestUpstreamRegistration(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var mu sync.Mutex
	var calls []string
	upstream := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		if r.URL.Path == "/oauth/token" {
			form, _ := url.ParseQuery(string(body))
			if form.Get("client_id") != "APP-1" || form.Get("client_secret") != "up-secret" || form.Get("scope") != "/webhook" {
				w.WriteHeader(http.StatusUnauthorized)
				return nil
			}
			answerToken(w)
			return nil
		}
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusNotFound)
		}
		return nil
	})
	_, err := e.st.ConfigureUpstream(ctx, upstream.URL+"/v3.0")
	is.NoErr(err)
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)

	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: upstream.URL + "/v3.0", TokenURL: upstream.URL + "/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	e.tick(d)
	key, err := e.st.RelayKey(ctx, orcidA)
	is.NoErr(err)
	mu.Lock()
	is.Equal(len(calls), 1)
	is.Equal(calls[0], "PUT /v3.0/"+orcidA+"/webhook/https%3A%2F%2Fhub.example.org%2Frelay%2F"+orcidA+"%2F"+key+" Bearer tok")
	mu.Unlock()
	ms, err := e.st.Members(ctx, org.ID)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "registered")

	// Removing the last covering organisation's member unregisters; a 404 there is done.
	is.NoErr(e.st.RemoveMember(ctx, org.ID, orcidA))
	e.tick(d)
	mu.Lock()
	is.Equal(len(calls), 2)
	is.True(strings.HasPrefix(calls[1], "DELETE /v3.0/"+orcidA+"/webhook/"))
	mu.Unlock()
	unregistrations := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{Orcid: orcidA}) {
		if dl.EventType == store.UpstreamUnregister {
			unregistrations++
			is.Equal(dl.StateName(), "delivered")
		}
	}
	is.Equal(unregistrations, 1) // the one order
}

// TestUpstreamUnregistrationGone: an unregistration the upstream answers 410 Gone
// is done, as one it answers 404: the webhook is not there, which is what the
// DELETE asked for. It used to be a failure, retried for as long as hookd ran (an
// upstream order is never given up). A 410 to a registration stays a failure.
func TestUpstreamUnregistrationGone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var mu sync.Mutex
	var calls []string
	putStatus := http.StatusCreated
	upstream := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method)
		if r.Method == http.MethodPut {
			w.WriteHeader(putStatus)
		} else {
			w.WriteHeader(http.StatusGone)
		}
		return nil
	})
	_, err := e.st.ConfigureUpstream(ctx, upstream.URL)
	is.NoErr(err)
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true})
	is.NoErr(err)
	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: upstream.URL, TokenURL: upstream.URL + "/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	e.tick(d) // registered
	is.NoErr(e.st.RemoveMember(ctx, org.ID, orcidA))
	e.tick(d) // unregistered: 410
	unregistrations := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{Orcid: orcidA}) {
		if dl.EventType == store.UpstreamUnregister {
			unregistrations++
			is.Equal(dl.StateName(), "delivered") // done, not failed
			is.Equal(dl.LastError, "")            // with no error
		}
	}
	is.Equal(unregistrations, 1) // the one order
	e.clock.Advance(3 * time.Hour)
	e.tick(d)
	mu.Lock()
	is.Equal(calls, []string{http.MethodPut, http.MethodDelete}) // and not tried again
	mu.Unlock()

	// A registration answered 410 is a failure, retried.
	mu.Lock()
	putStatus = http.StatusGone
	mu.Unlock()
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err)
	e.tick(d)
	failed := 0
	for _, dl := range e.deliveries(store.DeliveryFilter{Orcid: orcidA, State: "failed"}) {
		if dl.EventType == store.UpstreamRegister {
			failed++
			is.True(strings.Contains(dl.LastError, "HTTP 410 from the upstream")) // saying so
		}
	}
	is.Equal(failed, 1) // the registration failed, to be retried
}

// TestUpstreamUnregistrationOfAnotherClients: an unregistration the upstream
// refuses because the webhook is another client's (ORCID's 403 with error code
// 9014: one registered before upstream.client_id changed, which the new client's
// PUT answered 204 and left as it was) ends dead, saying so and what to do, and is
// not tried again: hookd's client can never remove it, and it was retried every
// retry_max_delay for as long as hookd ran. A 403 of another kind (a token
// without the /webhook scope, which the operator mends) is retried as before.
func TestUpstreamUnregistrationOfAnotherClients(t *testing.T) {
	for _, tc := range []struct {
		name, body, state string
	}{
		{"another client's", `{"response-code":403,"developer-message":"403 Forbidden: The client application is not authorized for this webhook.","user-message":"The client application is not authorized for this webhook.","error-code":9014,"more-info":"https://members.orcid.org/api/resources/troubleshooting"}`, "dead"},
		{"as XML", `<orcid-message><response-code>403</response-code><developer-message>Not the owner.</developer-message><error-code>9014</error-code></orcid-message>`, "dead"},
		{"as ORCID's namespaced XML", `<error:orcid-error xmlns:error="http://www.orcid.org/ns/error"><error:response-code>403</error:response-code><error:error-code>9014</error:error-code></error:orcid-error>`, "dead"},
		{"wrong scope", `{"response-code":403,"developer-message":"403 Forbidden: the token lacks the /webhook scope.","user-message":"Forbidden.","error-code":9038,"more-info":""}`, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			var mu sync.Mutex
			var calls []string
			upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
				if r.URL.Path == "/oauth/token" {
					answerToken(w)
					return nil
				}
				mu.Lock()
				calls = append(calls, r.Method)
				mu.Unlock()
				if r.Method == http.MethodPut {
					w.WriteHeader(http.StatusNoContent) // as ORCID answers a PUT of another client's webhook
					return nil
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, tc.body)
				return nil
			})
			d, org := upstreamAt(t, e, 1, upstream.URL, upstream.URL, func(o *dispatch.Options) {
				o.RetryBase, o.RetryMaxDelay = time.Minute, 10*time.Minute
			})
			e.tick(d) // registered, as far as the upstream says
			is.NoErr(e.st.RemoveMember(ctx, org, testOrcid(0)))
			e.tick(d) // its unregistration: 403
			var order store.Delivery
			for _, dl := range e.deliveries(store.DeliveryFilter{Orcid: testOrcid(0)}) {
				if dl.EventType == store.UpstreamUnregister {
					order = dl
				}
			}
			t.Log(order.LastError)
			is.Equal(order.StateName(), tc.state)
			if tc.state == "dead" {
				is.True(strings.HasPrefix(order.LastError, "refused for good, not retried: HTTP 403")) // saying why
				is.True(strings.Contains(order.LastError, "another ORCID client's"))
				is.True(strings.Contains(order.LastError, "upstream.client_id"))
			}
			for range 6 { // an hour
				e.clock.Advance(10 * time.Minute)
				e.tick(d)
			}
			mu.Lock()
			defer mu.Unlock()
			deletes := strings.Count(strings.Join(calls, ","), http.MethodDelete)
			if tc.state == "dead" {
				is.Equal(deletes, 1) // not tried again
			} else {
				is.True(deletes > 1) // retried
			}
		})
	}
}

// TestUpstreamOrderDoneAsItStandsNow: a registration order replayed after its
// record stopped being covered unregisters it (DELETE), where it used to register a
// record nothing covered any more, for good.
func TestUpstreamOrderDoneAsItStandsNow(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var mu sync.Mutex
	var calls []string
	upstream := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		mu.Lock()
		calls = append(calls, r.Method)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	_, err := e.st.ConfigureUpstream(ctx, upstream.URL+"/v3.0")
	is.NoErr(err)
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "https://a.example/h"})
	is.NoErr(err)
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err) // a registration order, and the organisation's CREATED
	claimed, err := e.st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	var order int64
	var outs []store.Outcome
	for _, c := range claimed {
		if c.EventType == store.UpstreamRegister {
			order = c.ID
		}
		outs = append(outs, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeDead,
			Attempt: c.Attempt, StartedAt: e.st.Now(), Status: 500, Error: "HTTP 500"})
	}
	is.True(order != 0)
	_, err = e.st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err) // the registration gave up
	is.NoErr(e.st.RemoveMember(ctx, org.ID, orcidA))

	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: upstream.URL + "/v3.0", TokenURL: upstream.URL + "/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	e.tick(d) // the unregistration the removal queued
	_, err = e.st.Replay(ctx, store.DeliveryFilter{ID: order})
	is.NoErr(err) // the old registration order, replayed
	e.tick(d)
	mu.Lock()
	is.Equal(strings.Join(calls, ","), "DELETE,DELETE") // never a PUT: nothing covers the record
	mu.Unlock()
	ms, err := e.st.Members(ctx, org.ID)
	is.NoErr(err)
	is.Equal(len(ms), 0)
}

// TestRemovedMemberNotCalledFromTheQueue: a delivery to an organisation claimed
// but still waiting for its host when its record stops being a member is handed
// back before its call and ends dead, unsent, as one not yet claimed is dropped.
func TestRemovedMemberNotCalledFromTheQueue(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	release := make(chan struct{})
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if n == 1 {
			block(r, release, 5*time.Second)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: rv.URL + "/hooks"})
	is.NoErr(err)
	for _, id := range []string{orcidA, orcidB} {
		_, err = e.st.PutMember(ctx, org.ID, id, store.MemberInfo{}, 0)
		is.NoErr(err) // each member's CREATED, due now
	}
	d := e.dispatcher(func(o *dispatch.Options) { o.Workers, o.PerHost = 2, 1 })
	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 2) // both claimed; one host, one call at a time
	waitFor(t, 2*time.Second, "the first call to arrive", func() bool { return rv.count() == 1 })
	first := rv.requests()[0].path
	waiting := orcidB
	if strings.HasSuffix(first, orcidB) {
		waiting = orcidA
	}
	is.NoErr(e.st.RemoveMember(ctx, org.ID, waiting)) // the queued one's record leaves
	close(release)
	is.NoErr(d.Wait(ctx))
	e.tick(d)               // what was handed back is recorded
	is.Equal(rv.count(), 1) // the queued delivery was never called
	ds := e.deliveries(store.DeliveryFilter{Orcid: waiting})
	is.Equal(len(ds), 1) // kept, as the outcome of its claim
	is.Equal(ds[0].StateName(), "dead")
	is.Equal(ds[0].LastError, "not sent: the record is no longer a member of the organisation")
}

// TestDeactivationUnregistersInBatches: when an organisation's webhook answers 410,
// the turn that turns it off unregisters upstream a batch of the records it alone
// covered (500), not all of them, and the retention pass queues the rest; in the
// end each of them has been unregistered.
func TestDeactivationUnregistersInBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var mu sync.Mutex
	deleted, registered := map[string]bool{}, map[string]bool{}
	upstream := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		record := strings.Split(strings.TrimPrefix(r.URL.Path, "/v3.0/"), "/")[0]
		if r.Method == http.MethodDelete {
			deleted[record] = true
		} else {
			registered[record] = true
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	var gone atomic.Bool
	hooks := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	})
	count := func(m map[string]bool) int {
		mu.Lock()
		defer mu.Unlock()
		return len(m)
	}
	_, err := e.st.ConfigureUpstream(ctx, upstream.URL+"/v3.0")
	is.NoErr(err)
	org, err := e.st.CreateOrganisation(ctx, "A", "tech@a.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: hooks.URL + "/hooks"})
	is.NoErr(err)
	const members = 600 // more than a turn unregisters
	rows := make([]store.MemberRow, members)
	for i := range rows {
		rows[i].Orcid = testOrcid(i)
	}
	_, err = e.st.ImportMembers(ctx, org.ID, rows, 0)
	is.NoErr(err)
	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Upstream: dispatch.UpstreamOptions{APIURL: upstream.URL + "/v3.0", TokenURL: upstream.URL + "/oauth/token",
		ClientID: "APP-1", ClientSecret: "up-secret", PublicURL: "https://hub.example.org"}})
	// Ticks a second apart until nothing is left to call (bounded): the per-host
	// limit hands the excess back to later ticks.
	drain := func() {
		for quiet, i := 0, 0; quiet < 3 && i < 200; i++ {
			if e.tick(d) == 0 {
				quiet++
			} else {
				quiet = 0
			}
			e.clock.Advance(time.Second)
		}
	}
	drain() // every registration, and every CREATED
	is.Equal(count(registered), members)
	is.Equal(hooks.count(), members)
	is.Equal(count(deleted), 0)

	gone.Store(true)
	e.intake(0, store.Event{Orcid: testOrcid(0)}) // its call answers 410
	drain()
	h, err := e.st.HubSettings(ctx, org.ID)
	is.NoErr(err)
	is.True(!h.Enabled)           // turned off by the 410
	is.Equal(count(deleted), 500) // a batch in the turn that turned it off
	_, err = d.Purge(ctx)         // the retention pass queues the rest
	is.NoErr(err)
	drain()
	is.Equal(count(deleted), members) // each record
}

// TestUpstreamRegistrationNeverGivesUp: an upstream that fails for longer than
// give_up_after leaves the record's registration retrying every retry_max_delay,
// not dead (a dead order would stay so until someone replayed it); once the
// upstream is back, the record is registered.
func TestUpstreamRegistrationNeverGivesUp(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	var healthy atomic.Bool
	var puts atomic.Int64
	upstream := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if r.URL.Path == "/oauth/token" {
			answerToken(w)
			return nil
		}
		puts.Add(1)
		if healthy.Load() {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusBadGateway)
		}
		return nil
	})
	d, org := upstreamAt(t, e, 1, upstream.URL, upstream.URL, func(o *dispatch.Options) {
		o.RetryBase, o.RetryMaxDelay, o.GiveUpAfter = time.Minute, 10*time.Minute, 30*time.Minute
	})

	var row store.Delivery
	for range 20 { // two hours of failures, four times give_up_after
		is.Equal(e.tick(d), 1) // one attempt per due time
		row = e.only()
		is.Equal(row.StateName(), "failed")                     // retrying, never dead
		is.True(!strings.Contains(row.LastError, "gave up"))    // and not said to be
		is.True(row.DueAt.Sub(e.clock.Now()) <= 10*time.Minute) // at most retry_max_delay away
		e.clock.Set(row.DueAt)
	}
	is.True(e.clock.Now().Sub(e.start) > 2*time.Hour) // well past give_up_after
	ms, err := e.st.Members(ctx, org)
	is.NoErr(err)
	is.True(strings.HasPrefix(ms[0].Upstream, "failed")) // the member shows the failure meanwhile

	healthy.Store(true)
	is.Equal(e.tick(d), 1)
	is.Equal(e.only().StateName(), "delivered")
	ms, err = e.st.Members(ctx, org)
	is.NoErr(err)
	is.Equal(ms[0].Upstream, "registered") // registered once the upstream is back
	is.Equal(puts.Load(), int64(21))       // each attempt one PUT
}

// TestUpstreamStatusBelow100: an upstream answering a status below 100 is a
// malformed answer in the registration's attempt log and in the member's upstream
// state, as for any receiver, not an "HTTP 0".
func TestUpstreamStatusBelow100(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	tokens := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		answerToken(w)
		return nil
	})
	api := statusReceiver(t, "HTTP/1.1 000 OK")
	d, org := upstreamAt(t, e, 1, api, tokens.URL, nil)
	is.Equal(e.tick(d), 1)
	dl := e.only()
	is.Equal(dl.StateName(), "failed")
	as := e.attempts(dl.ID)
	is.Equal(len(as), 1)
	is.Equal(as[0].Error, `malformed HTTP response: status "000" is not from 100 to 599`)
	ms, err := e.st.Members(ctx, org)
	is.NoErr(err)
	is.True(strings.Contains(ms[0].Upstream, "malformed HTTP response")) // the member's state says so too
}

// TestEmailThroughIPv6Relay: a relay named by its IPv6 address ([email] smtp_addr
// "[::1]:25", as check-config takes it) is dialled there.
func TestEmailThroughIPv6Relay(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		unavailable(t, "no IPv6 loopback here: %v", err)
	}
	mail := &smtptest.Server{Addr: ln.Addr().String()} // a real SMTP server, on ::1
	srv := smtp.NewServer(mail)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	e := newEnv(t)
	e.emailOrg()
	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "hookd@uni.example"}})
	is.Equal(e.tick(d), 1)
	dl := e.only()
	if dl.StateName() != "delivered" {
		t.Fatalf("through %s: %s: %s", mail.Addr, dl.StateName(), dl.LastError)
	}
	is.Equal(len(mail.Messages()), 1) // received
}

// TestEmailOverTLS: with STARTTLS (hookd's default) and with TLS from the first
// byte (port 465), the e-mail and hookd's password go over TLS, to a relay whose
// certificate is checked; a certificate hookd does not trust fails the delivery
// before the password is sent.
func TestEmailOverTLS(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode smtptest.TLS
		opts dispatch.EmailOptions
	}{
		{"starttls", smtptest.StartTLS, dispatch.EmailOptions{StartTLS: true}},
		{"implicit", smtptest.ImplicitTLS, dispatch.EmailOptions{ImplicitTLS: true}},
		{"implicit, starttls also set", smtptest.ImplicitTLS, dispatch.EmailOptions{ImplicitTLS: true, StartTLS: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			mail := smtptest.NewTLSServer(t, "hookd", "mail-pass", tt.mode)
			o := tt.opts
			o.Addr, o.From, o.Username, o.Password = mail.Addr, "hookd@uni.example", "hookd", "mail-pass"

			// Not trusted: the system's roots do not know the relay's certificate.
			e := newEnv(t)
			e.emailOrg()
			d := e.dispatcher(nil)
			d.ConfigureHub(dispatch.HubOptions{Email: o})
			is.Equal(e.tick(d), 1)
			dl := e.only()
			is.Equal(dl.StateName(), "failed")
			is.True(strings.Contains(dl.LastError, "certificate")) // says why
			is.Equal(len(mail.Messages()), 0)

			dispatch.TrustMailRoots(&o, mail.Roots)
			e = newEnv(t)
			e.emailOrg()
			d = e.dispatcher(nil)
			d.ConfigureHub(dispatch.HubOptions{Email: o})
			is.Equal(e.tick(d), 1)
			if dl := e.only(); dl.StateName() != "delivered" {
				t.Fatalf("%s: %s", dl.StateName(), dl.LastError)
			}
			msgs := mail.Messages()
			is.Equal(len(msgs), 1)
			is.True(msgs[0].TLS)            // over TLS
			is.Equal(msgs[0].User, "hookd") // signed in (the relay takes AUTH only over TLS)
			is.Equal(msgs[0].To, []string{"orcid@uni.example"})
		})
	}
}

// TestEmailDomainInIDNAForm: an organisation's notification address, and
// email.from, whose domain is in another script go to the relay with the domain
// in its IDNA form, in the envelope and in the headers: a relay that does not
// offer SMTPUTF8 (as this one does not) takes no UTF-8 in an address, and may
// refuse it as a bad one.
func TestEmailDomainInIDNAForm(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t)
	mail := smtptest.NewServer(t, "", "")
	org, err := e.st.CreateOrganisation(ctx, "Universität", "tech@uni.example")
	is.NoErr(err)
	_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true, NotificationEmail: "orcid@universität.example"})
	is.NoErr(err) // a notification address with a domain in another script
	_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
	is.NoErr(err)
	d := e.dispatcher(nil)
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: mail.Addr, From: "ORCID Hub <hookd@hub.universität.example>"}})
	is.Equal(e.tick(d), 1)
	is.Equal(e.only().StateName(), "delivered")

	msgs := mail.Messages()
	is.Equal(len(msgs), 1)
	m := msgs[0]
	is.Equal(m.From, "hookd@hub.xn--universitt-y5a.example")                            // the envelope's sender
	is.Equal(strings.Join(m.To, ","), "orcid@xn--universitt-y5a.example")               // and recipient
	is.True(strings.Contains(m.Data, "\r\nTo: <orcid@xn--universitt-y5a.example>\r\n")) // the headers too
	is.True(strings.Contains(m.Data, "\r\nFrom: \"ORCID Hub\" <hookd@hub.xn--universitt-y5a.example>\r\n"))
	is.True(regexp.MustCompile(`(?m)^Message-ID:(\r\n)? <msg_1\.[0-9a-f-]{36}@hub\.xn--universitt-y5a\.example>\r$`).MatchString(m.Data))
}

// TestEmailRecipientNotSent: an address an older hookd took as a technical
// contact is not sent to when its local part is in another script (it would go
// to the relay in UTF-8, which a relay that does not offer SMTPUTF8, as this one
// does not, may refuse, bounce later or pass on mangled) or its domain is an
// address literal (the relay would connect to that address itself, an address of
// its network that hookd's guard never sees). The delivery is dead at once,
// saying why, as for an address the relay refused for good.
func TestEmailRecipientNotSent(t *testing.T) {
	for _, c := range []struct{ addr, why string }{
		{"jöe@uni.example", `refused for good, not retried: recipient: "jöe@uni.example" has a non-ASCII local part, which needs a relay with SMTPUTF8 (RFC 6531), and hookd sends e-mail to ASCII local parts only: give an address whose part before the @ is ASCII (a domain in another script is fine)`},
		{"root@[10.0.0.5]", `refused for good, not retried: recipient: "root@[10.0.0.5]" has an address literal for its domain`},
	} {
		t.Run(c.addr, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			e := newEnv(t)
			relay := smtptest.NewServer(t, "", "")
			org, err := e.st.CreateOrganisation(ctx, "Universität", "tech@uni.example")
			is.NoErr(err)
			_, _, err = e.st.SetHubSettings(ctx, org.ID, store.HubSettings{EmailEnabled: true}) // to the technical contact
			is.NoErr(err)
			_, err = e.st.PutMember(ctx, org.ID, orcidA, store.MemberInfo{}, 0)
			is.NoErr(err)
			db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "hookd.db")+"?_pragma=busy_timeout(5000)")
			is.NoErr(err)
			_, err = db.Exec("UPDATE organisations SET tech_contact_email = ?", c.addr) // as an older hookd took it
			is.NoErr(err)
			is.NoErr(db.Close())

			d := e.dispatcher(nil)
			d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay.Addr, From: "hookd@uni.example"}})
			is.Equal(e.tick(d), 1)
			dl := e.only()
			is.Equal(dl.StateName(), "dead")
			is.True(strings.HasPrefix(dl.LastError, c.why)) // why, in full for the first
			is.Equal(len(relay.Messages()), 0)              // nothing went to the relay
		})
	}
}
