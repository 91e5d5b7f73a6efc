package dispatch_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// countingObserver counts the outcomes a dispatcher tells it, by name.
type countingObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingObserver) Outcome(outcome string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[outcome]++
}

func (c *countingObserver) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// endedRun is a dispatcher, counted by obs, whose one webhook (for every record)
// failed for A 31 minutes ago and is failing since, with B's call out and held
// until release closes, and A's retry delivered meanwhile: B's failure past
// disable_after comes on a run of failures that ended during its call.
type endedRun struct {
	d       *dispatch.Dispatcher
	obs     *countingObserver
	hook    store.Subscription
	release chan struct{}
}

func newEndedRun(t *testing.T, e *testEnv) endedRun {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	run := endedRun{obs: &countingObserver{}, release: make(chan struct{})}
	calledB := make(chan struct{}, 1)
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		switch {
		case bytes.Contains(body, []byte(orcidB)):
			calledB <- struct{}{}
			select {
			case <-run.release:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusInternalServerError)
		case n == 1:
			w.WriteHeader(http.StatusInternalServerError) // the run of failures begins
		default:
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	})
	var err error
	run.hook, _, err = e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: rv.URL + "/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // one webhook for every record
	run.d = e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.DisableAfter = 30 * time.Minute
		o.Observer = run.obs
	})

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(run.d), 1) // A fails: the webhook is failing from now on
	e.clock.Advance(31 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidB})
	n, err := run.d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 2) // A's retry and B, both claimed while the webhook was failing for 31 minutes
	<-calledB      // B's call is out
	waitFor(t, 5*time.Second, "A delivered", func() bool {
		_, err := run.d.Tick(ctx)
		is.NoErr(err)
		ds := e.deliveries(store.DeliveryFilter{Orcid: orcidA})
		return len(ds) == 1 && ds[0].State == store.StateDelivered
	}) // A's success ends the run of failures while B's call is out
	return run
}

// check checks that B's failure was recorded as a retry, the webhook left on, and
// counted so.
func (run endedRun) check(t *testing.T, e *testEnv) {
	t.Helper()
	is := is.New(t)
	sub, err := e.st.Webhook(context.Background(), e.client.ID, run.hook.UID)
	is.NoErr(err)
	is.True(sub.Active) // the run had ended: the webhook stays on
	b := e.deliveries(store.DeliveryFilter{Orcid: orcidB})
	is.Equal(len(b), 1)
	is.Equal(b[0].StateName(), "failed")                                   // and B waits for its retry
	is.Equal(run.obs.counts(), map[string]int{"retry": 2, "delivered": 1}) // counted as recorded
}

// TestObserverCountsWhatIsRecorded: a call that fails past disable_after, on a run
// of failures that another record's success ended during the call, is recorded as a
// retry and the webhook stays on; the metrics count a retry, not a deactivation.
func TestObserverCountsWhatIsRecorded(t *testing.T) {
	e := newEnv(t)
	run := newEndedRun(t, e)
	close(run.release)
	is.New(t).NoErr(run.d.Wait(context.Background())) // B fails: deactivation was decided on the run its claim saw
	run.check(t, e)
}

// TestObserverCountsWhatIsRecordedOneByOne: when failing turns have the outcomes
// recorded one at a time, an outcome the store applied as another kind (a
// deactivation on a run of failures that ended during the call, recorded as a
// retry) is counted as it was applied there too.
func TestObserverCountsWhatIsRecordedOneByOne(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	run := newEndedRun(t, e)
	dispatch.AddOutcome(run.d, store.Outcome{DeliveryID: 1 << 40, Kind: 42}) // one no transaction can record, ahead of B's
	close(run.release)
	waitFor(t, 5*time.Second, "B's outcome", func() bool { return dispatch.Pending(run.d) == 2 })
	for range 3 {
		_, err := run.d.Tick(context.Background())
		is.True(err != nil) // the third failed turn records the outcomes one at a time
	}
	is.Equal(dispatch.Pending(run.d), 0) // B's was recorded, the bad one dropped
	run.check(t, e)
}
