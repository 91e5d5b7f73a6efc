package dispatch_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// failUntilDone ticks d, moving the clock to each retry, until delivery id is no
// longer waiting; it returns that row.
func (e *testEnv) failUntilDone(d *dispatch.Dispatcher, id int64) store.Delivery {
	e.tb.Helper()
	is := is.New(e.tb)
	for i := 0; i < 100; i++ {
		e.tick(d)
		row := e.deliveries(store.DeliveryFilter{ID: id})[0]
		if row.State != store.StatePending {
			return row
		}
		e.clock.Set(row.DueAt)
	}
	is.Fail() // the delivery never ended
	return store.Delivery{}
}

// failing500 is a receiver that answers 500 to every call.
func failing500(tb testing.TB) *receiver {
	return newReceiver(tb, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.WriteHeader(http.StatusInternalServerError)
		return nil
	})
}

// healthOptions: retries within 30 minutes, dead after an hour, deactivated after
// five hours of failures.
func healthOptions(o *dispatch.Options) {
	o.RetryBase = time.Minute
	o.RetryMaxDelay = 30 * time.Minute
	o.GiveUpAfter = time.Hour
	o.DisableAfter = 5 * time.Hour
}

// TestRunOfFailuresNeedsAttempts: a webhook's run of failures is what hookd saw,
// attempt after attempt. One that failed for an hour, whose delivery then died,
// and which nothing was sent to for a week, is not "failing continuously" for that
// week: a new event's first failure starts a new run and does not deactivate it,
// whether or not the retention pass ran in the week (hookd may have been stopped).
func TestRunOfFailuresNeedsAttempts(t *testing.T) {
	for _, pass := range []bool{true, false} {
		name := "retention pass in the week"
		if !pass {
			name = "no retention pass in the week"
		}
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t)
			ctx := context.Background()
			callback := failing500(t).URL + "/hook"
			e.subscribe(orcidA, callback)
			d := e.dispatcher(healthOptions)
			e.intake(0, store.Event{Orcid: orcidA})
			first := e.only()
			is.Equal(e.failUntilDone(d, first.ID).StateName(), "dead") // gave up after an hour of failures

			sub, err := e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
			is.NoErr(err)
			is.True(sub.Active)                      // an hour of failures is not disable_after
			is.True(sub.FailingSince.Equal(e.start)) // failing since the first attempt

			// A week with nothing to send: hookd tries nothing.
			e.clock.Advance(7 * 24 * time.Hour)
			silent := e.clock.Now()
			if pass {
				_, err := d.Purge(ctx)
				is.NoErr(err) // the retention pass
				sub, err = e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
				is.NoErr(err)
				is.True(sub.FailingSince.IsZero()) // no longer shown as failing: nothing was tried for a week
			}

			e.intake(0, store.Event{Orcid: orcidA})
			is.Equal(e.tick(d), 1) // the new event's first attempt fails
			sub, err = e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
			is.NoErr(err)
			is.True(sub.Active)                     // not deactivated for a week hookd never tried it
			is.Equal(sub.Reason, "")                // no reason given
			is.True(sub.FailingSince.Equal(silent)) // a new run, from this failure
			var next store.Delivery
			for _, r := range e.deliveries(store.DeliveryFilter{}) {
				if r.ID != first.ID {
					next = r
				}
			}
			is.Equal(next.StateName(), "failed")                                // the new delivery waits for its retry
			is.True(!strings.Contains(next.LastError, "continuously"))          // and says nothing of a run
			is.True(!next.DueAt.After(silent.Add(2 * time.Minute)))             // due after its backoff
			is.Equal(len(e.deliveries(store.DeliveryFilter{State: "dead"})), 1) // only the first is dead
		})
	}
}

// TestContinuousFailuresDeactivate: deliveries that fail one after another, none
// longer apart than retry_max_delay, are one run, however many deliveries it
// takes: past disable_after of them the webhook is deactivated, the reason naming
// when the run began.
func TestContinuousFailuresDeactivate(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	callback := failing500(t).URL + "/hook"
	e.subscribe(orcidA, callback)
	d := e.dispatcher(healthOptions)
	var sub store.Subscription
	for i := 0; i < 10 && (i == 0 || sub.Active); i++ {
		// A new event 20 minutes after the last delivery died, each with its hour of
		// retries: the webhook is tried every half an hour at most.
		if i > 0 {
			e.clock.Advance(20 * time.Minute)
			_, err := d.Purge(ctx)
			is.NoErr(err) // the retention pass ends no run in between
		}
		res := e.intake(0, store.Event{Orcid: orcidA})
		is.Equal(res.Deliveries, 1)
		var id int64
		for _, r := range e.deliveries(store.DeliveryFilter{}) {
			if r.State == store.StatePending {
				id = r.ID
			}
		}
		e.failUntilDone(d, id)
		var err error
		sub, err = e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
		is.NoErr(err)
		is.True(sub.FailingSince.Equal(e.start)) // one run, from the first failure
	}
	is.True(!sub.Active)                                                       // deactivated
	is.True(e.clock.Now().Sub(e.start) >= 5*time.Hour)                         // once disable_after had passed
	is.True(e.clock.Now().Sub(e.start) < 5*time.Hour+time.Hour+20*time.Minute) // and not a delivery later
	is.True(strings.HasPrefix(sub.Reason, "deliveries failed continuously since 2024-03-01T12:00:00Z"))

	// Deactivated, it is tried no more: the console's endpoints "failing now" list
	// it until its run lapses, not for as long as it stays deactivated.
	failing, err := e.st.FailingWebhooks(ctx, store.Visibility{}, 10)
	is.NoErr(err)
	is.Equal(len(failing), 1) // failing now
	e.clock.Advance(31 * time.Minute)
	_, err = d.Purge(ctx)
	is.NoErr(err)
	failing, err = e.st.FailingWebhooks(ctx, store.Visibility{}, 10)
	is.NoErr(err)
	is.Equal(len(failing), 0) // not tried for longer than retry_max_delay: no longer failing now
	sub, err = e.st.OrcidWebhook(ctx, e.client.ID, orcidA, callback)
	is.NoErr(err)
	is.True(!sub.Active)                                                                                // still deactivated
	is.True(strings.HasPrefix(sub.Reason, "deliveries failed continuously since 2024-03-01T12:00:00Z")) // its reason still says why
}

// TestRetryAfterPastGiveUp: a receiver that asks (429 or 503 with Retry-After) to
// be called again only after the delivery's give_up_after has passed is not
// called against its word, nor is the delivery kept past give_up_after: it is
// dead at once, saying why, and replayable. One that asks for a time within the
// budget is waited for as asked.
func TestRetryAfterPastGiveUp(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	wait := "600"
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		w.Header().Set("Retry-After", wait)
		w.WriteHeader(http.StatusServiceUnavailable)
		return nil
	})
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(func(o *dispatch.Options) {
		o.GiveUpAfter = time.Hour
	})
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1)
	row := e.only()
	is.Equal(row.StateName(), "failed")                     // ten minutes is within the hour
	is.True(row.DueAt.Equal(e.start.Add(10 * time.Minute))) // and waited for as asked

	wait = "86400" // come back tomorrow
	e.clock.Set(row.DueAt)
	is.Equal(e.tick(d), 1)
	row = e.only()
	is.Equal(row.StateName(), "dead") // not postponed a day past give_up_after
	is.Equal(row.LastError, "gave up: its Retry-After asks to wait until 2024-03-02T12:10:00Z, past give_up_after (1h0m0s since the first attempt, 2024-03-01T13:00:00Z): HTTP 503")
	is.Equal(rv.count(), 2)

	res, err := e.st.Replay(ctx, store.DeliveryFilter{ID: row.ID})
	is.NoErr(err)
	is.Equal(res.Replayed, 1) // replayable
}

// TestPausedEndsLapsedRuns: while delivery is paused (delivery.paused) hookd
// tries nothing, and a webhook's run of failures whose latest planned retry is
// more than retry_max_delay past ends, as the retention pass ends it: the
// webhook no longer shows as failing (the console, hookd_webhooks_failing). It
// was counted failing for as long as the pause lasted.
func TestPausedEndsLapsedRuns(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := failing500(t)
	e.subscribe(orcidA, rv.URL+"/hook")
	d := e.dispatcher(healthOptions)
	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // fails, its retry planned a minute on
	failing := func() int {
		g, err := e.st.Gauges(ctx)
		is.NoErr(err)
		return g.Failing
	}
	is.Equal(failing(), 1)

	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dispatch.PausedEvery(pctx, d, 10*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	is.Equal(failing(), 1) // the run holds within retry_max_delay of its retry
	e.clock.Advance(time.Minute + 31*time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for failing() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run that lapsed during the pause still counts as failing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	is.NoErr(<-done)
	is.Equal(rv.count(), 1)                                                 // nothing tried while paused
	is.Equal(e.deliveries(store.DeliveryFilter{})[0].StateName(), "failed") // nor claimed, nor dead
}
