package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// openerAt opens stores, all with one key (a database and its copies), with a clock
// that stands at now.
func openerAt(t *testing.T, now time.Time) func(path string) *store.Store {
	box := newBox(t)
	return func(path string) *store.Store {
		st := openAt(t, path, box)
		st.Now = func() time.Time { return now }
		return st
	}
}

// TestLineageMovesIDsOfACopy: a backup restored (a database whose mark is not the
// one its daemon's lock file kept) gives its new deliveries ids past any the
// original gave after the backup, so that no webhook-id is sent twice for two
// messages; the original itself, and a database without a mark, move nothing.
func TestLineageMovesIDsOfACopy(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	open := openerAt(t, now)
	st := open(filepath.Join(dir, "hookd.db"))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	records := []string{"0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700"}
	for _, r := range records {
		_, _, err = st.PutOrcidWebhook(ctx, c.ID, r, "https://example.org/"+r)
		is.NoErr(err)
	}
	event := func(st *store.Store, record string) store.Claimed {
		t.Helper()
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: record}}, 0)
		is.NoErr(err)
		claimed, err := st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1)
		return claimed[0]
	}
	issued := func(st *store.Store) int64 {
		t.Helper()
		n, err := st.DeliveriesIssued(ctx)
		is.NoErr(err)
		return n
	}

	// lineage gives st the mark next, as the daemon does once its lock file has it.
	lineage := func(st *store.Store, seen store.Seen) (string, int64) {
		t.Helper()
		next := store.NewMark()
		moved, err := st.Lineage(ctx, seen, next)
		is.NoErr(err)
		return next, moved
	}

	first, moved := lineage(st, store.Seen{}) // a new database: nothing to move
	is.Equal(moved, int64(0))
	is.Equal(event(st, records[0]).ID, int64(1))
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: records[1]}}, 0) // delivery 2 waits
	is.NoErr(err)
	backup := filepath.Join(dir, "backup.db")
	is.NoErr(st.Backup(ctx, backup)) // holds first, and delivery 2 waiting
	second, moved := lineage(st, store.Seen{Marks: []string{first}, Issued: issued(st)})
	is.Equal(moved, int64(0)) // the daemon's own database
	is.True(second != first)
	sent, err := st.Claim(ctx, 10, time.Minute) // the original sends delivery 2 as msg_2
	is.NoErr(err)
	is.Equal(len(sent), 1)
	is.Equal(store.MessageID(sent[0].ID, sent[0].Rev), "msg_2")
	is.NoErr(store.ExecWrite(ctx, st, "UPDATE deliveries SET msg_rev = 3 WHERE id = 2")) // and revised it, up to msg_2_3
	is.Equal(event(st, records[2]).ID, int64(3))                                         // and makes delivery 3, msg_3
	seen := store.Seen{Marks: []string{second}, Issued: issued(st)}
	is.NoErr(st.Close())

	restored := open(backup)
	_, moved = lineage(restored, seen) // the lock file's mark and ids are past the backup's
	is.Equal(moved, now.UnixMicro())   // its new deliveries start past any the original gave
	again := event(restored, records[1])
	is.Equal(again.ID, int64(2))                                                        // the waiting delivery 2, with a new event
	is.Equal(store.MessageID(again.ID, again.Rev), store.MessageID(2, int(now.Unix()))) // as a new message, past any the original sent
	id := event(restored, records[2]).ID
	is.True(id >= now.UnixMicro() && id < 1<<53) // not msg_3 again, for another message; below 2^53, as JSON's numbers go

	original := open(filepath.Join(dir, "hookd.db"))
	third, moved := lineage(original, store.Seen{Marks: []string{"stopped between the lock file and the database", second}, Issued: seen.Issued})
	is.Equal(moved, int64(0))                                                    // the original, its mark the file's previous one
	_, err = original.Intake(ctx, "", "", []store.Event{{Orcid: records[0]}}, 0) // beside delivery 1, still out
	is.NoErr(err)
	is.Equal(issued(original), int64(4)) // counts on
	_, moved = lineage(original, store.Seen{Marks: []string{third}, Issued: issued(original), Elsewhere: true})
	is.True(moved > 0) // a lock file of another machine's: a copy

	// A new database where one gave deliveries before: its ids are past the old one's.
	fresh := open(filepath.Join(t.TempDir(), "hookd.db"))
	_, moved = lineage(fresh, store.Seen{Marks: []string{third}, Issued: 4})
	is.Equal(moved, now.UnixMicro())

	// A database from before marks beside a lock file without any moves nothing.
	is.NoErr(store.ExecWrite(ctx, original, "DELETE FROM lineage"))
	_, moved = lineage(original, store.Seen{})
	is.Equal(moved, int64(0))
}

// TestCopysReplayedDeliveryTakesNewRevision: a delivery finished in the backup
// (dead, or delivered), which the original replayed and revised since, goes out
// of the restored copy, replayed there and given another event, under a
// webhook-id the original did not give.
func TestCopysReplayedDeliveryTakesNewRevision(t *testing.T) {
	for _, tc := range []struct {
		name   string
		finish func(t *testing.T, st *store.Store, c store.Claimed, now time.Time)
	}{
		{"dead", func(t *testing.T, st *store.Store, _ store.Claimed, _ time.Time) {
			is.New(t).NoErr(store.ExecWrite(context.Background(), st, "UPDATE deliveries SET state = 3, done_at = 1, lease_until = NULL WHERE id = 1")) // dead after its attempt
		}},
		{"delivered", func(t *testing.T, st *store.Store, c store.Claimed, now time.Time) {
			_, err := st.Exchange(context.Background(), []store.Outcome{{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID,
				Kind: store.OutcomeDelivered, Attempt: c.Attempt, StartedAt: now, Status: 204}}, 0, time.Minute)
			is.New(t).NoErr(err) // delivered as msg_1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			dir := t.TempDir()
			now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			open := openerAt(t, now)
			st := open(filepath.Join(dir, "hookd.db"))
			c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
			is.NoErr(err)
			r := "0000-0002-7253-3645"
			_, _, err = st.PutOrcidWebhook(ctx, c.ID, r, "https://example.org/"+r)
			is.NoErr(err)
			first := store.NewMark()
			_, err = st.Lineage(ctx, store.Seen{}, first)
			is.NoErr(err)
			_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: r}}, 0)
			is.NoErr(err)
			claimed, err := st.Claim(ctx, 10, time.Minute)
			is.NoErr(err)
			is.Equal(len(claimed), 1)
			tc.finish(t, st, claimed[0], now)
			backup := filepath.Join(dir, "backup.db")
			is.NoErr(st.Backup(ctx, backup))
			second := store.NewMark()
			_, err = st.Lineage(ctx, store.Seen{Marks: []string{first}, Issued: 1}, second)
			is.NoErr(err)
			// The original replays delivery 1 and takes in an event: msg_1_1.
			_, err = st.Replay(ctx, store.DeliveryFilter{ID: 1})
			is.NoErr(err)
			_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: r}}, 0)
			is.NoErr(err)
			ds, err := st.Deliveries(ctx, store.DeliveryFilter{ID: 1})
			is.NoErr(err)
			original := ds[0].MessageID()
			is.True(original != "msg_1") // a new message
			is.NoErr(st.Close())

			restored := open(backup)
			moved, err := restored.Lineage(ctx, store.Seen{Marks: []string{second}, Issued: 1}, store.NewMark())
			is.NoErr(err)
			is.True(moved > 0) // taken for a copy
			_, err = restored.Replay(ctx, store.DeliveryFilter{ID: 1})
			is.NoErr(err)
			_, err = restored.Intake(ctx, "", "", []store.Event{{Orcid: r, Type: "CREATED"}}, 0)
			is.NoErr(err)
			ds, err = restored.Deliveries(ctx, store.DeliveryFilter{ID: 1})
			is.NoErr(err)
			is.True(ds[0].MessageID() != original) // not the original's webhook-id for other content
		})
	}
}

// TestLineageRevisionFloor: a copy's deliveries take a revision past every one
// they held (their own, the floor of an earlier move, a revision past the current
// time), read through the lineage row, and the same in the claim and in the
// history; a delivery made after the move is msg_<id>, as in any database, and
// one revised after it counts on from the floor. A second move goes past all of it.
func TestLineageRevisionFloor(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st := openerAt(t, now)(filepath.Join(t.TempDir(), "hookd.db"))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	records := []string{"0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700"}
	for _, r := range records {
		_, _, err = st.PutOrcidWebhook(ctx, c.ID, r, "https://example.org/"+r)
		is.NoErr(err)
	}
	// claim makes an event for record and claims its delivery.
	claim := func(record string) store.Claimed {
		t.Helper()
		_, err := st.Intake(ctx, "", "", []store.Event{{Orcid: record}}, 0)
		is.NoErr(err)
		claimed, err := st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1)
		return claimed[0]
	}
	// history is delivery id's webhook-id as the history reads it.
	history := func(id int64) string {
		t.Helper()
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{ID: id})
		is.NoErr(err)
		is.Equal(len(ds), 1)
		return ds[0].MessageID()
	}
	first := store.NewMark()
	_, err = st.Lineage(ctx, store.Seen{}, first)
	is.NoErr(err)
	one := claim(records[0]) // msg_1, out
	is.Equal(store.MessageID(one.ID, one.Rev), "msg_1")
	two := claim(records[1]) // msg_2, revised past the clock (by a clock once ahead)
	is.NoErr(store.ExecWrite(ctx, st, "UPDATE deliveries SET msg_rev = ? WHERE id = ?", now.Unix()+5, two.ID))

	moved, err := st.Lineage(ctx, store.Seen{Marks: []string{first}, Elsewhere: true}, store.NewMark()) // taken for a copy
	is.NoErr(err)
	is.True(moved > two.ID)
	floor := int(now.Unix()) + 6 // past delivery 2's revision
	is.Equal(history(one.ID), store.MessageID(one.ID, floor))
	is.Equal(history(two.ID), store.MessageID(two.ID, floor))
	fresh := claim(records[2]) // made after the move: no revision
	is.True(fresh.ID >= moved)
	is.Equal(store.MessageID(fresh.ID, fresh.Rev), fmt.Sprintf("msg_%d", fresh.ID))
	is.Equal(history(fresh.ID), store.MessageID(fresh.ID, 0))

	// Delivery 1's call fails; an event meanwhile revises it past the floor, which
	// its next claim sends.
	_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: one.ID, SubscriptionID: one.Target.SubscriptionID, Kind: store.OutcomeRetry,
		Attempt: one.Attempt, StartedAt: now, Status: 500, RetryAt: now}}, 0, time.Minute)
	is.NoErr(err)
	again := claim(records[0])
	is.Equal(again.ID, one.ID)
	is.Equal(store.MessageID(again.ID, again.Rev), store.MessageID(one.ID, floor+1))
	is.Equal(history(one.ID), store.MessageID(one.ID, floor+1))

	// A second move, the clock where it was: past every revision again.
	_, err = st.Lineage(ctx, store.Seen{Elsewhere: true}, store.NewMark())
	is.NoErr(err)
	for _, id := range []int64{one.ID, two.ID, fresh.ID} {
		is.Equal(history(id), store.MessageID(id, floor+2))
	}
}
