package store_test

import (
	"context"
	"slices"
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

// TestOwnerListsWindowed: an owner's list of deliveries, which reads the newest
// ids in order before it gathers and sorts the rest, lists the same deliveries,
// page after page, as gathering and sorting them all, whatever the window's size
// against the pages and the owners' share of the rows. The rows interleave three
// owners (two clients, one of them an organisation's staff, and the
// organisation), in every state, with a removed webhook's history among them.
func TestOwnerListsWindowed(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	f := newFixture(t, st)
	gone, _, err := st.PutOrcidWebhook(ctx, f.a.ID, "0000-0001-5109-3700", "https://a.example/gone")
	is.NoErr(err)
	records := []string{"0000-0002-7253-3645", f.orgMember, "0000-0001-5109-3700", "0000-0003-1415-9269"}
	for i := range 40 {
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: records[i%len(records)]}, {Orcid: records[i*7%len(records)]}}, 0)
		is.NoErr(err)
		if i < 39 { // each round but the last finishes what waits, a third dead, so every event makes rows
			err = store.ExecWrite(ctx, st, "UPDATE deliveries SET state = 2 + (id % 3 = 0), done_at = due_at WHERE state = 0")
			is.NoErr(err)
		}
		if i == 25 {
			is.NoErr(st.RemoveSubscription(ctx, gone.UID)) // its history stays client a's
		}
	}
	list := func(f store.DeliveryFilter) []int64 {
		var ids []int64
		for f.Limit = 3; ; f.BeforeID = ids[len(ids)-1] {
			page, err := st.Deliveries(ctx, f)
			is.NoErr(err)
			for _, d := range page {
				ids = append(ids, d.ID)
			}
			if len(page) < f.Limit {
				return ids
			}
		}
	}
	filters := []store.DeliveryFilter{
		{Visible: store.Visibility{ClientID: f.a.ID}},
		{Visible: store.Visibility{ClientID: f.b.ID}},
		{Visible: store.Visibility{OrgID: f.org.ID}},
		{Visible: store.Visibility{ClientID: f.a.ID, OrgID: f.org.ID}},
		{ClientID: "a"},
		{OrgID: f.org.ID},
		{Visible: store.Visibility{ClientID: f.a.ID}, State: "dead"},
		{Visible: store.Visibility{ClientID: f.a.ID}, Orcid: "0000-0001-5109-3700"},
	}
	restore := store.SetDeliveriesWindow(0)
	var want [][]int64
	for _, f := range filters {
		want = append(want, list(f))
	}
	restore()
	is.True(len(want[0]) > 60 && len(want[1]) >= 10 && len(want[2]) > 10 && len(want[6]) > 10 && len(want[7]) > 10) // the owners have rows to page through
	for _, window := range []int64{1, 2, 5, 16, 1000} {
		restore := store.SetDeliveriesWindow(window)
		for i, f := range filters {
			is.Equal(list(f), want[i]) // the same list, window by window
		}
		// Every owner big: each walks on down the ids past the window; or walks a
		// few ids more and then gathers the rest.
		big := store.SetBigOwner(1000, 1)
		for _, walk := range []struct{ gather, ids int64 }{{1, 0}, {1000, 1}, {1000, 3}, {1000, 1000}} {
			restoreWalk := store.SetOwnerWalk(walk.gather, walk.ids)
			for i, f := range filters {
				is.Equal(list(f), want[i]) // the same list, walked
			}
			restoreWalk()
		}
		big()
		restore()
	}
}

// TestBigOwnerWalks: the list of deliveries of an owner of a large share of the
// subscriptions, whose newest deliveries are not its own, walks on down the ids
// past the first window instead of gathering its rows and sorting them, and lists
// what gathering them would; an owner of few subscriptions still gathers.
func TestBigOwnerWalks(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	f := newFixture(t, st)
	records := []string{"0000-0002-7253-3645", "0000-0001-5109-3700", "0000-0003-1415-9269", "0000-0002-1825-0097"}
	for _, id := range records {
		_, _, err := st.PutOrcidWebhook(ctx, f.b.ID, id, "https://b.example/"+id)
		is.NoErr(err)
	}
	// b's deliveries first, then a's (its platform webhook takes every record's)
	// and the organisation's, newer than b's.
	for round := range 2 {
		for i := range 10 {
			_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: records[i%len(records)]}}, 0)
			is.NoErr(err)
			err = store.ExecWrite(ctx, st, "UPDATE deliveries SET state = 2, done_at = due_at WHERE state = 0")
			is.NoErr(err)
		}
		if round == 0 {
			is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET active = 0 WHERE client_id = ?", f.b.ID))
		}
	}
	restoreWindow := store.SetDeliveriesWindow(5)
	defer restoreWindow()
	gathered, err := st.Deliveries(ctx, store.DeliveryFilter{ClientID: "b", Limit: 4})
	is.NoErr(err)
	is.Equal(len(gathered), 4)
	restore := store.SetBigOwner(2, 1) // b has more than half the subscriptions
	walked, err := st.Deliveries(ctx, store.DeliveryFilter{ClientID: "b", Limit: 4})
	restore()
	is.NoErr(err)
	is.Equal(walked, gathered)
}

// TestParseMessageID: a webhook-id is read back only as MessageID writes it.
func TestParseMessageID(t *testing.T) {
	is := is.New(t)
	for s, want := range map[string][2]int64{"msg_5": {5, 0}, "msg_5_2": {5, 2}, "msg_123456789_10": {123456789, 10}} {
		id, rev, ok := store.ParseMessageID(s)
		is.True(ok)
		is.Equal([2]int64{id, int64(rev)}, want)
		is.Equal(store.MessageID(id, rev), s)
	}
	for _, s := range []string{"", "msg_", "msg_0", "msg_05", "msg_-5", "msg_+5", "msg_5_0", "msg_5_02", "msg_5_x", "msg_5_1_1", "msg_5_", "evt_5", "msg_99999999999999999999"} {
		_, _, ok := store.ParseMessageID(s)
		is.True(!ok) // not one of hookd's
	}
}

// TestBigOwnerReplays: a bulk replay of an owner of a large share of the
// subscriptions, which tests each row's owner instead of gathering the owner's
// subscriptions first, replays what the gathering one replays: the owner's failed
// and dead deliveries of the time, every state or one, and no one else's.
func TestBigOwnerReplays(t *testing.T) {
	type outcome struct {
		dead, rest store.ReplayResult
		states     []string // every delivery's, in id order, afterwards
	}
	var got []outcome
	for _, big := range []bool{false, true} {
		is := is.New(t)
		ctx := context.Background()
		st := newStore(t)
		f := newFixture(t, st)
		records := []string{"0000-0002-7253-3645", "0000-0001-5109-3700", "0000-0003-1415-9269", "0000-0002-1825-0097"}
		for _, id := range records {
			_, _, err := st.PutOrcidWebhook(ctx, f.b.ID, id, "https://b.example/"+id)
			is.NoErr(err)
		}
		for i := range 12 {
			_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: records[i%len(records)]}}, 0)
			is.NoErr(err)
			// A third dead, a third failed (tried, pending again), a third delivered.
			err = store.ExecWrite(ctx, st, `UPDATE deliveries SET state = CASE id % 3 WHEN 0 THEN 3 WHEN 1 THEN 0 ELSE 2 END,
				attempts = 1, done_at = CASE id % 3 WHEN 1 THEN NULL ELSE due_at END WHERE state = 0 AND attempts = 0`)
			is.NoErr(err)
		}
		restore := store.SetBigOwner(1000, 1)
		if !big {
			restore()
		}
		since := st.Now().Add(-time.Hour)
		var o outcome
		var err error
		o.dead, err = st.Replay(ctx, store.DeliveryFilter{ClientID: "b", State: "dead", Since: since})
		is.NoErr(err)
		o.rest, err = st.Replay(ctx, store.DeliveryFilter{ClientID: "b", Since: since})
		is.NoErr(err)
		restore()
		all, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 1000})
		is.NoErr(err)
		for _, d := range all {
			o.states = append(o.states, d.ClientName+" "+d.StateName())
		}
		is.True(o.dead.Replayed > 0 && o.rest.Replayed > 0) // b's dead ones, then its failed ones
		got = append(got, o)
	}
	is := is.New(t)
	is.Equal(got[1], got[0]) // the same replays, and the same states after them
	is.True(slices.Contains(got[0].states, "a dead"))
}
