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

// TestObserverCountsWhatIsRecorded: a call that fails past disable_after, on a run
// of failures that another record's success ended during the call, is recorded as a
// retry and the webhook stays on; the metrics count a retry, not a deactivation.
func TestObserverCountsWhatIsRecorded(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	release := make(chan struct{})
	calledB := make(chan struct{}, 1)
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		switch {
		case bytes.Contains(body, []byte(orcidB)):
			calledB <- struct{}{}
			select {
			case <-release:
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
	wh, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: rv.URL + "/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // one webhook for every record
	obs := &countingObserver{}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.DisableAfter = 30 * time.Minute
		o.Observer = obs
	})

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // A fails: the webhook is failing from now on
	e.clock.Advance(31 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidB})

	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 2) // A's retry and B, both claimed while the webhook was failing for 31 minutes
	<-calledB      // B's call is out
	delivered := func(orcid string) bool {
		ds := e.deliveries(store.DeliveryFilter{Orcid: orcid})
		return len(ds) == 1 && ds[0].State == store.StateDelivered
	}
	waitFor(t, 5*time.Second, "A delivered", func() bool {
		_, err := d.Tick(ctx)
		is.NoErr(err)
		return delivered(orcidA)
	}) // A's success ends the run of failures while B's call is out
	close(release)
	is.NoErr(d.Wait(ctx)) // B fails: deactivation was decided on the run its claim saw

	sub, err := e.st.Webhook(ctx, e.client.ID, wh.UID)
	is.NoErr(err)
	is.True(sub.Active) // the run had ended: the webhook stays on
	b := e.deliveries(store.DeliveryFilter{Orcid: orcidB})
	is.Equal(len(b), 1)
	is.Equal(b[0].StateName(), "failed")                               // and B waits for its retry
	is.Equal(obs.counts(), map[string]int{"retry": 2, "delivered": 1}) // counted as recorded
}

// TestObserverCountsWhatIsRecordedOneByOne: when failing turns have the outcomes
// recorded one at a time, an outcome the store applied as another kind (a
// deactivation on a run of failures that ended during the call, recorded as a
// retry) is counted as it was applied there too.
func TestObserverCountsWhatIsRecordedOneByOne(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	release := make(chan struct{})
	calledB := make(chan struct{}, 1)
	rv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request, body []byte) error {
		switch {
		case bytes.Contains(body, []byte(orcidB)):
			calledB <- struct{}{}
			select {
			case <-release:
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
	wh, _, err := e.st.CreateWebhook(ctx, e.client.ID, store.WebhookSpec{TargetURL: rv.URL + "/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	obs := &countingObserver{}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.RetryBase = time.Minute
		o.DisableAfter = 30 * time.Minute
		o.Observer = obs
	})

	e.intake(0, store.Event{Orcid: orcidA})
	is.Equal(e.tick(d), 1) // A fails: the webhook is failing from now on
	e.clock.Advance(31 * time.Minute)
	e.intake(0, store.Event{Orcid: orcidB})
	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 2) // A's retry and B, both claimed while the webhook was failing for 31 minutes
	<-calledB
	delivered := func(orcid string) bool {
		ds := e.deliveries(store.DeliveryFilter{Orcid: orcid})
		return len(ds) == 1 && ds[0].State == store.StateDelivered
	}
	waitFor(t, 5*time.Second, "A delivered", func() bool {
		_, err := d.Tick(ctx)
		is.NoErr(err)
		return delivered(orcidA)
	}) // A's success ends the run of failures while B's call is out
	dispatch.AddOutcome(d, store.Outcome{DeliveryID: 1 << 40, Kind: 42}) // one no transaction can record, ahead of B's
	close(release)
	waitFor(t, 5*time.Second, "B's outcome", func() bool { return dispatch.Pending(d) == 2 })
	for range 3 {
		_, err := d.Tick(ctx)
		is.True(err != nil) // the third failed turn records the outcomes one at a time
	}
	is.Equal(dispatch.Pending(d), 0) // B's was recorded, the bad one dropped

	sub, err := e.st.Webhook(ctx, e.client.ID, wh.UID)
	is.NoErr(err)
	is.True(sub.Active) // the run had ended: the webhook stays on
	b := e.deliveries(store.DeliveryFilter{Orcid: orcidB})
	is.Equal(len(b), 1)
	is.Equal(b[0].StateName(), "failed")                               // B waits for its retry
	is.Equal(obs.counts(), map[string]int{"retry": 2, "delivered": 1}) // counted as recorded
}
