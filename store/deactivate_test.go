package store_test

import (
	"context"
	"errors"
	"fmt"
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

// waiting counts the webhook's deliveries by state, and how many of the waiting
// ones are due, and checks that every dead one says why (lastError) and was
// never tried.
func waiting(t *testing.T, st *store.Store, uid, lastError string) (pending, due, dead int) {
	t.Helper()
	is := is.New(t)
	ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{Webhook: uid, Limit: 1000})
	is.NoErr(err)
	for _, d := range ds {
		switch d.State {
		case store.StatePending:
			pending++
			if !d.DueAt.After(st.Now()) {
				due++
			}
		case store.StateDead:
			dead++
			is.Equal(d.LastError, lastError) // why it died
			is.Equal(d.Attempts, 0)          // unsent
		default:
			t.Fatalf("delivery %d is %s", d.ID, d.StateName())
		}
	}
	return pending, due, dead
}

// answered is the outcome of a claimed delivery's call that the receiver answered
// with a 500, as kind (a retry in an hour, dead, or handed back).
func answered(st *store.Store, c store.Claimed, kind store.OutcomeKind) store.Outcome {
	return store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: kind, Attempt: c.Attempt,
		StartedAt: st.Now(), Status: 500, Error: "HTTP 500", RetryAt: st.Now().Add(time.Hour)}
}

// TestDeactivationKillsBacklogInBatches: deactivating a webhook turns at most a batch
// of what it has waiting dead in its own transaction; the rest die unsent, when
// claimed (counted as claimed, ClaimKilled) or in the retention pass, a batch at a
// time. With a reason given (an operator's) and without (the platform API's).
func TestDeactivationKillsBacklogInBatches(t *testing.T) {
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	for _, tt := range []struct {
		name       string
		deactivate func(st *store.Store, wh store.Subscription) error
		lastError  string
	}{
		{"an operator's", func(st *store.Store, wh store.Subscription) error {
			_, err := st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
			return err
		}, "not sent: subscription deactivated (endpoint retired)"},
		{"its client's", func(st *store.Store, wh store.Subscription) error {
			_, err := st.SetWebhookActive(ctx, wh.ClientID, wh.UID, false)
			return err
		}, "not sent: subscription deactivated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			st, wh := backlogStore(t, 4, 8)
			is.NoErr(tt.deactivate(st, wh))
			pending, due, dead := waiting(t, st, wh.UID, tt.lastError)
			is.Equal(dead, 3)    // a batch at once
			is.Equal(pending, 9) // the rest still waits
			is.True(due >= 1)    // some of it due now
			killed := st.ClaimKilled()
			claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
			is.NoErr(err)
			is.Equal(len(claimed), 0)                     // what is due is claimed, and dies instead of going out
			is.Equal(st.ClaimKilled()-killed, int64(due)) // counted
			pending, _, dead = waiting(t, st, wh.UID, tt.lastError)
			is.Equal(pending, 9-due)
			is.Equal(dead, 3+due)
			for left := pending; left > 0; {
				n, err := st.KillInactivePending(ctx, 2)
				is.NoErr(err)
				is.Equal(n, min(left, 2)) // two at a time
				left -= n
			}
			n, err := st.KillInactivePending(ctx, 2)
			is.NoErr(err)
			is.Equal(n, 0) // nothing left
			pending, _, dead = waiting(t, st, wh.UID, tt.lastError)
			is.Equal(pending, 0)
			is.Equal(dead, 12)
		})
	}
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
	pending, _, dead := waiting(t, st, wh.UID, "not sent: subscription deactivated (endpoint retired)")
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

// TestRemovalKillsBacklogAhead: a removal with more waiting deliveries than one
// transaction turns dead deactivates the webhook first and turns them dead a batch a
// transaction, then removes it; they are the removed webhook's, dead, unsent.
func TestRemovalKillsBacklogAhead(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	st, wh := backlogStore(t, 4, 8)
	moves := store.AheadMoves(st)
	is.NoErr(st.RemoveSubscription(ctx, wh.UID))
	is.True(store.AheadMoves(st)-moves >= 4) // 12 waiting, 3 a transaction
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: wh.UID, Limit: 100})
	is.NoErr(err)
	is.Equal(len(ds), 12)
	for _, d := range ds {
		is.Equal(d.StateName(), "dead")
		is.Equal(d.LastError, "not sent: webhook removed")
		is.Equal(d.Attempts, 0)
		is.True(!d.RemovedAt.IsZero()) // the removed webhook's
	}
}

// TestRemovalFailingActivatesAgain: when a removal fails after it deactivated the
// webhook to kill its backlog ahead, the webhook is active again; its backlog stays
// dead (it can be replayed). So does a removal that a stop interrupted, at the
// next start.
func TestRemovalFailingActivatesAgain(t *testing.T) {
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	for name, interrupt := range map[string]func(st *store.Store, uid string) error{
		"failed": func(st *store.Store, uid string) error {
			if err := store.RemoveThenFail(ctx, st, uid); err == nil {
				t.Fatal("the removal did not fail")
			}
			return nil
		},
		"stopped": func(st *store.Store, uid string) error {
			if err := store.KillAhead(ctx, st, uid); err != nil {
				return err
			}
			n, err := st.RecoverAhead(ctx)
			if n != 1 {
				t.Errorf("recovered %d webhooks, want 1", n)
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			st, wh := backlogStore(t, 4, 8)
			is.NoErr(interrupt(st, wh.UID))
			sub, err := st.Subscription(ctx, wh.UID)
			is.NoErr(err)            // still there
			is.True(sub.Active)      // active again
			is.Equal(sub.Reason, "") //
			pending, _, dead := waiting(t, st, wh.UID, "not sent: webhook removed")
			is.Equal(pending, 0)
			is.Equal(dead, 12) // its backlog stays dead
		})
	}
}

// TestDeactivationDuringRemovalStays: a deactivation made while a removal had the
// webhook deactivated (an operator's, a 410's) replaces the removal's, so the
// webhook stays deactivated, with that reason, when the removal does not happen.
func TestDeactivationDuringRemovalStays(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	st, wh := backlogStore(t, 0, 8)
	is.NoErr(store.KillAhead(ctx, st, wh.UID)) // a removal began, and then its process stopped
	_, err := st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
	is.NoErr(err)
	_, err = st.RecoverAhead(ctx)
	is.NoErr(err)
	sub, err := st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	is.True(!sub.Active)                     // still off
	is.Equal(sub.Reason, "endpoint retired") // for the operator's reason
}

// TestRecoverKilledLater: a removal that deactivated a webhook and never came (a
// command killed beside the running daemon) is undone by the retention pass once
// it is a quarter of an hour old, never sooner.
func TestRecoverKilledLater(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	st, wh := backlogStore(t, 0, 8)
	advance := movable(st)
	is.NoErr(store.KillAhead(ctx, st, wh.UID))
	n, err := st.RecoverKilled(ctx, st.Now().Add(-15*time.Minute))
	is.NoErr(err)
	is.Equal(n, 0) // a removal may still be running
	advance(16 * time.Minute)
	n, err = st.RecoverKilled(ctx, st.Now().Add(-15*time.Minute))
	is.NoErr(err)
	is.Equal(n, 1) // no removal runs that long
	sub, err := st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	is.True(sub.Active)
}

// TestBacklogMidRemovalSaysRemoved: deliveries that die unsent while their webhook
// is deactivated ahead of its removal (killed by a claim, or by the retention pass,
// before the removal's own batches reach them) say the webhook was removed, as the
// removal's own batches do.
func TestBacklogMidRemovalSaysRemoved(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 3, 4)
	// The state a removal leaves its webhook in while it turns the backlog dead.
	is.NoErr(store.ExecWrite(ctx, st, "UPDATE subscriptions SET active = 0, reason = 'being removed' WHERE uid = ?", wh.UID))
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 0) // the three due ones die instead of going out
	n, err := st.KillInactivePending(ctx, 100)
	is.NoErr(err)
	is.Equal(n, 4) // and the retention pass turns the rest dead
	pending, _, dead := waiting(t, st, wh.UID, "not sent: webhook removed")
	is.Equal(pending, 0)
	is.Equal(dead, 7)
}

// TestTargetChanged: a claimed delivery's target knows when hookd changed its
// webhook after the claim read it, and not when only its run of failures began.
func TestTargetChanged(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 2, 0)
	claimed, err := st.Exchange(ctx, nil, 1, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	target := claimed[0].Target
	is.True(!st.Changed(target)) // as it was read
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, claimed[0], store.OutcomeRetry)}, 0, time.Minute)
	is.NoErr(err)
	is.True(!st.Changed(target)) // a run of failures begun is no change to how it goes out
	_, err = st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
	is.NoErr(err)
	is.True(st.Changed(target)) // deactivated: changed
}

// TestReplayKeepsTheWaitingRow: replaying a dead delivery of a webhook and record
// that has another waiting (one failed and waiting for its retry) goes into the
// waiting one, due now, with both rows' events; neither row nor any attempt is
// deleted.
func TestReplayKeepsTheWaitingRow(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 1, 0) // one delivery due for the record
	fail := func() store.Claimed {
		t.Helper()
		claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1)
		c := claimed[0]
		_, err = st.Exchange(ctx, []store.Outcome{answered(st, c, store.OutcomeRetry)}, 0, time.Minute)
		is.NoErr(err)
		return c
	}
	dead := fail() // attempted once, then the webhook is switched off and on: dead
	_, err := st.SetSubscriptionActive(ctx, wh.UID, false, "")
	is.NoErr(err)
	_, err = st.SetSubscriptionActive(ctx, wh.UID, true, "")
	is.NoErr(err)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	waiting := fail() // a new delivery for the record, failed, waiting for its retry
	is.True(waiting.ID != dead.ID)

	res, err := st.Replay(ctx, store.DeliveryFilter{Since: st.Now().Add(-time.Hour)})
	is.NoErr(err)
	is.Equal(res.Replayed, 2) // both
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: wh.UID, Limit: 10})
	is.NoErr(err)
	is.Equal(len(ds), 2) // neither deleted
	byID := map[int64]store.Delivery{}
	for _, d := range ds {
		byID[d.ID] = d
		log, err := st.Attempts(ctx, d.ID)
		is.NoErr(err)
		is.Equal(len(log), 1) // each keeps its attempt
	}
	is.Equal(byID[dead.ID].StateName(), "dead")       // the replayed one keeps its history as it was,
	is.True(!byID[dead.ID].ReplayedAt.IsZero())       // marked replayed,
	is.Equal(byID[waiting.ID].StateName(), "pending") // into the waiting one, with a fresh budget (pending, not failed),
	is.True(!byID[waiting.ID].DueAt.After(st.Now()))  // due now,
	is.Equal(byID[waiting.ID].EventCount, 2)          // with both rows' events
}

// TestReplayBesideOneInFlight: a finished delivery replayed while another of the
// same webhook and record is out (in flight) is not deleted when that one comes
// back to wait (failed, or handed back): the replayed one carries on with both
// rows' events, the other ends "continued as delivery N"; every attempt is kept.
func TestReplayBesideOneInFlight(t *testing.T) {
	for _, kind := range []store.OutcomeKind{store.OutcomeRetry, store.OutcomeReleased} {
		t.Run(kind.String(), func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			st, wh := backlogStore(t, 1, 0)
			claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
			is.NoErr(err)
			first := claimed[0]
			_, err = st.Exchange(ctx, []store.Outcome{answered(st, first, store.OutcomeDead)}, 0, time.Minute)
			is.NoErr(err) // tried once, dead
			_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
			is.NoErr(err)
			claimed, err = st.Exchange(ctx, nil, 10, time.Minute)
			is.NoErr(err)
			is.Equal(len(claimed), 1)
			out := claimed[0] // a second delivery for the record, out now
			res, err := st.Replay(ctx, store.DeliveryFilter{ID: first.ID})
			is.NoErr(err)
			is.Equal(res.Replayed, 1) // the dead one waits again, beside the one out

			_, err = st.Exchange(ctx, []store.Outcome{answered(st, out, kind)}, 0, time.Minute)
			is.NoErr(err) // the one out comes back to wait
			ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: wh.UID, Limit: 10})
			is.NoErr(err)
			is.Equal(len(ds), 2) // neither deleted
			byID := map[int64]store.Delivery{}
			for _, d := range ds {
				byID[d.ID] = d
			}
			is.Equal(byID[first.ID].StateName(), "pending") // the replayed one carries on,
			is.Equal(byID[first.ID].EventCount, 2)          // with both rows' events
			is.Equal(byID[out.ID].StateName(), "dead")      // the other ends in it
			is.Equal(byID[out.ID].LastError, fmt.Sprintf("continued as delivery %d", first.ID))
			log, err := st.Attempts(ctx, first.ID)
			is.NoErr(err)
			is.Equal(len(log), 1) // the replayed one's attempt kept

			// A replay leaves the one that ended in the other: its events are there.
			_, err = st.Replay(ctx, store.DeliveryFilter{ID: out.ID})
			is.True(errors.Is(err, store.ErrConflict))                                                                              // by id, refused
			is.True(strings.Contains(err.Error(), fmt.Sprintf("was continued as delivery %d, which carries its events", first.ID))) // saying which
			res, err = st.Replay(ctx, store.DeliveryFilter{Since: time.Unix(0, 0)})
			is.NoErr(err)
			is.Equal(res.Replayed, 0) // in bulk, left as it is (and the other is pending)
			d, err := st.Delivery(ctx, store.DeliveryFilter{ID: out.ID})
			is.NoErr(err)
			is.Equal(d.StateName(), "dead")
		})
	}
}

// TestReplayGivesAFailedRowAFreshBudget: a delivery waiting for its retry, replayed,
// is due now with a fresh attempt budget, as a finished one is: the backoff and
// give_up_after count from the replay (its attempt numbers go on).
func TestReplayGivesAFailedRowAFreshBudget(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, claimOrcid(0), "https://example.org/hook")
	is.NoErr(err)
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, claimed[0], store.OutcomeRetry)}, 0, time.Minute)
	is.NoErr(err)
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: claimed[0].ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "failed") // waiting for its retry, an hour on
	failingSince := func() time.Time {
		subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: c.ID})
		is.NoErr(err)
		is.Equal(len(subs), 1)
		return subs[0].FailingSince
	}
	is.True(!failingSince().IsZero()) // the webhook's run of failures has begun

	res, err := st.Replay(ctx, store.DeliveryFilter{ID: d.ID})
	is.NoErr(err)
	is.Equal(res.Replayed, 1)
	is.True(failingSince().IsZero()) // and ends with the replay: disable_after counts afresh
	d, err = st.Delivery(ctx, store.DeliveryFilter{ID: d.ID})
	is.NoErr(err)
	is.Equal(d.AttemptBase, d.Attempts) // the budget starts over
	is.Equal(d.StateName(), "pending")  // so it is pending, not failed
	is.True(!d.DueAt.After(st.Now()))   // due now
	is.Equal(d.Attempts, 1)             // the attempt made is kept
}

// TestDeactivationOnAnEndedRun: an outcome that would deactivate a webhook, decided
// on a run of failures that ended during its call (here by a replay), retries the
// delivery instead, and the webhook stays on.
func TestDeactivationOnAnEndedRun(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://example.org/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err) // one webhook for every record
	_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: claimOrcid(0)}, {Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2)
	first, second := claimed[0], claimed[1]
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, first, store.OutcomeRetry)}, 0, time.Minute)
	is.NoErr(err) // the run of failures begins
	began := st.Now()
	_, err = st.Replay(ctx, store.DeliveryFilter{ID: first.ID})
	is.NoErr(err) // and ends with a replay, while the second's call is out

	o := answered(st, second, store.OutcomeDeactivate)
	o.FailingSince = began // what the claim saw
	outs := []store.Outcome{o}
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)
	is.Equal(outs[0].Kind, store.OutcomeRetry) // what was applied, for the caller's notices
	figs, err := st.Figures(ctx, []string{store.ScopeAll}, began.Add(-time.Hour), st.Now().Add(time.Minute))
	is.NoErr(err)
	dead := 0
	for _, f := range figs {
		dead += f.Dead
	}
	is.Equal(dead, 0) // and the figures count a failed attempt, not a dead delivery
	subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{ClientID: c.ID})
	is.NoErr(err)
	is.Equal(len(subs), 1) // the one webhook
	for _, s := range subs {
		is.True(s.Active) // still on
	}
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: second.ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "failed") // waiting for its retry
}

// TestActivationKillsBacklogFirst: activating a webhook whose deactivation left
// more waiting deliveries than one transaction turns dead turns them dead a batch
// a transaction first, as the deactivation did; none is sent, each says why.
func TestActivationKillsBacklogFirst(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer store.SetKillBatch(3)()
	st, wh := backlogStore(t, 4, 8)
	restore := store.SetKillBatch(0) // the deactivation leaves them all waiting
	_, err := st.SetSubscriptionActive(ctx, wh.UID, false, store.ReasonOperator)
	is.NoErr(err)
	restore()
	pending, _, _ := waiting(t, st, wh.UID, "")
	is.Equal(pending, 12)

	moves := store.AheadMoves(st)
	sub, err := st.SetSubscriptionActive(ctx, wh.UID, true, "")
	is.NoErr(err)
	is.True(sub.Active)
	is.True(store.AheadMoves(st)-moves >= 4) // 12 waiting, 3 a transaction
	pending, _, dead := waiting(t, st, wh.UID, "not sent: subscription deactivated (deactivated by an operator)")
	is.Equal(pending, 0)
	is.Equal(dead, 12)
}

// TestMendedWebhookFailsAfresh: a PATCH of a failing webhook's address (or its
// credentials) starts its run of failures afresh: a failure after it does not
// deactivate the webhook for the failures of the old address, though they began
// longer ago than disable_after; a PATCH of its description does not.
func TestMendedWebhookFailsAfresh(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 1, 0)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	_, err = st.Exchange(ctx, []store.Outcome{answered(st, claimed[0], store.OutcomeRetry)}, 0, time.Minute)
	is.NoErr(err)
	failing := func() bool {
		subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{})
		is.NoErr(err)
		return !subs[0].FailingSince.IsZero()
	}
	is.True(failing()) // failing since the first failure
	_, err = st.UpdateWebhook(ctx, wh.ClientID, wh.UID, store.WebhookPatch{Description: ptr("still failing")})
	is.NoErr(err)
	is.True(failing()) // a description changes nothing of it
	_, err = st.UpdateWebhook(ctx, wh.ClientID, wh.UID, store.WebhookPatch{TargetURL: ptr("https://example.org/mended")})
	is.NoErr(err)
	is.True(!failing()) // mended: afresh
}

// TestHubNewAPIKeyFailsAfresh: an organisation's webhook given a new apikey (its
// credentials) starts its run of failures afresh, as a new URL does; the same key
// given again does not.
func TestHubNewAPIKeyFailsAfresh(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	o, err := st.CreateOrganisation(ctx, "Uni", "it@uni.example")
	is.NoErr(err)
	old, mended := "old-key", "new-key"
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://hub.uni.example/hook", APIKey: &old})
	is.NoErr(err)
	_, err = st.PutMember(ctx, o.ID, claimOrcid(1), store.MemberInfo{}, 0)
	is.NoErr(err)
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.True(len(claimed) > 0)
	var fail []store.Outcome
	for _, c := range claimed {
		fail = append(fail, answered(st, c, store.OutcomeRetry))
	}
	_, err = st.Exchange(ctx, fail, 0, time.Minute)
	is.NoErr(err)
	hubFailing := func() bool {
		subs, err := st.Subscriptions(ctx, store.SubscriptionFilter{})
		is.NoErr(err)
		for _, s := range subs {
			if s.Format == store.FormatHub {
				return !s.FailingSince.IsZero()
			}
		}
		t.Fatal("no hub subscription")
		return false
	}
	is.True(hubFailing()) // failing with the old key
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://hub.uni.example/hook", APIKey: &old})
	is.NoErr(err)
	is.True(hubFailing()) // the same key again: still failing
	_, _, err = st.SetHubSettings(ctx, o.ID, store.HubSettings{Enabled: true, URL: "https://hub.uni.example/hook", APIKey: &mended})
	is.NoErr(err)
	is.True(!hubFailing()) // a new key: afresh, as a platform webhook's new auth
}

// TestReasonTimeOfADeactivation: the time in the reason hookd gives a webhook it
// switches off for failing, in the error of the attempt that does it and in the
// last error of what it leaves unsent, and in the reason of one switched off for
// a 410 Gone, is found again (ReasonTime) as the words around it, for a page to
// show it in its reader's zone; the receiver's words after it are not read for one.
func TestReasonTimeOfADeactivation(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 2, 1) // two due now, one in an hour
	claimed, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2)
	first := answered(st, claimed[0], store.OutcomeRetry)
	_, err = st.Exchange(ctx, []store.Outcome{first}, 0, time.Minute)
	is.NoErr(err) // the run of failures begins
	o := answered(st, claimed[1], store.OutcomeDeactivate)
	o.FailingSince, o.Error = first.StartedAt, "HTTP 500: down until 2024-03-02T00:00:00Z"
	_, err = st.Exchange(ctx, []store.Outcome{o}, 0, time.Minute)
	is.NoErr(err)

	sub, err := st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	is.True(!sub.Active)
	dead, err := st.Delivery(ctx, store.DeliveryFilter{ID: claimed[1].ID})
	is.NoErr(err)
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: wh.UID, State: "dead", Limit: 10})
	is.NoErr(err)
	var unsent string
	for _, d := range ds {
		if d.Attempts == 0 {
			unsent = d.LastError
		}
	}
	for _, text := range []string{sub.Reason, dead.LastError, unsent} {
		before, at, after, ok := store.ReasonTime(text)
		is.True(ok)                                                                             // the time is found
		is.True(at.Equal(first.StartedAt))                                                      // the run's first failure's
		is.True(strings.HasSuffix(before, "failed continuously since "))                        // the words before it
		is.True(strings.HasPrefix(after, " (last: HTTP 500: down until 2024-03-02T00:00:00Z)")) // and after it, the receiver's time left as it is
		is.Equal(before+at.UTC().Format(time.RFC3339)+after, text)                              // and nothing else
	}
	is.True(strings.HasPrefix(unsent, "not sent: subscription deactivated ("))

	_, err = st.SetSubscriptionActive(ctx, wh.UID, true, "")
	is.NoErr(err)
	_, err = st.Replay(ctx, store.DeliveryFilter{ID: claimed[0].ID})
	is.NoErr(err)
	_, gone := claimGone(t, st)
	sub, err = st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	before, at, after, ok := store.ReasonTime(sub.Reason)
	is.True(ok)
	is.Equal(before, "the target answered 410 Gone at ")
	is.True(at.Equal(gone.StartedAt))
	is.Equal(after, "")

	for _, text := range []string{"", store.ReasonOperator, "HTTP 500: deliveries failed continuously since 2024-03-01T12:00:00Z",
		"deliveries failed continuously since yesterday (last: HTTP 500)"} {
		_, _, _, ok := store.ReasonTime(text)
		is.True(!ok) // no time of hookd's own
	}
}

// TestReasonTimeOfAGoneDeactivationsUnsent: the time in the last error of a
// delivery that a 410 Gone's deactivation left unsent, "not sent: subscription
// deactivated (the target answered 410 Gone at …)", is found as the reason's own
// is: the bracket that closes the reason follows it without a space, and it was
// taken as part of the time, which then could not be read.
func TestReasonTimeOfAGoneDeactivationsUnsent(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 1, 1) // one due now, one in an hour
	_, gone := claimGone(t, st)
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: wh.UID, State: "dead", Limit: 10})
	is.NoErr(err)
	var unsent string
	for _, d := range ds {
		if d.Attempts == 0 {
			unsent = d.LastError
		}
	}
	is.True(strings.HasPrefix(unsent, "not sent: subscription deactivated (the target answered 410 Gone at ")) // left unsent by the 410
	before, at, after, ok := store.ReasonTime(unsent)
	is.True(ok) // the time is found
	is.Equal(before, "not sent: subscription deactivated (the target answered 410 Gone at ")
	is.True(at.Equal(gone.StartedAt.Truncate(time.Second))) // the 410's
	is.Equal(after, ")")                                    // and the bracket after it
	is.Equal(before+at.UTC().Format(time.RFC3339)+after, unsent)
}

// TestReasonTimeOfAReplayRefusal: the refusal to replay a delivery of a webhook
// hookd switched off quotes the reason, and its time is found (ReasonTime) as in
// the reason itself, for a page to show it in its reader's zone: the refusal
// begins with the delivery and the webhook, and the time was not looked for.
func TestReasonTimeOfAReplayRefusal(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh := backlogStore(t, 1, 0)
	claimed, gone := claimGone(t, st)
	_, err := st.Replay(ctx, store.DeliveryFilter{ID: claimed[0].ID})
	var se *store.Error
	is.True(errors.As(err, &se) && errors.Is(se, store.ErrDeactivated)) // refused
	before, at, after, ok := store.ReasonTime(se.Message)
	is.True(ok) // the time is found
	is.Equal(before, fmt.Sprintf("delivery %d belongs to webhook %s, which is deactivated (the target answered 410 Gone at ", claimed[0].ID, wh.UID))
	is.True(at.Equal(gone.StartedAt.Truncate(time.Second))) // the 410's
	is.Equal(after, "): activate the webhook first, then replay")

	_, err = st.SetSubscriptionActive(ctx, wh.UID, true, "")
	is.NoErr(err)
	_, err = st.SetSubscriptionActive(ctx, wh.UID, false, "endpoint retired")
	is.NoErr(err)
	_, err = st.Replay(ctx, store.DeliveryFilter{ID: claimed[0].ID})
	is.True(errors.As(err, &se) && errors.Is(se, store.ErrDeactivated))
	_, _, _, ok = store.ReasonTime(se.Message)
	is.True(!ok) // an operator's reason names no time of hookd's
	for _, text := range []string{
		"delivery 1 belongs to webhook x y, which is deactivated (the target answered 410 Gone at 2024-03-01T16:00:00Z)",
		"HTTP 500: delivery 1 belongs to webhook 0190, which is deactivated (the target answered 410 Gone at 2024-03-01T16:00:00Z)",
	} {
		_, _, _, ok := store.ReasonTime(text)
		is.True(!ok) // not hookd's refusal
	}
}

// claimGone claims the one delivery due in st and records the target's 410 Gone
// for it, which deactivates its webhook: it returns the claimed delivery and the
// outcome recorded.
func claimGone(t *testing.T, st *store.Store) ([]store.Claimed, store.Outcome) {
	t.Helper()
	is := is.New(t)
	claimed, err := st.Exchange(context.Background(), nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)
	gone := answered(st, claimed[0], store.OutcomeGone)
	gone.Status, gone.Error = 410, "HTTP 410"
	_, err = st.Exchange(context.Background(), []store.Outcome{gone}, 0, time.Minute)
	is.NoErr(err)
	return claimed, gone
}
