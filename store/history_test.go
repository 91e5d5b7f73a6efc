package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestAttemptsOf: the attempt logs of several deliveries come back from one call,
// each oldest first, with a success (kept in the delivery's own row) last.
func TestAttemptsOf(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	const a, b = "0000-0002-7253-3645", "0000-0002-9079-593X"
	for _, id := range []string{a, b} {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, id, "https://example.org/"+id)
		is.NoErr(err)
	}
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: a}, {Orcid: b}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2) // both due
	started := st.Now()
	outcome := func(c store.Claimed, kind store.OutcomeKind, status int) store.Outcome {
		return store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind, Attempt: c.Attempt,
			StartedAt: started, Duration: 5 * time.Millisecond, Status: status, RetryAt: started}
	}
	again, err := st.Exchange(ctx, []store.Outcome{outcome(claimed[0], store.OutcomeRetry, 500), outcome(claimed[1], store.OutcomeDelivered, 204)}, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(again), 1) // the failed one is due again at once
	_, err = st.Exchange(ctx, []store.Outcome{outcome(again[0], store.OutcomeDelivered, 200)}, 0, 0)
	is.NoErr(err)

	logs, err := st.AttemptsOf(ctx, []int64{claimed[0].ID, claimed[1].ID, 999})
	is.NoErr(err)
	first := logs[claimed[0].ID]
	is.Equal(len(first), 2)                      // a failure, then the success
	is.Equal(first[0].Status, 500)               // oldest first
	is.Equal(first[1].Status, 200)               // the success last
	is.Equal(first[1].Attempt, 2)                // as the second attempt
	is.Equal(len(logs[claimed[1].ID]), 1)        // delivered at once
	is.Equal(logs[claimed[1].ID][0].Status, 204) // from the delivery's own row
	is.Equal(len(logs[999]), 0)                  // no such delivery, no log
	one, err := st.Attempts(ctx, claimed[0].ID)
	is.NoErr(err)
	is.Equal(one, first) // Attempts is the same log for one delivery
}
