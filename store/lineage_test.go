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
	history := func(id int64) string { return webhookIDOf(t, st, id) }
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

// TestCopysRevisionsCountOnFromTheFloor: each statement that gives a delivery the
// copy held a new revision (an event merged into it, a test event, a member's
// CREATED, a call back whose row takes in its waiting twin or carries on in the
// replayed one, a replay into the waiting row) gives it the floor's next, and the
// revision after that the next again: neither its own count, which the original
// may have given, nor the floor, under which the copy may have sent it already.
func TestCopysRevisionsCountOnFromTheFloor(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	floor := int(now.Unix()) // nothing was revised before the move, which is at now
	for _, tc := range []struct {
		name string
		// before makes the deliveries the copy holds, as its original did, and
		// returns the one whose revisions the case follows.
		before func(c *floorCopy) int64
		// revise is what gives delivery id its next revision in the copy.
		revise func(c *floorCopy, id int64)
	}{
		{"an event", func(c *floorCopy) int64 {
			return c.fail(c.claim(c.event(c.record))) // waits for its retry
		}, func(c *floorCopy, _ int64) {
			c.event(c.record)
		}},
		{"a test event", func(c *floorCopy) int64 {
			return c.fail(c.claim(c.event(c.record)))
		}, func(c *floorCopy, _ int64) {
			_, err := c.st.SendTestEvent(context.Background(), c.webhook.UID, "")
			is.New(c.t).NoErr(err)
		}},
		{"a member's CREATED", func(c *floorCopy) int64 {
			is := is.New(c.t)
			id := c.deliver(c.claim(c.event(c.member)))
			is.Equal(c.claimed[id].Target.SubscriptionID, c.hub.ID) // the organisation's
			is.NoErr(c.st.RemoveMember(context.Background(), c.org, c.member))
			return id
		}, func(c *floorCopy, id int64) {
			is := is.New(c.t)
			_, err := c.st.Replay(context.Background(), store.DeliveryFilter{ID: id}) // waits again
			is.NoErr(err)
			created, err := c.st.PutMember(context.Background(), c.org, c.member, store.MemberInfo{}, 0) // a member again
			is.NoErr(err)
			is.True(created)
		}},
		{"a call back that takes in its waiting twin", func(c *floorCopy) int64 {
			return c.claim(c.event(c.record)) // out on a call
		}, func(c *floorCopy, id int64) {
			c.event(c.record) // a row waits beside it
			c.fail(id)        // and goes into it as it comes back
		}},
		{"a call back that carries on in the replayed row", func(c *floorCopy) int64 {
			done := c.deliver(c.claim(c.event(c.record)))
			c.claim(c.event(c.record)) // out on a call
			return done
		}, func(c *floorCopy, id int64) {
			_, err := c.st.Replay(context.Background(), store.DeliveryFilter{ID: id}) // the delivered one waits again
			is.New(c.t).NoErr(err)
			for out := range c.claimed {
				if out != id {
					c.fail(out) // and carries on what comes back
				}
			}
		}},
		{"a replay into the waiting row", func(c *floorCopy) int64 {
			c.deliver(c.claim(c.event(c.record)))
			return c.fail(c.claim(c.event(c.record))) // waits for its retry
		}, func(c *floorCopy, id int64) {
			for done := range c.claimed {
				if done != id {
					_, err := c.st.Replay(context.Background(), store.DeliveryFilter{ID: done}) // goes into it
					is.New(c.t).NoErr(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			st := openerAt(t, now)(filepath.Join(t.TempDir(), "hookd.db"))
			c := &floorCopy{t: t, st: st, record: "0000-0002-7253-3645", member: "0000-0002-1825-0097", claimed: map[int64]store.Claimed{}}
			cl, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
			is.NoErr(err)
			c.webhook, _, err = st.PutOrcidWebhook(ctx, cl.ID, c.record, "https://example.org/"+c.record)
			is.NoErr(err)
			o, err := st.CreateOrganisation(ctx, "A", "tech@a.example")
			is.NoErr(err)
			c.org = o.ID
			_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://a.example/hub"})
			is.NoErr(err)
			subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{OrgID: o.ID})
			is.NoErr(err)
			is.Equal(len(subs), 1)
			c.hub = subs[0]
			_, err = st.PutMember(ctx, o.ID, c.member, store.MemberInfo{}, 0)
			is.NoErr(err)
			is.NoErr(store.ExecWrite(ctx, st, "DELETE FROM deliveries")) // its CREATED: the case makes its own
			mark := store.NewMark()
			_, err = st.Lineage(ctx, store.Seen{}, mark)
			is.NoErr(err)

			id := tc.before(c)
			moved, err := st.Lineage(ctx, store.Seen{Marks: []string{mark}, Elsewhere: true}, store.NewMark()) // taken for a copy
			is.NoErr(err)
			is.True(moved > id)
			is.Equal(c.history(id), store.MessageID(id, floor)) // the floor, under which it may be sent

			tc.revise(c, id)
			is.Equal(c.history(id), store.MessageID(id, floor+1)) // past it
			sent := c.claimed[c.claim(id)]
			is.Equal(store.MessageID(sent.ID, sent.Rev), store.MessageID(id, floor+1)) // and sent so
			c.fail(id)
			if sent.Target.SubscriptionID == c.hub.ID {
				c.event(c.member)
			} else {
				c.event(c.record)
			}
			is.Equal(c.history(id), store.MessageID(id, floor+2)) // and on from there
		})
	}
}

// floorCopy is a database for TestCopysRevisionsCountOnFromTheFloor: a webhook
// for record, an organisation's (hub) with member as its member, and what its
// claims took.
type floorCopy struct {
	t            *testing.T
	st           *store.Store
	webhook, hub store.Subscription
	org          int64
	record       string
	member       string
	claimed      map[int64]store.Claimed
}

// event makes an event about record, due now, and returns the delivery that waits
// with it.
func (c *floorCopy) event(record string) int64 {
	c.t.Helper()
	_, err := c.st.Intake(context.Background(), "", "", []store.Event{{Orcid: record}}, 0)
	is.New(c.t).NoErr(err)
	ds, err := c.st.Deliveries(context.Background(), store.DeliveryFilter{Orcid: record})
	is.New(c.t).NoErr(err)
	for _, d := range ds {
		if d.State == store.StatePending {
			return d.ID
		}
	}
	c.t.Fatalf("no delivery of %s waits: %+v", record, ds)
	return 0
}

// claim claims what is due, which must take delivery id.
func (c *floorCopy) claim(id int64) int64 {
	c.t.Helper()
	claimed, err := c.st.Claim(context.Background(), 10, time.Minute)
	is.New(c.t).NoErr(err)
	for _, cl := range claimed {
		c.claimed[cl.ID] = cl
	}
	for _, cl := range claimed {
		if cl.ID == id {
			return id
		}
	}
	c.t.Fatalf("delivery %d not claimed: %+v", id, claimed)
	return 0
}

// fail and deliver record the outcome of delivery id's claimed call: a failure,
// due again at once, or a success.
func (c *floorCopy) fail(id int64) int64 {
	c.t.Helper()
	return c.outcome(id, store.OutcomeRetry, 500)
}

func (c *floorCopy) deliver(id int64) int64 {
	c.t.Helper()
	return c.outcome(id, store.OutcomeDelivered, 204)
}

func (c *floorCopy) outcome(id int64, kind store.OutcomeKind, status int) int64 {
	c.t.Helper()
	cl := c.claimed[id]
	now := c.st.Now()
	_, err := c.st.Exchange(context.Background(), []store.Outcome{{DeliveryID: id, SubscriptionID: cl.Target.SubscriptionID, Kind: kind,
		Attempt: cl.Attempt, StartedAt: now, Status: status, RetryAt: now}}, 0, time.Minute)
	is.New(c.t).NoErr(err)
	return id
}

// history is delivery id's webhook-id as the history reads it.
func (c *floorCopy) history(id int64) string { return webhookIDOf(c.t, c.st, id) }

// webhookIDOf is delivery id's webhook-id in st, as the history reads it.
func webhookIDOf(t *testing.T, st *store.Store, id int64) string {
	t.Helper()
	ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{ID: id})
	is.New(t).NoErr(err)
	is.New(t).Equal(len(ds), 1)
	return ds[0].MessageID()
}

// TestLineageSecondMoveGoesPastTheFirstFloor: a copy of a copy, taken for one
// within the same second as the copy it was taken of (or on a clock behind it),
// gives the deliveries it holds a revision past the first floor, under which the
// first copy sends them (though it wrote none of them), and past it too the ones
// the first copy made.
func TestLineageSecondMoveGoesPastTheFirstFloor(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	st := openerAt(t, now)(filepath.Join(t.TempDir(), "hookd.db"))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	r := "0000-0002-7253-3645"
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, r, "https://example.org/"+r)
	is.NoErr(err)
	history := func(id int64) string { return webhookIDOf(t, st, id) }
	mark := store.NewMark()
	_, err = st.Lineage(ctx, store.Seen{}, mark)
	is.NoErr(err)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: r}}, 0)
	is.NoErr(err)

	first := store.NewMark()
	moved, err := st.Lineage(ctx, store.Seen{Marks: []string{mark}, Elsewhere: true}, first)
	is.NoErr(err)
	is.True(moved > 1)
	floor := int(now.Unix())
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	is.Equal(store.MessageID(claimed[0].ID, claimed[0].Rev), store.MessageID(1, floor)) // sent so by the first copy
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: r}}, 0)                       // the row made after the move
	is.NoErr(err)
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{State: "pending"})
	is.NoErr(err)
	is.Equal(len(ds), 1)
	made := ds[0].ID
	is.True(made >= moved)
	is.Equal(history(made), fmt.Sprintf("msg_%d", made))

	_, err = st.Lineage(ctx, store.Seen{Marks: []string{first}, Elsewhere: true}, store.NewMark()) // the second copy, the same second
	is.NoErr(err)
	is.Equal(history(1), store.MessageID(1, floor+1))
	is.Equal(history(made), store.MessageID(made, floor+1))
}

// TestLineageMovesOrganisationIDsOfACopy: a backup restored gives its new
// organisations ids past any the original gave after the backup: the original's
// ORCID Hub, a script or a console page that names an organisation made since
// by its id would act on the copy's newcomer, which took the same id. The
// original itself moves nothing.
func TestLineageMovesOrganisationIDsOfACopy(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	open := openerAt(t, now)
	st := open(filepath.Join(dir, "hookd.db"))
	first := store.NewMark()
	_, err := st.Lineage(ctx, store.Seen{}, first)
	is.NoErr(err)
	a, err := st.CreateOrganisation(ctx, "A", "it@a.example")
	is.NoErr(err)
	backup := filepath.Join(dir, "backup.db")
	is.NoErr(st.Backup(ctx, backup)) // holds A
	second := store.NewMark()
	_, err = st.Lineage(ctx, store.Seen{Marks: []string{first}}, second) // a minute on
	is.NoErr(err)
	b, err := st.CreateOrganisation(ctx, "B", "it@b.example") // made after the backup
	is.NoErr(err)
	is.Equal(b.ID, a.ID+1)
	is.NoErr(st.Close())

	restored := open(backup)
	_, err = restored.Lineage(ctx, store.Seen{Marks: []string{second}}, store.NewMark())
	is.NoErr(err)
	c, err := restored.CreateOrganisation(ctx, "C", "it@c.example")
	is.NoErr(err)
	is.True(c.ID != b.ID)                       // not B's id, for another organisation
	is.True(c.ID >= now.Unix() && c.ID < 1<<53) // past any the original can have given
	d, err := restored.CreateOrganisation(ctx, "D", "it@d.example")
	is.NoErr(err)
	is.Equal(d.ID, c.ID+1) // and on from there

	original := open(filepath.Join(dir, "hookd.db"))
	_, err = original.Lineage(ctx, store.Seen{Marks: []string{second}}, store.NewMark())
	is.NoErr(err)
	e, err := original.CreateOrganisation(ctx, "E", "it@e.example")
	is.NoErr(err)
	is.Equal(e.ID, b.ID+1) // the original counts on
}
