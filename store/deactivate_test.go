package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// backlogStore is a store with a platform webhook for every record, and waiting
// deliveries to it for n records: the first due now, the rest in an hour (failed
// tries waiting for their retry, as a failing endpoint's backlog).
func backlogStore(t *testing.T, due, later int) (*store.Store, store.Subscription) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "platform", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	wh, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://example.org/all", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	for i := range due + later {
		window := time.Duration(0)
		if i >= due {
			window = time.Hour
		}
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(i)}}, window)
		is.NoErr(err)
	}
	return st, wh
}

// waiting counts the webhook's deliveries by state, and checks that every dead one
// says it was not sent because the webhook was deactivated, and was never tried.
func waiting(t *testing.T, st *store.Store, uid string) (pending, dead int) {
	t.Helper()
	is := is.New(t)
	ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{Webhook: uid, Limit: 1000})
	is.NoErr(err)
	for _, d := range ds {
		switch d.State {
		case store.StatePending:
			pending++
		case store.StateDead:
			dead++
			is.True(strings.HasPrefix(d.LastError, "not sent: subscription deactivated (")) // why it died
			is.Equal(d.Attempts, 0)                                                         // unsent
		default:
			t.Fatalf("delivery %d is %s", d.ID, d.StateName())
		}
	}
	return pending, dead
}

// TestDeactivationKillsBacklogInBatches: deactivating a webhook turns at most a batch
// of what it has waiting dead in its own transaction; the rest die unsent, when
// claimed or in the retention pass, a batch at a time.
func TestDeactivationKillsBacklogInBatches(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	st, wh := backlogStore(t, 4, 8)
	_, err := st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
	is.NoErr(err)
	pending, dead := waiting(t, st, wh.UID)
	is.Equal(dead, 3)    // a batch at once
	is.Equal(pending, 9) // the rest still waits
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 0) // what is due is claimed, and dies instead of going out
	pending, dead = waiting(t, st, wh.UID)
	is.True(pending <= 8 && pending >= 5) // the due ones of the nine, one to four
	is.Equal(pending+dead, 12)
	for left := pending; left > 0; {
		n, err := st.KillInactivePending(ctx, 2)
		is.NoErr(err)
		is.Equal(n, min(left, 2)) // two at a time
		left -= n
	}
	n, err := st.KillInactivePending(ctx, 2)
	is.NoErr(err)
	is.Equal(n, 0) // nothing left
	pending, dead = waiting(t, st, wh.UID)
	is.Equal(pending, 0)
	is.Equal(dead, 12)
}

// TestReactivationKillsWhatDeactivationLeft: reactivating a webhook before the rest
// of its backlog died turns it dead first: a deactivation's waiting deliveries are
// never sent by a reactivation.
func TestReactivationKillsWhatDeactivationLeft(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	st, wh := backlogStore(t, 0, 10)
	_, err := st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
	is.NoErr(err)
	_, err = st.SetSubscriptionActive(ctx, wh.UID, true, "")
	is.NoErr(err)
	pending, dead := waiting(t, st, wh.UID)
	is.Equal(pending, 0)
	is.Equal(dead, 10)
	n, err := st.KillInactivePending(ctx, 100)
	is.NoErr(err)
	is.Equal(n, 0) // and the live webhook's new deliveries are nobody's to kill
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	n, err = st.KillInactivePending(ctx, 100)
	is.NoErr(err)
	is.Equal(n, 0)
}
