package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

func TestRecoverInFlight(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // client
	const id = "0000-0002-7253-3645"
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, id, "https://example.org/hook")
	is.NoErr(err) // registration
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: id}}, 0)
	is.NoErr(err) // an event
	claimed, err := st.Claim(ctx, 10, time.Hour)
	is.NoErr(err)             // claim with a long lease
	is.Equal(len(claimed), 1) // the delivery is in flight
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: id}}, 0)
	is.NoErr(err) // a second event while it is in flight: a pending twin

	again, err := st.Claim(ctx, 10, time.Hour)
	is.NoErr(err)           // claim again
	is.Equal(len(again), 0) // the lease holds: nothing to take

	n, err := st.RecoverInFlight(ctx)
	is.NoErr(err)  // recover
	is.Equal(n, 1) // the one in-flight row
	again, err = st.Claim(ctx, 10, time.Hour)
	is.NoErr(err)                        // claim after recovery
	is.Equal(len(again), 1)              // due at once, without waiting for the lease
	is.Equal(again[0].ID, claimed[0].ID) // the same delivery (its webhook-id stays)
	is.Equal(again[0].Attempt, 2)        // the interrupted attempt counts
	is.Equal(again[0].EventCount, 2)     // the twin folded in
	n, err = st.RecoverInFlight(ctx)
	is.NoErr(err)  // recover again
	is.Equal(n, 1) // only what is in flight now
}
