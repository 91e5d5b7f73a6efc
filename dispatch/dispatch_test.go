package dispatch_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"hookd/dispatch"
	"hookd/secret"
	"hookd/store"
)

// End-to-end tests of the delivery engine: a real SQLite store, real receivers on
// 127.0.0.1, and a pinned clock moved by hand between Tick and Wait.

func TestCoalescing(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(nil)
	const window = 5 * time.Minute

	for range 50 {
		res := e.intake(window, store.Event{Orcid: orcidA})
		is.Equal(res.Accepted, 1)   // the event is taken
		is.Equal(res.Deliveries, 1) // and lands in the one pending delivery
		e.clock.Advance(time.Second)
	}
	row := e.only()
	is.Equal(row.EventCount, 50)                                  // all 50 events merged into one row
	is.Equal(row.StateName(), "pending")                          // waiting for its window
	is.True(row.DueAt.Equal(e.start.Add(window)))                 // due a window after the FIRST event
	is.True(row.LastEventAt.Equal(e.start.Add(49 * time.Second))) // the last event is remembered

	e.clock.Set(e.start.Add(window - time.Millisecond))
	is.Equal(e.tick(d), 0)  // nothing is due before the window ends
	is.Equal(rv.count(), 0) // and nothing was called

	e.clock.Set(e.start.Add(window))
	is.Equal(e.tick(d), 1) // the window ended: one call
	reqs := rv.requests()
	is.Equal(len(reqs), 1)                           // exactly one POST for 50 events
	is.Equal(reqs[0].method, http.MethodPost)        // a POST
	is.Equal(reqs[0].path, "/hook")                  // to the registered callback
	is.Equal(len(reqs[0].body), 0)                   // with an empty body (ORCID style)
	is.Equal(reqs[0].header.Get("Content-Type"), "") // and no content type

	row = e.only()
	is.Equal(row.StateName(), "delivered") // recorded as delivered
	is.Equal(row.EventCount, 50)           // carrying the 50 events
	is.Equal(row.Attempts, 1)              // in one attempt
	is.Equal(row.LastStatus, 204)          // the receiver's status
}

func TestOneInFlightPerPair(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	release := make(chan struct{})
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if n == 1 {
			block(r, release, 5*time.Second)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(nil)
	ctx := context.Background()

	e.intake(0, store.Event{Orcid: orcidA})
	n, err := d.Tick(ctx)
	is.NoErr(err)  // first tick
	is.Equal(n, 1) // the first delivery starts
	waitFor(t, 2*time.Second, "the first call to arrive", func() bool { return rv.count() == 1 })

	res := e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(res.Deliveries, 1) // the new event makes a row
	ds := e.deliveries(store.DeliveryFilter{})
	is.Equal(len(ds), 2)                     // a second row: the in-flight one cannot take new events
	is.Equal(ds[0].StateName(), "pending")   // the newer row waits
	is.Equal(ds[1].StateName(), "in-flight") // the first is still in flight

	for range 3 {
		n, err = d.Tick(ctx)
		is.NoErr(err)  // tick while the first is in flight
		is.Equal(n, 0) // the pending twin is not claimed while its pair is in flight
	}
	is.Equal(rv.count(), 1) // the receiver saw only the first call

	close(release)
	is.NoErr(d.Wait(ctx)) // the first call finishes and is recorded
	first := e.deliveries(store.DeliveryFilter{})[1]
	is.Equal(first.StateName(), "delivered") // first delivered

	is.Equal(e.tick(d), 1)  // now the second one goes
	is.Equal(rv.count(), 2) // the receiver got the second call
	for _, row := range e.deliveries(store.DeliveryFilter{}) {
		is.Equal(row.StateName(), "delivered") // both rows delivered
		is.Equal(row.EventCount, 1)            // each carrying its own event
	}
}

func TestFailureFoldsPendingTwin(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	release := make(chan struct{})
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if n == 1 {
			block(r, release, 5*time.Second)
			w.WriteHeader(http.StatusInternalServerError)
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
	ctx := context.Background()

	e.intake(0, store.Event{Orcid: orcidA})
	n, err := d.Tick(ctx)
	is.NoErr(err)  // tick
	is.Equal(n, 1) // the first delivery starts
	waitFor(t, 2*time.Second, "the first call to arrive", func() bool { return rv.count() == 1 })
	e.intake(0, store.Event{Orcid: orcidA}) // a twin, due at once
	e.intake(0, store.Event{Orcid: orcidA}) // merged into the twin
	close(release)
	is.NoErr(d.Wait(ctx)) // the first call fails

	// The failed row and its twin are one row again.
	row := e.only()
	is.Equal(row.StateName(), "failed") // with the failure's history
	is.Equal(row.Attempts, 1)           // one attempt so far
	is.Equal(row.EventCount, 3)         // carrying all three events
	is.True(row.DueAt.After(e.start))   // due after the backoff, not at the twin's earlier time

	is.Equal(e.tick(d), 0) // so the receiver is not called again at once
	e.clock.Set(row.DueAt)
	is.Equal(e.tick(d), 1)                      // but at the retry's time
	is.Equal(e.only().StateName(), "delivered") // and it is delivered
	reqs := rv.requests()
	first := reqs[0].header.Get("webhook-id")
	is.Equal(reqs[1].header.Get("webhook-id"), first+"_1") // the same delivery, a new message: it carries events the first did not
}

func TestRetriesUntilSuccess(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	long := strings.Repeat("x", 2000)
	rv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("database is down"))
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(long))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // first attempt
	row := e.only()
	is.Equal(row.StateName(), "failed")                // failed, waiting for a retry
	is.Equal(row.LastStatus, 500)                      // the status is kept
	is.True(row.DueAt.Equal(e.start.Add(time.Minute))) // backoff 1m (base, jitter 0.5 = none)

	e.clock.Set(e.start.Add(time.Minute - time.Second))
	is.Equal(e.tick(d), 0) // not before the backoff ends
	e.clock.Set(e.start.Add(time.Minute))
	is.Equal(e.tick(d), 1) // second attempt
	row = e.only()
	is.Equal(row.StateName(), "failed")                    // failed again
	is.True(row.DueAt.Equal(e.start.Add(3 * time.Minute))) // backoff doubled: 2m

	e.clock.Set(e.start.Add(3*time.Minute - time.Second))
	is.Equal(e.tick(d), 0) // not before the second backoff ends
	e.clock.Set(e.start.Add(3 * time.Minute))
	is.Equal(e.tick(d), 1) // third attempt

	row = e.only()
	is.Equal(row.StateName(), "delivered") // delivered at last
	is.Equal(row.Attempts, 3)              // after three attempts
	is.Equal(rv.count(), 3)                // the receiver saw three calls

	as := e.attempts(row.ID)
	is.Equal(len(as), 3) // every attempt is logged
	for i, want := range []int{500, 500, 204} {
		is.Equal(as[i].Attempt, i+1) // attempts numbered from 1
		is.Equal(as[i].Status, want) // statuses 500, 500, 204
	}
	is.Equal(as[0].Response, "database is down")             // the 500's body is recorded
	is.True(strings.Contains(as[0].Error, "500"))            // and the error names the status
	is.Equal(len(as[1].Response), 512)                       // a long body is cut to a snippet
	is.True(as[1].StartedAt.Equal(e.start.Add(time.Minute))) // started at the (pinned) retry time
	is.Equal(as[2].Error, "")                                // success has no error
}

func TestGiveUpAndReplay(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var healthy atomic.Bool
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		if healthy.Load() {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusInternalServerError)
		}
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.GiveUpAfter = 10 * time.Minute
	})
	e.intake(0, store.Event{Orcid: orcidA})

	var row store.Delivery
	for i := 0; i < 20; i++ {
		is.Equal(e.tick(d), 1) // one attempt per due time
		row = e.only()
		if row.State == store.StateDead {
			break
		}
		is.Equal(row.StateName(), "failed")                  // a retry is scheduled
		is.True(e.clock.Now().Sub(e.start) < 10*time.Minute) // while give_up_after has not passed
		e.clock.Set(row.DueAt)
	}
	is.Equal(row.State, store.StateDead)                  // dead after give_up_after
	is.Equal(row.StateName(), "dead")                     // shown as dead
	is.True(e.clock.Now().Sub(e.start) >= 10*time.Minute) // only once 10m passed since the first attempt
	is.Equal(row.Attempts, 5)                             // at 0, 1m, 3m, 7m, 15m
	is.True(strings.Contains(row.LastError, "gave up"))   // the error says why
	is.Equal(len(e.attempts(row.ID)), 5)                  // each attempt logged

	e.clock.Advance(time.Hour)
	is.Equal(e.tick(d), 0) // a dead delivery is never picked again by itself

	res, err := e.st.Replay(context.Background(), store.DeliveryFilter{ID: row.ID})
	is.NoErr(err)             // replay
	is.Equal(res.Replayed, 1) // one row replayed
	row = e.only()
	is.Equal(row.StateName(), "pending")         // pending again, with a fresh attempt budget
	is.Equal(row.Attempts, 5)                    // its attempts so far are kept
	is.Equal(row.AttemptBase, 5)                 // and the budget counts from them
	is.True(row.ReplayedAt.Equal(e.clock.Now())) // the replay is on record

	healthy.Store(true)
	is.Equal(e.tick(d), 1) // deliverable again
	row = e.only()
	is.Equal(row.StateName(), "delivered") // and delivered
	is.Equal(rv.count(), 6)                // five failures and the replay
	var numbers []int
	for _, a := range e.attempts(row.ID) {
		numbers = append(numbers, a.Attempt)
	}
	is.Equal(numbers, []int{1, 2, 3, 4, 5, 6}) // attempt numbers go on after the replay
}

func TestDisableAfter(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusInternalServerError)
		return nil
	})
	callback := rv.URL + "/hook"
	e.subscribe(orcidA, callback)
	d := e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.DisableAfter = 30 * time.Minute
	})
	e.intake(0, store.Event{Orcid: orcidA})

	var row store.Delivery
	for i := 0; i < 20; i++ {
		is.Equal(e.tick(d), 1) // one attempt per due time
		row = e.only()
		if row.State != store.StatePending {
			break
		}
		e.clock.Set(row.DueAt)
	}
	is.Equal(row.StateName(), "dead")                     // the last failure ended the delivery
	is.True(e.clock.Now().Sub(e.start) >= 30*time.Minute) // once disable_after had passed
	is.Equal(row.Attempts, 6)                             // at 0, 1m, 3m, 7m, 15m, 31m

	sub, err := e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
	is.NoErr(err)                                                 // get webhook
	is.True(!sub.Active)                                          // the subscription is deactivated
	is.True(strings.Contains(sub.Reason, "failed continuously"))  // with a reason
	is.True(strings.Contains(sub.Reason, "2024-03-01T12:00:00Z")) // naming when the failures began
	is.Equal(sub.Reason, "deliveries failed continuously since 2024-03-01T12:00:00Z (last: HTTP 500)")
	last := e.attempts(row.ID)
	is.Equal(last[len(last)-1].Error, sub.Reason) // the last attempt says so too, in words

	res := e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(res.Deliveries, 0) // new events no longer reach it
}

func TestRetryAfterHeader(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header func(now time.Time) string
		want   time.Duration
	}{
		{"503 seconds", http.StatusServiceUnavailable, func(time.Time) string { return "120" }, 120 * time.Second},
		{"429 seconds", http.StatusTooManyRequests, func(time.Time) string { return "120" }, 120 * time.Second},
		{"503 HTTP date", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(5 * time.Minute).Format(http.TimeFormat)
		}, 5 * time.Minute},
		{"500 ignores it", http.StatusInternalServerError, func(time.Time) string { return "120" }, time.Minute},
		{"503 unparsable", http.StatusServiceUnavailable, func(time.Time) string { return "soon" }, time.Minute},
		{"503 past a day, within give_up_after", http.StatusServiceUnavailable, func(time.Time) string { return "172800" }, 24 * time.Hour},
		{"429 at once", http.StatusTooManyRequests, func(time.Time) string { return "0" }, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			rv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
				if n == 1 {
					w.Header().Set("Retry-After", tt.header(e.clock.Now()))
					w.WriteHeader(tt.status)
					return nil
				}
				w.WriteHeader(http.StatusNoContent)
				return nil
			})
			e.subscribe(orcidA, rv.URL+"/hook")
			d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
			e.intake(0, store.Event{Orcid: orcidA})

			is.Equal(e.tick(d), 1) // first attempt
			row := e.only()
			is.Equal(row.LastStatus, tt.status)            // the status is kept
			is.True(row.DueAt.Equal(e.start.Add(tt.want))) // next due exactly as the header (or backoff) says
			if tt.name == "503 unparsable" {
				is.True(strings.Contains(row.LastError, `its Retry-After "soon" is neither seconds nor an HTTP date`)) // the log says why it was not honoured
			}

			e.clock.Set(e.start.Add(tt.want - time.Second))
			is.Equal(e.tick(d), 0) // not earlier
			e.clock.Set(e.start.Add(tt.want))
			is.Equal(e.tick(d), 1)                      // on time
			is.Equal(e.only().StateName(), "delivered") // delivered
		})
	}
}

// TestDeactivationLoggedOnce: the calls to a webhook that were in flight together
// and all answered 410 deactivate it once, and its deactivation is logged once,
// saying what to do; the others' lines are its host's failures, rate-limited as
// those are, instead of one deactivation line per call.
func TestDeactivationLoggedOnce(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusGone)
		return nil
	})
	sub, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: rv.URL + "/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // a webhook for every record
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })

	e.intake(0, store.Event{Orcid: orcidA}, store.Event{Orcid: orcidB},
		store.Event{Orcid: "0000-0000-0001-0007"}, store.Event{Orcid: "0000-0000-0001-0015"})
	is.Equal(e.tick(d), 4) // four calls, each answered 410
	got, err := e.st.Subscription(ctx, sub.UID)
	is.NoErr(err)
	is.True(!got.Active) // deactivated
	out := logs.String()
	is.Equal(strings.Count(out, `"state":"deactivated"`), 1)                              // one line says it was deactivated
	is.Equal(strings.Count(out, `"msg":"webhook deactivated`), 1)                         // and one what to do
	is.True(strings.Contains(out, "hookd webhooks activate "+sub.UID))                    // activate it
	is.True(strings.Contains(out, "hookd deliveries replay -webhook "+sub.UID+" -since")) // and replay what it missed
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		is.True(strings.Count(l, `"msg"`) == 1) // one JSON line each
	}
	is.True(strings.Count(out, "\n") <= 3) // the other calls' 410s are rate-limited with the host's failures
	said := 0
	for _, row := range e.deliveries(store.DeliveryFilter{State: "dead", Limit: 10}) {
		as, err := e.st.Attempts(ctx, row.ID)
		is.NoErr(err)
		is.Equal(len(as), 1) // its one attempt
		is.True(strings.HasPrefix(as[0].Error, "410 Gone: the target asked to be removed"))
		if strings.HasSuffix(as[0].Error, "; subscription deactivated") {
			said++
		}
	}
	is.Equal(said, 1) // only the attempt that switched the webhook off says it did
}

func TestGoneDeactivates(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		if n == 1 {
			w.WriteHeader(http.StatusGone)
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	callback := rv.URL + "/hook"
	e.subscribe(orcidA, callback)
	var logs lockedBuffer
	d := e.dispatcher(func(o *dispatch.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)                                                  // the call answered 410
	is.Equal(strings.Count(logs.String(), `"msg":"webhook deactivated`), 1) // one line
	is.True(strings.Contains(logs.String(), `"state":"deactivated"`))       // logged as deactivating its webhook
	is.True(strings.Contains(logs.String(), `"status":410`))                // with the answer that did
	row := e.only()
	is.Equal(row.StateName(), "dead") // a 410 is final
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)        // one attempt
	is.Equal(as[0].Status, 410) // logged with its status

	sub, err := e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
	is.NoErr(err)                                // get webhook
	is.True(!sub.Active)                         // deactivated
	is.True(strings.Contains(sub.Reason, "410")) // with a reason naming the 410
	subs, err := e.st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: e.client.ID})
	is.NoErr(err)            // list subscriptions
	is.Equal(len(subs), 1)   // one subscription
	is.True(!subs[0].Active) // shown inactive in the list too

	res := e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(res.Accepted, 1)                              // the event is taken
	is.Equal(res.Deliveries, 0)                            // but reaches no deactivated subscription
	is.Equal(len(e.deliveries(store.DeliveryFilter{})), 1) // no new row
	e.clock.Advance(time.Hour)
	is.Equal(e.tick(d), 0) // nothing to send

	sub, created, err := e.st.PutOrcidWebhook(ctx, e.client.ID, orcidA, callback)
	is.NoErr(err)            // re-PUT the same webhook
	is.True(!created)        // it exists
	is.True(sub.Active)      // and is active again
	is.Equal(sub.Reason, "") // with the reason cleared

	res = e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(res.Deliveries, 1) // events reach it again
	is.Equal(e.tick(d), 1)      // and are delivered
	ds := e.deliveries(store.DeliveryFilter{})
	is.Equal(len(ds), 2)                     // the new row beside the dead one
	is.Equal(ds[0].StateName(), "delivered") // new one delivered
	is.Equal(ds[1].StateName(), "dead")      // the old one stays dead (replayable)
	is.Equal(rv.count(), 2)                  // the 410 call and the new one
}

func TestRedirectNotFollowed(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	other := newReceiver(t, nil)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(nil)
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1)     // one call
	is.Equal(rv.count(), 1)    // to the registered target
	is.Equal(other.count(), 0) // the redirect target is never called

	row := e.only()
	is.Equal(row.StateName(), "failed") // a redirect is a failure
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)                                   // one attempt
	is.Equal(as[0].Status, http.StatusFound)               // recording the 302
	is.True(strings.Contains(as[0].Error, "not followed")) // saying it was not followed
	is.True(strings.Contains(as[0].Error, other.URL))      // and where it pointed
}

// TestRedirectLine: a 3xx's attempt log names where it points, resolved against
// the URL called when its Location is a path alone (as receivers often write
// one), without its query; a 3xx without a Location (a 304 from a cache in
// front of the receiver, a 300) is no redirect, and is not called one.
func TestRedirectLine(t *testing.T) {
	e := newEnv(t)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		switch r.URL.Path {
		case "/relative":
			w.Header().Set("Location", "/moved/here?session=s3cr3t")
			w.WriteHeader(http.StatusFound)
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		case "/choices":
			w.WriteHeader(http.StatusMultipleChoices)
		}
		return nil
	})
	cases := map[string]string{
		testOrcid(1): "/relative",
		testOrcid(2): "/not-modified",
		testOrcid(3): "/choices",
	}
	want := map[string]string{
		"/relative":     `HTTP 302 redirect to "` + rv.URL + `/moved/here" not followed`,
		"/not-modified": "HTTP 304",
		"/choices":      "HTTP 300",
	}
	var events []store.Event
	for id, path := range cases {
		e.subscribe(id, rv.URL+path)
		events = append(events, store.Event{Orcid: id})
	}
	d := e.dispatcher(nil)
	e.intake(0, events...)
	e.tick(d)
	for _, dl := range e.deliveries(store.DeliveryFilter{}) {
		path := cases[dl.Subject]
		as := e.attempts(dl.ID)
		if len(as) != 1 || dl.StateName() != "failed" {
			t.Errorf("%s: %s with %d attempts, want failed with 1", path, dl.StateName(), len(as))
			continue
		}
		if as[0].Error != want[path] || dl.LastError != want[path] {
			t.Errorf("%s: attempt error %q, last error %q; want %q", path, as[0].Error, dl.LastError, want[path])
		}
	}
}

func TestPerHostIsolation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	release := make(chan struct{})
	// The slow host's calls hang until release: the limit and the call timeout below
	// are only backstops, far beyond what the test takes on a loaded machine, so no
	// slow call ends (and frees a slot) before the test releases them.
	slow := hangingReceiver(t, release, time.Minute)
	fast := newReceiver(t, nil)
	// The slow host has a backlog: more rows than it may hold claimed (its calls and
	// its queue), and older than the fast host's, so they come first in the claim.
	const slowRows, fastRows = 20, 3
	var slowIDs []string
	for i := range slowRows {
		slowIDs = append(slowIDs, testOrcid(i))
		e.subscribe(testOrcid(i), slow.URL+"/hook")
	}
	for i := slowRows; i < slowRows+fastRows; i++ {
		e.subscribe(testOrcid(i), fast.URL+"/hook")
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.PerHost = 2
		o.Workers = 8
		o.Timeout = time.Minute
	})
	for _, id := range slowIDs {
		e.intake(0, store.Event{Orcid: id})
	}
	e.clock.Advance(time.Millisecond)
	for i := slowRows; i < slowRows+fastRows; i++ {
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	e.clock.Advance(time.Millisecond)

	first := e.clock.Now()
	n, err := d.Tick(ctx)
	is.NoErr(err)            // tick
	is.True(n >= fastRows+2) // it took at least the fast host's rows and the slow host's first 2
	waitFor(t, 2*time.Second, "the fast receiver to answer its 3 calls", func() bool { return fast.finished.Load() == 3 })
	is.Equal(slow.finished.Load(), int32(0)) // while every slow call still hangs: the fast host did not wait for them
	waitFor(t, 2*time.Second, "the slow receiver to get 2 calls", func() bool { return slow.count() == 2 })
	is.Equal(fast.count(), 3)       // each fast row called once
	is.Equal(slow.maxInFlight(), 2) // the slow host never has more than per_host calls at once
	is.Equal(slow.count(), 2)       // and gets no third call while the first two hang

	// Ticks record the fast outcomes (and any rows handed back) and start nothing new.
	waitFor(t, 2*time.Second, "the fast calls to be recorded", func() bool {
		_, err := d.Tick(ctx)
		is.NoErr(err) // tick
		return len(e.deliveries(store.DeliveryFilter{State: "delivered"})) == 3
	})
	is.Equal(slow.count(), 2) // still no third call to the slow host

	// The rows handed back when the slow host filled up are due again after 100 ms;
	// once it is known to be slow, the rows it cannot take wait a whole tick.
	pendingSlow := func() []store.Delivery {
		var out []store.Delivery
		for _, id := range slowIDs {
			out = append(out, e.deliveries(store.DeliveryFilter{Orcid: id, State: "pending"})...)
		}
		return out
	}
	handedBack := pendingSlow()
	is.True(len(handedBack) > 0) // the first turn handed rows back
	for _, row := range handedBack {
		is.Equal(row.DueAt, first.Add(100*time.Millisecond)) // due again shortly
	}
	e.clock.Advance(100 * time.Millisecond)
	second := e.clock.Now()
	for range 2 { // claim the due rows (and hand them back), then record that
		_, err := d.Tick(ctx)
		is.NoErr(err) // tick
	}
	is.True(len(pendingSlow()) > 0) // what its queue could not take was handed back again
	for _, row := range pendingSlow() {
		is.Equal(row.DueAt, second.Add(time.Second)) // after a tick this time
	}
	is.Equal(slow.count(), 2) // and still no third call

	close(release)
	is.NoErr(d.Wait(ctx))            // the slow host's calls finish
	is.True(slow.maxInFlight() <= 2) // within the host limit throughout
	released := 0
	for _, id := range slowIDs {
		ds := e.deliveries(store.DeliveryFilter{Orcid: id})
		is.Equal(len(ds), 1) // one row per slow record
		switch row := ds[0]; row.StateName() {
		case "delivered":
			is.Equal(row.Attempts, 1)            // called once
			is.Equal(len(e.attempts(row.ID)), 1) // and logged once
		case "pending":
			released++
			is.Equal(row.Attempts, 0)            // handed back without counting an attempt
			is.Equal(len(e.attempts(row.ID)), 0) // and without an attempt log entry
		default:
			t.Fatalf("slow delivery %s is %s", id, row.StateName())
		}
	}
	is.True(released >= 1) // rows beyond what the slow host may hold were handed back

	for i := 0; i < 2*slowRows && len(e.deliveries(store.DeliveryFilter{State: "delivered"})) < slowRows+fastRows; i++ {
		e.clock.Advance(time.Second) // Options.Tick: handed-back rows are due again
		e.tick(d)
	}
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), slowRows+fastRows) // everything delivered in the end
	is.Equal(slow.count(), slowRows)                                                         // each slow row called once
	is.True(slow.maxInFlight() <= 2)                                                         // within the host limit
}

// TestFastHostFillsCapacity: a backlog for one host whose calls are quick is not
// handed back turn after turn once the host is known to be fast; its queue may then
// hold the dispatcher's whole capacity.
func TestFastHostFillsCapacity(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rv := newReceiver(t, nil)
	const rows = 60
	for i := range rows {
		e.subscribe(testOrcid(i), rv.URL+"/hook")
	}
	for i := range rows {
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	// Capacity 4 × 8 = 32 rows; hostQueueMax 2 × 8 = 16.
	d := e.dispatcher(func(o *dispatch.Options) { o.PerHost, o.Workers = 2, 4 })
	first := e.clock.Now()
	is.Equal(e.tick(d), 32) // the first turn claims the capacity ...
	all := store.DeliveryFilter{Limit: 1000}
	handedBack := 0
	for _, row := range e.deliveries(all) {
		if row.StateName() == "pending" && row.DueAt.Equal(first.Add(100*time.Millisecond)) {
			handedBack++
		}
	}
	is.Equal(handedBack, 16)                                                               // ... but, the host's speed unknown, keeps only hostQueueMax
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered", Limit: 1000})), 16) // and delivers those

	host := strings.TrimPrefix(rv.URL, "http://")
	is.True(dispatch.HostSpeed(d, host) > 0)         // those calls taught it the host's speed
	dispatch.SetHostSpeed(d, host, time.Millisecond) // quick, however loaded this machine is
	e.clock.Advance(10 * time.Millisecond)
	is.Equal(e.tick(d), 28)                                                                // the 28 rows still due: the host is fast now ...
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered", Limit: 1000})), 44) // ... so it kept them all
	for _, row := range e.deliveries(store.DeliveryFilter{State: "pending", Limit: 1000}) {
		is.Equal(row.DueAt, first.Add(100*time.Millisecond)) // nothing else was handed back
	}
	is.Equal(rv.count(), 44) // each delivered row called once
}

// TestStalledHostIsTrimmed: a host known to be fast may hold the whole capacity;
// when its calls stop finishing, the next turn hands back what it holds beyond one
// round of its calls (so no queued row outlives its lease, and the capacity serves
// others).
func TestStalledHostIsTrimmed(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	var hang atomic.Bool
	release := make(chan struct{})
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		if hang.Load() {
			block(r, release, 10*time.Second)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	const rows = 44
	for i := range rows {
		e.subscribe(testOrcid(i), rv.URL+"/hook")
	}
	// Capacity 4 × 8 = 32 rows; hostQueueMax 2 × 8 = 16.
	d := e.dispatcher(func(o *dispatch.Options) { o.PerHost, o.Workers = 2, 4 })
	for i := range 4 {
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	is.Equal(e.tick(d), 4) // the host answers quickly: it is known to be fast
	host := strings.TrimPrefix(rv.URL, "http://")
	is.True(dispatch.HostSpeed(d, host) > 0)         // measured
	dispatch.SetHostSpeed(d, host, time.Millisecond) // and quick, however loaded this machine is

	hang.Store(true)
	for i := 4; i < rows; i++ {
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	n, err := d.Tick(ctx)
	is.NoErr(err)   // tick
	is.Equal(n, 32) // the turn claims the whole capacity
	waitFor(t, 2*time.Second, "2 calls to hang", func() bool { return rv.count() == 6 })
	is.Equal(dispatch.Held(d), 32) // and a fast host keeps it all: 2 calls and 30 queued

	e.clock.Advance(1100 * time.Millisecond) // no call finishes for longer than stallAfter
	now := e.clock.Now()
	for range 2 { // trim (and claim the 8 rows left, which the host cannot take), then record that
		_, err := d.Tick(ctx)
		is.NoErr(err) // tick
	}
	pending := e.deliveries(store.DeliveryFilter{State: "pending", Limit: 1000})
	is.Equal(len(pending), 28+8) // 28 queued rows beyond its 2 calls' round and the 8 new ones handed back
	for _, row := range pending {
		is.Equal(row.DueAt, now.Add(1100*time.Millisecond)) // each due again as long after as the host has stalled (a tick or more)
		is.Equal(row.Attempts, 0)                           // without counting an attempt
	}
	is.Equal(rv.count(), 6) // and nothing more was sent to the stalled host

	close(release)
	is.NoErr(d.Wait(ctx)) // the 2 calls and the 2 queued rows finish
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered", Limit: 1000})), 4+2+2)
	is.Equal(rv.count(), 4+2+2) // each called once
}

// TestHostsTakeTurns: with every worker free to take a hanging host's next row, a
// host queued behind it still gets a worker, since hosts take turns.
func TestHostsTakeTurns(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	release := make(chan struct{})
	hanging := hangingReceiver(t, release, 10*time.Second)
	other := newReceiver(t, nil)
	for i := range 4 {
		e.subscribe(testOrcid(i), hanging.URL+"/hook")
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	e.clock.Advance(time.Millisecond)
	e.subscribe(testOrcid(4), other.URL+"/hook")
	e.intake(0, store.Event{Orcid: testOrcid(4)}) // the newest row, so last in the claim
	e.clock.Advance(time.Millisecond)

	// Two workers, and two calls allowed per host: both could go to the hanging host.
	d := e.dispatcher(func(o *dispatch.Options) { o.PerHost, o.Workers = 2, 2 })
	n, err := d.Tick(ctx)
	is.NoErr(err)  // tick
	is.Equal(n, 5) // every row claimed
	waitFor(t, 2*time.Second, "the other host's call while the first host hangs", func() bool { return other.count() == 1 })
	is.True(hanging.count() <= 2) // (the worker that served it may have gone on to the hanging host)

	close(release)
	is.NoErr(d.Wait(ctx)) // the rest finish
	is.Equal(hanging.count(), 4)
}

// TestTickAfterClose: a closed dispatcher claims nothing, so nothing is left queued
// without a worker and Wait returns.
func TestTickAfterClose(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/hook")
	e.intake(0, store.Event{Orcid: orcidA})
	d := e.dispatcher(nil)
	d.Close()
	n, err := d.Tick(ctx)
	is.NoErr(err)         // tick
	is.Equal(n, 0)        // nothing claimed
	is.NoErr(d.Wait(ctx)) // and nothing to wait for
	is.Equal(e.only().StateName(), "pending")
	is.Equal(rv.count(), 0)
}

func TestLeaseExpiryAfterCrash(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/hook")
	e.intake(0, store.Event{Orcid: orcidA})

	const timeout = time.Second
	lease := 2*timeout + 30*time.Second        // the lease dispatcher A takes
	claimed, err := e.st.Claim(ctx, 10, lease) // dispatcher A claims ...
	is.NoErr(err)                              // claim
	is.Equal(len(claimed), 1)                  // the delivery is leased
	e.reopen()                                 // ... and crashes without recording anything

	d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = timeout })
	is.Equal(e.tick(d), 0) // B claims nothing while the lease holds
	e.clock.Advance(lease - time.Second)
	is.Equal(e.tick(d), 0)                      // nor just before it ends
	is.Equal(rv.count(), 0)                     // nothing was sent
	is.Equal(e.only().StateName(), "in-flight") // the row is still leased

	e.clock.Advance(2 * time.Second)
	is.Equal(e.tick(d), 1)  // after the lease, B reclaims it and delivers
	is.Equal(rv.count(), 1) // one call
	row := e.only()
	is.Equal(row.StateName(), "delivered") // nothing was lost
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)        // B's attempt is logged
	is.Equal(as[0].Status, 204) // as a success
}

func TestTimeout(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	// The receiver would answer 204 well before the default timeout, so only the
	// configured 200 ms timeout can end the call without a response.
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		select {
		case <-time.After(dispatch.DefaultTimeout / 2):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.Timeout = 200 * time.Millisecond })
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1) // one call
	row := e.only()
	is.Equal(row.StateName(), "failed") // a timeout is a failure
	as := e.attempts(row.ID)
	is.Equal(len(as), 1)                               // one attempt
	is.Equal(as[0].Status, 0)                          // without a response: cut off by the timeout, not the receiver
	is.True(strings.Contains(as[0].Error, "timeout"))  // the error says timeout
	is.True(row.DueAt.Equal(e.start.Add(time.Minute))) // retried after the backoff
}

func TestSignatureVerifiesIndependently(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	wh, err := standardwebhooks.NewWebhook(e.client.SigningSecret)
	is.NoErr(err) // the client's whsec_ secret parses
	impostor, err := standardwebhooks.NewWebhook(secret.NewSigningSecret())
	is.NoErr(err) // another secret
	var impostorOK atomic.Bool
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		verr := wh.Verify(body, r.Header)
		if impostor.Verify(body, r.Header) == nil {
			impostorOK.Store(true)
		}
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		return verr
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
	e.intake(0, store.Event{Orcid: orcidA})

	is.Equal(e.tick(d), 1) // first attempt (500)
	e.clock.Advance(time.Minute)
	is.Equal(e.tick(d), 1) // retry (204)

	reqs := rv.requests()
	is.Equal(len(reqs), 2) // two calls
	for _, r := range reqs {
		is.NoErr(r.verr)                                                     // the Standard Webhooks library verifies the signature
		is.True(strings.HasPrefix(r.header.Get("User-Agent"), "hookd/"))     // hookd's User-Agent
		is.Equal(r.header.Get("User-Agent"), "hookd/1.2.3-test")             // exactly as configured
		is.True(strings.HasPrefix(r.header.Get("webhook-signature"), "v1,")) // a v1 signature
	}
	is.True(!impostorOK.Load()) // a different secret does not verify
	id := reqs[0].header.Get("webhook-id")
	is.True(id != "")                              // a webhook-id is sent
	is.Equal(reqs[1].header.Get("webhook-id"), id) // and is the same across the retry
	is.Equal(id, store.MessageID(e.only().ID, 0))  // derived from the delivery
	is.Equal(e.only().StateName(), "delivered")    // delivered

	// A second delivery of the same pair is a new message with a new id.
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // third call
	third := rv.requests()[2]
	is.NoErr(third.verr)                          // verifies too
	is.True(third.header.Get("webhook-id") != id) // a new webhook-id
}

func TestSSRFAtDelivery(t *testing.T) {
	for _, host := range []string{"localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			rv := newReceiver(t, nil)
			_, port, err := net.SplitHostPort(rv.srv.Listener.Addr().String())
			is.NoErr(err) // the receiver's port
			// The store does not check URLs: this stands for a name that resolved to a
			// public address at registration and to loopback now.
			e.subscribe(orcidA, "http://"+host+":"+port+"/x")
			d := e.dispatcher(func(o *dispatch.Options) { o.AllowPrivateTargets = false })
			e.intake(0, store.Event{Orcid: orcidA})

			is.Equal(e.tick(d), 1)  // one attempt
			is.Equal(rv.count(), 0) // the receiver is never called
			row := e.only()
			is.Equal(row.StateName(), "failed") // it is a failure
			as := e.attempts(row.ID)
			is.Equal(len(as), 1)                                         // logged
			is.Equal(as[0].Status, 0)                                    // without a response
			is.True(strings.Contains(as[0].Error, "refused to connect")) // saying it was refused
			is.True(strings.Contains(as[0].Error, "Loopback"))           // and why
			is.True(!strings.Contains(as[0].Error, "127.0.0.1"))         // not naming what the host resolved to
		})
	}
}

func TestShutdown(t *testing.T) {
	t.Run("waits for in-flight calls", func(t *testing.T) {
		is := is.New(t)
		e := newEnv(t)
		var done atomic.Bool
		rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
			select {
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
				return errors.New("cancelled")
			}
			done.Store(true)
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
		e.subscribe(orcidA, rv.URL+"/hook")
		d := e.dispatcher(nil)
		e.intake(0, store.Event{Orcid: orcidA})

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- d.Run(ctx) }()
		waitFor(t, 2*time.Second, "the call to arrive", func() bool { return rv.count() == 1 })
		cancel()
		select {
		case err := <-ran:
			is.NoErr(err) // Run stops cleanly
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		is.True(done.Load()) // Run returned only after the call finished
		row := e.only()
		is.Equal(row.StateName(), "delivered") // and its outcome was recorded
		is.Equal(len(e.attempts(row.ID)), 1)   // with its attempt
	})

	t.Run("releases calls after the grace", func(t *testing.T) {
		is := is.New(t)
		e := newEnv(t)
		// The first call hangs until hookd hangs up, so Run returning at all shows the
		// call was released, not waited for.
		rv := hangsFirstCall(t)
		// Two records on one host with per_host 1: one call hangs, the other row waits
		// its turn (queued or handed back, whichever the dispatcher does).
		e.subscribe(orcidA, rv.URL+"/hook")
		e.subscribe(orcidB, rv.URL+"/hook")
		d := e.dispatcher(func(o *dispatch.Options) {
			o.ShutdownGrace = 100 * time.Millisecond
			o.PerHost = 1
		})
		e.intake(0, store.Event{Orcid: orcidA}, store.Event{Orcid: orcidB})

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- d.Run(ctx) }()
		waitFor(t, 2*time.Second, "the call to arrive", func() bool { return rv.count() == 1 })
		cancel()
		select {
		case err := <-ran:
			is.NoErr(err) // Run stops cleanly
		case <-time.After(5 * time.Second): // half the default grace, many times the 100 ms one
			t.Fatal("Run did not return after cancel within the grace")
		}
		is.Equal(rv.count(), 1) // the waiting row was not started during shutdown

		rows := e.deliveries(store.DeliveryFilter{})
		is.Equal(len(rows), 2) // both rows are there
		for _, row := range rows {
			is.Equal(row.StateName(), "pending") // released: pending again, not lost
			is.Equal(row.Attempts, 0)            // and not counted as an attempt
			is.Equal(len(e.attempts(row.ID)), 0) // nor logged as one
		}

		d2 := e.dispatcher(nil) // the next process
		for i := 0; i < 5 && len(e.deliveries(store.DeliveryFilter{State: "delivered"})) < 2; i++ {
			e.tick(d2) // picks them up
			e.clock.Advance(time.Second)
		}
		is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered"})), 2) // and delivers both
		is.Equal(rv.count(), 3)                                                  // once each after the hung call
	})
}

// TestBacklogInShortTurns: a turn claims at most TurnClaimMax rows, however much
// is due and however much room the workers have, so the store's one writer is never
// held long by the dispatch loop; the backlog goes out over several turns.
func TestBacklogInShortTurns(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rv := newReceiver(t, nil)
	rows := 2*dispatch.TurnClaimMax + 10
	for i := range rows {
		e.subscribe(testOrcid(i), rv.URL+"/hook")
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	d := e.dispatcher(func(o *dispatch.Options) { o.PerHost, o.Workers = 64, 64 }) // room for 512
	host := strings.TrimPrefix(rv.URL, "http://")
	dispatch.SetHostSpeed(d, host, time.Millisecond) // a quick host may take them all
	is.Equal(e.tick(d), dispatch.TurnClaimMax)       // one turn's worth
	is.Equal(e.tick(d), dispatch.TurnClaimMax)       // another
	is.Equal(e.tick(d), 10)                          // the rest
	is.Equal(rv.count(), rows)                       // each called once
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered", Limit: 1000})), rows)
}

// TestQuickTurnTakesTheFresh: between two long turns of one host's backlog, a quick
// turn claims the newest due deliveries only, so a fresh event's callback to
// another host goes out at once, while the backlog's oldest rows wait for the long
// turns.
func TestQuickTurnTakesTheFresh(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	release := make(chan struct{})
	defer close(release)
	busy := hangingReceiver(t, release, 10*time.Second)
	other := newReceiver(t, nil)
	const backlog = 40
	for i := range backlog {
		e.subscribe(testOrcid(i), busy.URL+"/cb")
		e.intake(0, store.Event{Orcid: testOrcid(i)})
		e.clock.Advance(time.Millisecond)
	}
	fresh := testOrcid(backlog)
	e.subscribe(fresh, other.URL+"/cb")
	e.clock.Advance(time.Second)
	e.intake(0, store.Event{Orcid: fresh})

	d := e.dispatcher(func(o *dispatch.Options) { o.Workers, o.PerHost = 4, 2 })
	dispatch.QuickTurn(d, context.Background())
	waitFor(t, 5*time.Second, "the fresh event's callback", func() bool { return other.count() == 1 })
	is.True(dispatch.Held(d) <= 16) // a quick turn claims at most 16 rows
	oldest := e.deliveries(store.DeliveryFilter{Orcid: testOrcid(0)})
	is.Equal(len(oldest), 1)
	is.Equal(oldest[0].State, store.StatePending) // the backlog's oldest waits for a long turn
}

// TestFreshEventsClaimedWithTheirCommit: while the loop runs, the delivery of a new
// event is claimed in the event's own transaction and called at once: with a tick
// of an hour and no nudge, no turn would take it.
func TestFreshEventsClaimedWithTheirCommit(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.Tick = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	waitFor(t, 5*time.Second, "the loop's first turn", func() bool { return d.Ready(ctx) == nil })

	e.intake(0, store.Event{Orcid: orcidA})
	waitFor(t, 5*time.Second, "the call", func() bool { return rv.count() == 1 })
	cancel()
	is.NoErr(<-ran)
	is.Equal(e.only().StateName(), "delivered") // its outcome recorded as the loop stopped
}

// TestMergedAfterAnAttemptIsANewMessage: events taken in by a delivery that has
// been attempted go out under a new webhook-id (msg_N_1), so a receiver that acted
// on the first call and drops repeated ids does not drop the later change with
// it; a retry carrying nothing new keeps its id.
func TestMergedAfterAnAttemptIsANewMessage(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError) // acted on, then failed to answer
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // fails
	e.clock.Set(e.only().DueAt)
	is.Equal(e.tick(d), 1) // its retry, nothing new: fails again
	e.clock.Advance(10 * time.Second)
	e.intake(0, store.Event{Orcid: orcidA, Type: store.EventCreated}) // a new change, merged into the waiting row
	row := e.only()
	is.Equal(row.EventCount, 2)
	is.Equal(row.MsgRev, 1)
	e.clock.Set(row.DueAt)
	is.Equal(e.tick(d), 1) // delivered
	reqs := rv.requests()
	is.Equal(len(reqs), 3)
	first := reqs[0].header.Get("webhook-id")
	is.Equal(reqs[1].header.Get("webhook-id"), first)      // a retry of the same message
	is.Equal(reqs[2].header.Get("webhook-id"), first+"_1") // a new message: it carries a change the first did not
	is.Equal(store.MessageID(row.ID, 1), first+"_1")
}

// TestAttemptLogKeepsWhereItWent: a failed attempt's log says where it went, so a
// delivery whose webhook moved since shows the old URL beside the old errors.
func TestAttemptLogKeepsWhereItWent(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	down := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusBadGateway)
		return nil
	})
	up := newReceiver(t, nil)
	sub, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: down.URL + "/old", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Minute })
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // fails at the old URL

	newURL := up.URL + "/new"
	_, err = e.st.UpdateWebhook(ctx, e.client.ID, sub.UID, store.WebhookPatch{TargetURL: &newURL})
	is.NoErr(err)
	row := e.only()
	e.clock.Set(row.DueAt)
	is.Equal(e.tick(d), 1) // delivered at the new one
	row = e.only()
	is.Equal(row.StateName(), "delivered")
	as := e.attempts(row.ID)
	is.Equal(len(as), 2)
	is.Equal(as[0].Target, down.URL+"/old")         // the failure, where it went
	is.Equal(row.Elsewhere(as[0]), down.URL+"/old") // not where the webhook points now
	is.Equal(row.Elsewhere(as[1]), "")              // the success: where it points
}

// TestCutCallThenNewEventsIsANewMessage: a call cut short by a shutdown is not an
// attempt, but the receiver may have had it: events taken in after it, folded in
// at the release or merged later, go out under a new webhook-id.
func TestCutCallThenNewEventsIsANewMessage(t *testing.T) {
	for _, when := range []string{"during the call", "after the release"} {
		t.Run(when, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			rv := hangsFirstCall(t) // had it (and acted on it), but hookd hangs up before the answer
			e.subscribe(orcidA, rv.URL+"/hook")
			d := e.dispatcher(func(o *dispatch.Options) { o.ShutdownGrace = 100 * time.Millisecond })
			e.intake(0, store.Event{Orcid: orcidA})
			runUntil(t, d, "the call to arrive", func() bool {
				if rv.count() < 1 {
					return false
				}
				if when == "during the call" {
					e.intake(0, store.Event{Orcid: orcidA, Type: store.EventCreated}) // a twin
				}
				return true
			})
			if when == "after the release" {
				e.intake(0, store.Event{Orcid: orcidA, Type: store.EventCreated}) // merged
			}
			row := e.only()
			is.Equal(row.EventCount, 2)
			is.Equal(row.Attempts, 0) // the cut call is not an attempt
			is.Equal(e.tick(e.dispatcher(nil)), 1)
			reqs := rv.requests()
			is.Equal(len(reqs), 2)
			is.Equal(reqs[1].header.Get("webhook-id"), reqs[0].header.Get("webhook-id")+"_1") // a new message
		})
	}
}

// TestTestEventIntoAFailedRowIsANewMessage: a test event merged into a row
// waiting for its retry goes out under a new webhook-id.
func TestTestEventIntoAFailedRowIsANewMessage(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	rv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	sub := e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) { o.RetryBase = time.Hour })
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // fails, waits an hour
	id, err := e.st.SendTestEvent(context.Background(), sub.UID, "")
	is.NoErr(err)
	is.Equal(id, e.only().ID) // merged into the failed row
	is.Equal(e.tick(d), 1)    // due now
	reqs := rv.requests()
	is.Equal(reqs[1].header.Get("webhook-id"), reqs[0].header.Get("webhook-id")+"_1")
}

// TestShutdownWhileConnectingIsNotSent: an https call cut by a shutdown in its
// TLS handshake never sent its request: released as unsent, its delivery's first
// message to the receiver is still msg_N.
func TestShutdownWhileConnectingIsNotSent(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, and never answers the handshake
	is.NoErr(err)
	var accepted atomic.Int32
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			accepted.Add(1)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	e.subscribe(orcidA, "https://"+ln.Addr().String()+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Timeout = 3 * time.Second
		o.ShutdownGrace = 100 * time.Millisecond
	})
	e.intake(0, store.Event{Orcid: orcidA})
	runUntil(t, d, "the TCP connection", func() bool {
		if accepted.Load() < 1 {
			return false
		}
		time.Sleep(50 * time.Millisecond) // the client is in its TLS handshake
		return true
	})
	e.intake(0, store.Event{Orcid: orcidA}) // merged into the released row
	row := e.only()
	is.Equal(row.Attempts, 0)
	is.Equal(row.MsgRev, 0) // no request went out: its first message is msg_N
}
