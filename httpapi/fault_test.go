package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/httpapi"
	"hookd/store"
)

// faultEnv is hookd's API and a running dispatch loop on one store, a receiver,
// and a client with /webhook and /notify that registered a callback for seedOrcid.
type faultEnv struct {
	h        *harness
	disp     *dispatch.Dispatcher
	logs     *lockedBuffer
	client   store.Credentials
	token    string
	received atomic.Int64
	webhook  string // the receiver's webhook, registered first
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	is := is.New(t)
	e := &faultEnv{logs: &lockedBuffer{}}
	rv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.Close)
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	var disp *dispatch.Dispatcher
	e.h = newHarness(t, func(o *httpapi.Options) {
		o.AllowPrivateTargets = true
		o.Logger = log
		o.Nudge = func() { disp.Nudge() }
		o.Ready = func(ctx context.Context) error { return disp.Ready(ctx) }
	})
	disp = dispatch.New(dispatch.Options{Store: e.h.st, Logger: log, Tick: 20 * time.Millisecond, AllowPrivateTargets: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		disp.Close()
	})
	e.disp = disp

	e.client = e.h.client(t, "lab", store.ScopeWebhook, store.ScopeNotify)
	e.token = e.h.token(t, e.client, "/webhook /notify").AccessToken
	res := e.h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(rv.URL+"/cb")), e.token)
	is.Equal(res.status, http.StatusCreated) // register the receiver
	e.webhook = e.h.allSubscriptions(t)[0].UID
	return e
}

// event posts one event with a unique id.
func (e *faultEnv) event(t *testing.T, i int) response {
	t.Helper()
	return e.h.doJSON(t, http.MethodPost, "/api/notifications/v1/events", e.token,
		fmt.Sprintf(`{"orcid":%q,"id":"event-%06d-%s"}`, seedOrcid, i, strings.Repeat("x", 120)))
}

// readyz answers GET /readyz.
func (e *faultEnv) readyz(t *testing.T) response {
	t.Helper()
	return e.h.do(t, http.MethodGet, "/readyz", "")
}

// waitUntil polls cond until it holds, failing the test after 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventsStored is how many events the outbox holds for the receiver's webhook:
// each stored event is counted once in one of its deliveries. (A full disk may
// still take a registration, which needs fewer pages than an event: a webhook
// registered later for the same record has deliveries of its own.)
func (e *faultEnv) eventsStored(t *testing.T) int {
	t.Helper()
	is := is.New(t)
	ds, err := e.h.st.Deliveries(context.Background(), store.DeliveryFilter{Webhook: e.webhook, Limit: 100000})
	is.NoErr(err) // list deliveries
	n := 0
	for _, d := range ds {
		n += d.EventCount
	}
	return n
}

// TestDiskFull: with the database full, intake answers 503 with Retry-After and a
// problem that says so, and acknowledges nothing it did not store; a
// registration, a token request and /readyz answer 503 in their own formats;
// once there is room again, hookd takes and delivers events without a restart.
func TestDiskFull(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newFaultEnv(t)
	is.Equal(e.event(t, 0).status, http.StatusAccepted) // an event
	waitUntil(t, "the first delivery", func() bool { return e.received.Load() >= 1 })
	is.Equal(e.readyz(t).status, http.StatusOK) // ready

	is.NoErr(e.h.st.LimitPages(ctx, true)) // the disk is full
	acked, i := 1, 1
	var full response
	for ; i < 5000; i++ {
		res := e.event(t, i)
		if res.status != http.StatusAccepted {
			full = res
			break
		}
		acked++
	}
	is.Equal(full.status, http.StatusServiceUnavailable)                  // refused once full
	is.Equal(full.header.Get("Retry-After"), "10")                        // with when to try again
	is.Equal(full.header.Get("Content-Type"), "application/problem+json") // a problem
	p := problemOf(t, full, http.StatusServiceUnavailable, "")
	is.True(strings.Contains(p.Detail, "the database or its disk is full")) // that says why
	is.True(strings.Contains(p.Detail, "nothing was stored"))               // and what it means
	is.Equal(e.eventsStored(t), acked)                                      // every acknowledged event is stored, no other

	t.Run("registrations", func(t *testing.T) {
		is := is.New(t)
		created := 0
		var res response
		for n := range 200 { // until one needs room the file does not have
			res = e.h.do(t, http.MethodPut, webhookPath(seedOrcid, httpapi.EscapeSegment(fmt.Sprintf("http://127.0.0.1:1/%d-%s", n, strings.Repeat("y", 1500)))), e.token)
			if res.status != http.StatusCreated {
				break
			}
			created++
		}
		is.Equal(res.header.Get("Retry-After"), "10")
		oe := orcidError(t, res, http.StatusServiceUnavailable, 9008)  // ORCID's body, with a 503
		is.True(strings.Contains(oe.DeveloperMessage, "disk is full")) // saying why
		is.Equal(len(e.h.allSubscriptions(t)), 1+created)              // and nothing registered that was not answered 201
	})

	t.Run("tokens", func(t *testing.T) {
		is := is.New(t)
		var res response
		for range 500 { // until one needs room the file does not have
			res = e.h.postForm(t, "/oauth/token", url.Values{"client_id": {e.client.ID}, "client_secret": {e.client.Secret},
				"grant_type": {"client_credentials"}, "scope": {"/webhook"}}, "", "")
			if res.status != http.StatusOK {
				break
			}
		}
		is.Equal(res.header.Get("Retry-After"), "10")
		oe := oauthError(t, res, http.StatusServiceUnavailable, "temporarily_unavailable") // OAuth's error, with a 503
		is.True(strings.Contains(oe.Description, "disk is full"))                          // saying why
	})

	t.Run("readyz", func(t *testing.T) {
		is := is.New(t)
		res := e.readyz(t)
		is.Equal(res.status, http.StatusServiceUnavailable)                             // not ready
		is.True(strings.Contains(string(res.body), "the database or its disk is full")) // saying why
	})

	is.NoErr(e.h.st.LimitPages(ctx, false)) // room again
	waitUntil(t, "an event to be taken again", func() bool {
		i++
		if e.event(t, i).status != http.StatusAccepted {
			return false
		}
		acked++
		return true
	})
	waitUntil(t, "readiness", func() bool { return e.readyz(t).status == http.StatusOK })
	waitUntil(t, "the events to be delivered", func() bool {
		ds, err := e.h.st.Deliveries(ctx, store.DeliveryFilter{State: "pending"})
		return err == nil && len(ds) == 0 && e.received.Load() >= 2
	})
	is.Equal(e.eventsStored(t), acked) // every acknowledged event is stored
}

// TestReadOnlyDatabase: with a database that takes no writes, intake answers 503
// saying so, the dispatch loop's failing turns and the refused requests are
// logged once, not per turn or request, /readyz names the cause, and everything
// works again by itself when the database takes writes again.
func TestReadOnlyDatabase(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newFaultEnv(t)
	is.NoErr(e.h.st.QueryOnly(ctx, true)) // read-only

	waitUntil(t, "the dispatch loop to report its failing turns", func() bool {
		err := e.disp.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "read-only")
	})
	for i := range 20 {
		res := e.event(t, i)
		is.Equal(res.status, http.StatusServiceUnavailable) // refused
		is.Equal(res.header.Get("Retry-After"), "10")
		p := problemOf(t, res, http.StatusServiceUnavailable, "")
		is.True(strings.Contains(p.Detail, "the database is read-only")) // saying why
	}
	res := e.readyz(t)
	is.Equal(res.status, http.StatusServiceUnavailable)                      // not ready
	is.True(strings.Contains(string(res.body), "the database is read-only")) // naming the cause
	is.Equal(e.eventsStored(t), 0)                                           // nothing stored

	logs := e.logs.String()
	is.Equal(strings.Count(logs, "a turn failed"), 1)                       // the loop's failure, once
	is.True(!strings.Contains(logs, "turns still fail"))                    // not again within the minute
	is.Equal(strings.Count(logs, "request refused: store fault"), 1)        // twenty refused requests, one line
	is.True(strings.Contains(logs, "attempt to write a readonly database")) // with SQLite's own words

	is.NoErr(e.h.st.QueryOnly(ctx, false)) // writable again
	waitUntil(t, "an event to be taken", func() bool { return e.event(t, 100).status == http.StatusAccepted })
	waitUntil(t, "the event to be delivered", func() bool { return e.received.Load() == 1 })
	waitUntil(t, "readiness", func() bool { return e.readyz(t).status == http.StatusOK })
	is.True(strings.Contains(e.logs.String(), "dispatch loop recovered")) // said once it was over
}

// TestTokenCheckFault: when the token cannot be checked (here the store is
// closed, as hookd stops), the answer is in the route's own format: a problem on
// the JSON API, OAuth's error on the ORCID-style routes, whose token errors are
// OAuth's; a 503 to make again, with Retry-After, saying that hookd is stopping.
func TestTokenCheckFault(t *testing.T) {
	is := is.New(t)
	h := newHarness(t)
	is.NoErr(h.st.Close())
	res := h.doJSON(t, http.MethodPost, "/api/notifications/v1/events", "not-a-known-token", `{"orcid":"`+seedOrcid+`"}`)
	is.Equal(res.status, http.StatusServiceUnavailable)                  // a fault, not the caller's error, to make again
	is.Equal(res.header.Get("Content-Type"), "application/problem+json") // in the API's format
	is.True(res.header.Get("Retry-After") != "")
	is.True(strings.Contains(string(res.body), "hookd is stopping")) // why
	problemOf(t, res, res.status, "")

	res = h.do(t, http.MethodGet, webhookPath(seedOrcid, httpapi.EscapeSegment("https://a.example/cb")), "not-a-known-token")
	is.Equal(res.status, http.StatusServiceUnavailable)
	oauthError(t, res, res.status, "temporarily_unavailable") // OAuth's error, as ORCID's token errors are
}

// TestAnotherStoreFaultIsLogged: the once-a-minute limit of the store faults'
// lines is per fault: a database that takes no writes, logged, does not hide
// from the log that hookd is stopping a moment later, a fault of another kind.
// The same fault again within the minute is not logged again.
func TestAnotherStoreFaultIsLogged(t *testing.T) {
	is := is.New(t)
	logs := &lockedBuffer{}
	h := newHarness(t, func(o *httpapi.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	c := h.client(t, "lab", store.ScopeWebhook, store.ScopeNotify)
	token := h.token(t, c, "/webhook /notify").AccessToken
	is.NoErr(h.st.QueryOnly(context.Background(), true)) // a database that takes no writes
	for i := range 2 {
		res := h.doJSON(t, http.MethodPost, "/api/notifications/v1/events", token, fmt.Sprintf(`{"orcid":%q,"id":"e-%d"}`, seedOrcid, i))
		is.Equal(res.status, http.StatusServiceUnavailable)
		is.True(strings.Contains(string(res.body), "the database is read-only")) // why
	}
	is.NoErr(h.st.Close())
	res := h.doJSON(t, http.MethodPost, "/api/notifications/v1/events", token, `{"orcid":"`+seedOrcid+`"}`)
	is.Equal(res.status, http.StatusServiceUnavailable)
	is.True(strings.Contains(string(res.body), "hookd is stopping")) // another fault
	out := logs.String()
	is.Equal(strings.Count(out, `msg="request refused: store fault"`), 2) // each fault once
	is.Equal(strings.Count(out, "the database is read-only"), 1)          // the first
	is.Equal(strings.Count(out, "hookd is stopping"), 1)                  // and the other
}

// TestStoppingFaultLogSaysSo: a request that meets the store closed as hookd
// stops, on a read (here its token's), is logged in the words its answer gives,
// "hookd is stopping: nothing of this call was stored", database/sql's own words
// after them, not as "sql: database is closed" alone, which an operator reads as
// a fault of its own.
func TestStoppingFaultLogSaysSo(t *testing.T) {
	is := is.New(t)
	logs := &lockedBuffer{}
	h := newHarness(t, func(o *httpapi.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	c := h.client(t, "lab", store.ScopeWebhook, store.ScopeNotify)
	token := h.token(t, c, "/webhook /notify").AccessToken
	is.NoErr(h.st.Close())
	res := h.do(t, http.MethodGet, "/api/notifications/v1/webhooks", token)
	is.Equal(res.status, http.StatusServiceUnavailable)
	is.True(strings.Contains(string(res.body), "hookd is stopping: nothing of this call was stored")) // the answer
	out := logs.String()
	is.Equal(strings.Count(out, `msg="request refused: store fault"`), 1)
	is.True(strings.Contains(out, `err="hookd is stopping: nothing of this call was stored; make it again once hookd runs (`)) // the log says the same
	is.True(strings.Contains(out, "sql: database is closed)"))                                                                 // the cause after it
}
