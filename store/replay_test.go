package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestBulkReplayBatches: a bulk replay replays its rows a batch at a time, and
// replays the rows one batch would, whatever the batch's size: the same counts,
// and every delivery the same afterwards, though a finished delivery is replayed
// into its pair's waiting row in one batch and that row comes in another.
func TestBulkReplayBatches(t *testing.T) {
	type result struct {
		res   []store.ReplayResult
		after []store.Delivery
	}
	var got []result
	sizes := []int{1000, 1, 2, 5}
	for _, size := range sizes {
		is := is.New(t)
		ctx := context.Background()
		sc := buildOwnerScene(t)
		restore := store.SetReplayBatch(size)
		since := sc.st.Now().Add(-24 * time.Hour)
		var r result
		total := 0
		for _, f := range []store.DeliveryFilter{
			{ClientID: sc.b, State: "dead"},
			{Visible: store.Visibility{ClientID: sc.staff, OrgID: sc.org1}, State: "failed"},
			{OrgID: sc.org3},
			{ClientID: sc.b},
			{},
		} {
			f.Since = since
			res, err := sc.st.Replay(ctx, f)
			is.NoErr(err)
			t.Logf("batch %d %+v: %+v", size, f, res)
			r.res = append(r.res, res)
			total += res.Replayed
		}
		restore()
		is.True(total > 2*5) // several batches of every size but the first
		var err error
		r.after, err = sc.st.Deliveries(ctx, store.DeliveryFilter{Limit: 100000})
		is.NoErr(err)
		for i := range r.after {
			r.after[i].SubscriptionUID = "" // made at random
		}
		got = append(got, r)
	}
	is := is.New(t)
	for i := range got[1:] {
		is.Equal(got[i+1].res, got[0].res)     // the same counts, batch by batch or at once
		is.Equal(got[i+1].after, got[0].after) // and the same rows afterwards
	}
}

// TestBulkReplayRowsMoved: a bulk replay checks each row again as it replays it. A
// row chosen that was claimed, finished, had its webhook deactivated or removed,
// or its record leave the organisation before its batch was written is left as it
// is now, and counted as what it is now (not as replayed); the others are replayed.
func TestBulkReplayRowsMoved(t *testing.T) {
	for _, size := range []int{1000, 1} {
		is := is.New(t)
		ctx := context.Background()
		st := newStore(t)
		b, err := st.CreateClient(ctx, store.NewClient{ID: "b", Name: "b", Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
		org, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
		is.NoErr(err)
		records := []string{"0000-0002-7253-3645", "0000-0001-5109-3700", "0000-0003-1415-9269", "0000-0002-1825-0097", "0000-0002-9079-593X", "0000-0001-6998-2936"}
		for _, r := range records {
			_, _, err := st.PutOrcidWebhook(ctx, b.ID, r, "https://b.example/"+r)
			is.NoErr(err)
		}
		// The last record is the organisation's member too: its webhook's delivery
		// is the one whose record leaves.
		_, err = st.PutMember(ctx, org.ID, records[5], store.MemberInfo{}, 0)
		is.NoErr(err)
		_, _, err = st.SetHubSettings(ctx, org.ID, store.HubSettings{Enabled: true, URL: "https://uni.example/orcid"})
		is.NoErr(err)
		for _, r := range records {
			_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: r}}, 0)
			is.NoErr(err)
		}
		// Every delivery failed once and waits for its retry, an hour on; the
		// organisation's is dead, not sent for its member having left (as it
		// will have again).
		is.NoErr(store.ExecWrite(ctx, st, `UPDATE deliveries SET attempts = 1, last_error = 'HTTP 500', due_at = due_at + 3600000`))
		all, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 100})
		is.NoErr(err)
		is.Equal(len(all), len(records)+1)
		of := map[string]int64{} // b's delivery of each record
		var orgs int64
		for _, d := range all {
			if d.OrgID != 0 {
				orgs = d.ID
			} else {
				of[d.Subject] = d.ID
			}
		}
		is.True(orgs != 0)
		restore := store.SetReplayBatch(size)
		var chosen []int64
		restoreHook := store.OnReplayBatch(func(ids []int64) {
			if chosen != nil {
				return // a later batch
			}
			chosen = ids
			// Between the choice and the writes: records[0]'s delivery is due and
			// claimed; records[1]'s is delivered; records[2]'s webhook is
			// deactivated, records[3]'s removed; records[5] leaves the organisation
			// while its delivery is dead for a member having left.
			is.NoErr(store.ExecWrite(ctx, st, "UPDATE deliveries SET due_at = ? WHERE id = ?", st.Now().UnixMilli(), of[records[0]]))
			claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
			is.NoErr(err)
			is.Equal(len(claimed), 1)
			is.Equal(claimed[0].ID, of[records[0]])
			is.NoErr(store.ExecWrite(ctx, st, "UPDATE deliveries SET state = 2, done_at = due_at, last_error = '' WHERE id = ?", of[records[1]]))
			is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET active = 0, reason = 'gone' WHERE client_id = ? AND orcid = ?", b.ID, records[2]))
			is.NoErr(st.DeleteOrcidWebhook(ctx, b.ID, records[3], "https://b.example/"+records[3]))
			is.NoErr(st.RemoveMembers(ctx, org.ID, records[5]))
			is.NoErr(store.ExecWrite(ctx, st, "UPDATE deliveries SET state = 3, done_at = due_at, last_error = ? WHERE id = ?",
				"not sent: the record is no longer a member of the organisation", orgs))
		})
		before, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 100})
		is.NoErr(err)
		res, err := st.Replay(ctx, store.DeliveryFilter{Since: st.Now().Add(-time.Hour)})
		restoreHook()
		restore()
		is.NoErr(err)
		is.Equal(len(chosen), len(records)+1) // every failed one, as it was then
		// records[4]'s and [5]'s replayed; records[2]'s counted as its webhook's
		// deactivation left it; the organisation's counted as its record's leaving.
		is.Equal(res, store.ReplayResult{Replayed: 2, Deactivated: 1, NotMembers: 1})
		after, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 100})
		is.NoErr(err)
		was := map[int64]store.Delivery{}
		for _, d := range before {
			was[d.ID] = d
		}
		for _, d := range after {
			switch d.ID {
			case of[records[0]]:
				is.Equal(d.StateName(), "in-flight") // claimed: not made due again under its call
				is.Equal(d.AttemptBase, 0)
				is.True(d.ReplayedAt.IsZero())
			case of[records[1]]:
				is.Equal(d.StateName(), "delivered") // finished: the filter no longer takes it
				is.True(d.ReplayedAt.IsZero())
			case of[records[2]]:
				is.Equal(d.StateName(), "failed") // its webhook deactivated
				is.True(d.ReplayedAt.IsZero())
			case of[records[3]]:
				is.Equal(d.StateName(), "dead") // its webhook removed: history
				is.True(!d.RemovedAt.IsZero())
				is.True(d.ReplayedAt.IsZero())
			case orgs:
				is.Equal(d.StateName(), "dead") // not a member
				is.True(d.ReplayedAt.IsZero())
			case of[records[4]], of[records[5]]:
				is.Equal(d.StateName(), "pending") // replayed: due now, a fresh budget
				is.Equal(d.AttemptBase, 1)
				is.True(!d.DueAt.After(st.Now()))
				is.Equal(d.ReplayedAt, st.Now().Truncate(time.Millisecond))
			default:
				t.Errorf("delivery %d: unexpected", d.ID)
			}
		}
		is.True(slices.Equal(chosen, slices.Sorted(slices.Values(chosen))))
	}
}

// TestBulkReplayStoppedPartWay: a bulk replay whose batch fails (here the database
// refuses writes from the second batch on) keeps what the batches before did, says
// so (Stopped, with their counts, and in its audit detail), and leaves the rest as
// they were; the same replay again replays the rest.
func TestBulkReplayStoppedPartWay(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	b, err := st.CreateClient(ctx, store.NewClient{ID: "b", Name: "b", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	records := []string{"0000-0002-7253-3645", "0000-0001-5109-3700", "0000-0003-1415-9269", "0000-0002-1825-0097", "0000-0002-9079-593X"}
	for _, r := range records {
		_, _, err := st.PutOrcidWebhook(ctx, b.ID, r, "https://b.example/"+r)
		is.NoErr(err)
		_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: r}}, 0)
		is.NoErr(err)
	}
	is.NoErr(store.ExecWrite(ctx, st, `UPDATE deliveries SET state = 3, attempts = 1, last_error = 'HTTP 500', done_at = due_at`))
	restore := store.SetReplayBatch(2)
	defer restore()
	calls := 0
	restoreHook := store.OnReplayBatch(func([]int64) {
		if calls++; calls == 2 {
			is.NoErr(st.QueryOnly(ctx, true))
		}
	})
	f := store.DeliveryFilter{Since: st.Now().Add(-time.Hour)}
	res, err := st.Replay(ctx, f)
	restoreHook()
	is.True(err != nil)
	is.Equal(res, store.ReplayResult{Replayed: 2, Stopped: true}) // the first batch's
	is.True(strings.HasSuffix(f.ReplayDetail(res), "2 replayed, 0 left (webhook deactivated); "+store.ReplayStopped))
	is.NoErr(st.QueryOnly(ctx, false))
	states := func() (out []string) {
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 100})
		is.NoErr(err)
		for _, d := range slices.Backward(ds) {
			out = append(out, d.StateName())
		}
		return out
	}
	is.Equal(states(), []string{"pending", "pending", "dead", "dead", "dead"}) // the oldest replayed, the rest as they were
	res, err = st.Replay(ctx, f)
	is.NoErr(err)
	is.Equal(res, store.ReplayResult{Replayed: 3}) // the rest
	is.Equal(states(), []string{"pending", "pending", "pending", "pending", "pending"})
}
