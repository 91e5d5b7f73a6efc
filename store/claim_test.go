package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/orcid"
	"hookd/secret"
	"hookd/store"
)

// claimOrcid is the i-th of a series of valid iDs.
func claimOrcid(i int) string {
	base := fmt.Sprintf("000000042%06d", i)
	d := base + string(orcid.CheckDigit(base))
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// claimStore is a store whose clock reads *now, with a client that registers webhooks.
func claimStore(t *testing.T) (*store.Store, *time.Time, store.Credentials) {
	t.Helper()
	st := newStore(t)
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	c, err := st.CreateClient(context.Background(), store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.New(t).NoErr(err) // client
	return st, &now, c
}

// claimWebhooks registers ORCID-style webhooks of the client for the first n of
// claimOrcid's iDs, the i-th calling https://example.org/i.
func claimWebhooks(t *testing.T, st *store.Store, clientID string, n int) {
	t.Helper()
	for i := range n {
		_, _, err := st.PutOrcidWebhook(context.Background(), clientID, claimOrcid(i), fmt.Sprintf("https://example.org/%d", i))
		is.New(t).NoErr(err) // registration
	}
}

// TestClaimTakesTheNewestToo: behind a backlog of older due deliveries, a claim
// smaller than the backlog still takes a delivery that just became due (one busy
// host's backlog must not hold back another's callbacks), and the rest of it from
// the oldest; every due delivery is taken once.
func TestClaimTakesTheNewestToo(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, now, c := claimStore(t)
	const backlog = 50
	claimWebhooks(t, st, c.ID, backlog+1)
	for i := range backlog {
		_, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(i)}}, 0)
		is.NoErr(err) // the backlog, a millisecond apart
		*now = now.Add(time.Millisecond)
	}
	*now = now.Add(time.Minute)
	fresh := claimOrcid(backlog)
	_, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: fresh}}, 0)
	is.NoErr(err) // a fresh event

	claimed, err := st.Claim(ctx, 8, time.Minute)
	is.NoErr(err)             // a claim of 8
	is.Equal(len(claimed), 8) // full
	subjects := map[string]bool{}
	for _, c := range claimed {
		subjects[c.Subject] = true
	}
	is.True(subjects[fresh])         // the fresh one among them
	is.True(subjects[claimOrcid(0)]) // and the oldest
	seen := len(claimed)
	for range backlog {
		more, err := st.Claim(ctx, 8, time.Minute)
		is.NoErr(err) // claim the rest
		if len(more) == 0 {
			break
		}
		for _, c := range more {
			is.True(!subjects[c.Subject]) // never twice
			subjects[c.Subject] = true
		}
		seen += len(more)
	}
	is.Equal(seen, backlog+1) // every due delivery, once
}

// TestClaimNewest: a quick claim takes the newest due deliveries only, leaving the
// oldest of a backlog for the long turns.
func TestClaimNewest(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, now, c := claimStore(t)
	const backlog = 20
	for i := range backlog {
		_, _, err := st.PutOrcidWebhook(ctx, c.ID, claimOrcid(i), fmt.Sprintf("https://example.org/%d", i))
		is.NoErr(err) // registration
		_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(i)}}, 0)
		is.NoErr(err) // an event, a millisecond after the one before
		*now = now.Add(time.Millisecond)
	}
	claimed, err := st.ClaimNewest(ctx, 5, time.Minute)
	is.NoErr(err)             // a quick claim of 5
	is.Equal(len(claimed), 5) // full
	got := map[string]bool{}
	for _, c := range claimed {
		got[c.Subject] = true
	}
	for i := backlog - 5; i < backlog; i++ {
		is.True(got[claimOrcid(i)]) // the five newest
	}
	rest, err := st.Claim(ctx, backlog, time.Minute)
	is.NoErr(err)                  // the long turn
	is.Equal(len(rest), backlog-5) // takes the others
	for _, c := range rest {
		is.True(!got[c.Subject]) // and none twice
	}
}

// TestClaimSeesAnotherProcessChange: a target changed by another process (here a
// second connection to the file) is used from the next claim on, although hookd
// had it cached from the claim before.
func TestClaimSeesAnotherProcessChange(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	id := claimOrcid(1)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, id, "https://example.org/old")
	is.NoErr(err)
	deliver := func() string {
		t.Helper()
		_, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: id}}, 0)
		is.NoErr(err)
		claimed, err := st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1) // the event's delivery
		_, err = st.Exchange(ctx, []store.Outcome{{DeliveryID: claimed[0].ID, SubscriptionID: claimed[0].Target.SubscriptionID,
			Kind: store.OutcomeDelivered, Attempt: claimed[0].Attempt, StartedAt: time.Now(), Status: 204}}, 0, time.Minute)
		is.NoErr(err)
		return claimed[0].Target.URL
	}
	is.Equal(deliver(), "https://example.org/old")
	is.Equal(deliver(), "https://example.org/old") // from the cache

	_, err = rawDB(t, path).ExecContext(ctx, "UPDATE subscriptions SET target = 'https://example.org/new'")
	is.NoErr(err)
	is.Equal(deliver(), "https://example.org/new")
}

// TestFreshClaimAfterTheClockStepsBack: a wall clock stepped back between an
// intake's reading and its group's fresh claim does not leave the intake's
// delivery, due at the earlier reading, behind a call told that the claim took
// everything (and so nudging nobody).
func TestFreshClaimAfterTheClockStepsBack(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, _, c := claimStore(t)
	claimWebhooks(t, st, c.ID, 1)
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var reads atomic.Int32
	st.Now = func() time.Time {
		if reads.Add(1) == 1 {
			return base // the intake's reading
		}
		return base.Add(-5 * time.Millisecond) // then the clock steps back
	}
	var taken atomic.Int32
	st.ClaimFresh(&store.FreshClaimer{Limit: func() int { return 16 }, Settled: func() bool { return true },
		Take: func(cs []store.Claimed) { taken.Add(int32(len(cs))) }, Lease: time.Minute})
	res, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	is.True(res.Claimed)             // the call nudges nobody
	is.Equal(taken.Load(), int32(1)) // so the claim took its delivery
}

// TestIntakeClaimsFresh: with a fresh claimer, an intake call's transaction claims
// the newest due deliveries, up to the claimer's limit, and hands them over with
// their targets after the commit; with no room, or no claimer, the turns claim them.
// The call learns whether its claim left anything a turn could claim
// (IntakeResult.Claimed): the intake then need not nudge the loop.
func TestIntakeClaimsFresh(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, _, c := claimStore(t)
	claimWebhooks(t, st, c.ID, 4)
	var mu sync.Mutex
	var taken []store.Claimed
	room, settled := 1, true
	st.ClaimFresh(&store.FreshClaimer{
		Limit:   func() int { return room },
		Settled: func() bool { return settled },
		Take: func(cs []store.Claimed) {
			mu.Lock()
			defer mu.Unlock()
			taken = append(taken, cs...)
		},
		Lease: time.Minute,
	})
	took := func() []store.Claimed {
		mu.Lock()
		defer mu.Unlock()
		return append([]store.Claimed(nil), taken...)
	}

	res, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}, {Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	is.Equal(len(took()), 1)                                // as many as there was room for
	is.Equal(took()[0].Subject, claimOrcid(1))              // the newest
	is.Equal(took()[0].Target.URL, "https://example.org/1") // with its target
	is.True(!res.Claimed)                                   // not all: the loop must take a turn
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 1)                   // a turn takes the other,
	is.Equal(claimed[0].Subject, claimOrcid(0)) // not the one in flight

	room = 0
	res, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(2)}}, 0)
	is.NoErr(err)
	is.Equal(len(took()), 1) // no room: nothing taken
	is.True(!res.Claimed)    // the loop must take a turn

	room = 5
	res, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	is.Equal(len(took()), 2)                   // with room to spare, the claim takes all it can:
	is.Equal(took()[1].Subject, claimOrcid(2)) // the row left when there was none (this call's waits for its pair in flight)
	is.True(res.Claimed)                       // and the call is told no turn is needed
	res, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	is.Equal(len(took()), 2) // its pair is in flight: nothing a claim could take
	is.True(res.Claimed)
	settled = false // the loop holds an outcome it has not recorded (it may free a pair)
	res, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	is.True(!res.Claimed) // so a turn must record it
	settled = true
	res, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(3)}}, 30*time.Second)
	is.NoErr(err)
	is.Equal(len(took()), 2) // due later (a coalescing window): no fresh claim,
	is.True(!res.Claimed)    // so the loop is nudged as before

	st.ClaimFresh(nil)
	res, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(3)}}, 0)
	is.NoErr(err)
	is.Equal(len(took()), 2) // no claimer: nothing taken
	is.True(!res.Claimed)
}

// TestClaimFreshNilWaitsForTake: ClaimFresh(nil) returns only after a claim already
// under way for the old claimer was handed to its Take, so a dispatch loop that
// stops, then records what it holds, leaves nothing claimed behind.
func TestClaimFreshNilWaitsForTake(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, _, c := claimStore(t)
	claimWebhooks(t, st, c.ID, 1)
	inLimit, release := make(chan struct{}), make(chan struct{})
	var order atomic.Int32
	var took, cleared atomic.Int32
	st.ClaimFresh(&store.FreshClaimer{
		Limit: func() int { close(inLimit); <-release; return 1 },
		Take:  func([]store.Claimed) { took.Store(order.Add(1)) },
		Lease: time.Minute,
	})
	done := make(chan error, 1)
	go func() {
		_, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
		done <- err
	}()
	<-inLimit // the group is claiming for the claimer
	stopped := make(chan struct{})
	go func() {
		st.ClaimFresh(nil)
		cleared.Store(order.Add(1))
		close(stopped)
	}()
	time.Sleep(20 * time.Millisecond) // give ClaimFresh the chance to return early, were it to
	close(release)
	is.NoErr(<-done)
	<-stopped
	is.Equal(took.Load(), int32(1))    // the claim was taken
	is.Equal(cleared.Load(), int32(2)) // before ClaimFresh(nil) returned
}

// claimedHealthy makes a platform webhook and n deliveries to it, all claimed while
// it is healthy, and returns them with a maker of their outcomes (a failure is a
// 503, due again in an hour).
func claimedHealthy(t *testing.T, n int) (st *store.Store, wh store.Subscription, claimed []store.Claimed,
	outcome func(store.Claimed, store.OutcomeKind, int) store.Outcome) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st = newStore(t)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	wh, _, err = st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://a.example/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	var events []store.Event
	for i := range n {
		events = append(events, store.Event{Orcid: claimOrcid(i + 1)})
	}
	_, err = st.Intake(ctx, c.ID, "", events, 0)
	is.NoErr(err)
	claimed, err = st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), n) // all claimed while the webhook is healthy
	outcome = func(cl store.Claimed, kind store.OutcomeKind, status int) store.Outcome {
		return store.Outcome{DeliveryID: cl.ID, SubscriptionID: cl.Target.SubscriptionID, Kind: kind, Attempt: cl.Attempt,
			StartedAt: st.Now(), Status: status, Error: "HTTP 503", RetryAt: st.Now().Add(time.Hour), WasFailing: !cl.Target.FailingSince.IsZero()}
	}
	return st, wh, claimed, outcome
}

// TestSuccessClearsFailingClaimedBefore: a success clears the webhook's run of
// failures even when its delivery was claimed before the failure that began the
// run was recorded (it was claimed from a healthy webhook), so a later failure does
// not count the run from before that success.
func TestSuccessClearsFailingClaimedBefore(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh, claimed, outcome := claimedHealthy(t, 2)
	_, err := st.Exchange(ctx, []store.Outcome{outcome(claimed[0], store.OutcomeRetry, 503)}, 0, time.Minute)
	is.NoErr(err)
	got, err := st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	is.True(!got.FailingSince.IsZero()) // the failure begins a run

	// A turn that rolls back (an outcome it cannot record) records its success
	// again: the mark must still be there then.
	_, err = st.Exchange(ctx, []store.Outcome{outcome(claimed[1], store.OutcomeDelivered, 204), {DeliveryID: claimed[0].ID, Kind: store.OutcomeKind(99)}}, 0, time.Minute)
	is.True(err != nil) // rolled back
	_, err = st.Exchange(ctx, []store.Outcome{outcome(claimed[1], store.OutcomeDelivered, 204)}, 0, time.Minute)
	is.NoErr(err)
	got, err = st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	is.True(got.FailingSince.IsZero()) // the success ends it
}

// reclaimed makes a delivery claimed twice: once, and again after the first lease
// ran out (the clock moved past it). It returns the two claims, the clock, and a
// maker of their outcomes.
func reclaimed(t *testing.T) (st *store.Store, advance func(time.Duration), first, second []store.Claimed,
	out func(store.Claimed, store.OutcomeKind, int) store.Outcome) {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	st = newStore(t)
	advance = movable(st)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, claimOrcid(1), "https://example.org/hook")
	is.NoErr(err)
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	first, err = st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(first), 1)
	advance(2 * time.Minute) // past the lease
	second, err = st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(second), 1) // claimed again
	is.Equal(second[0].ID, first[0].ID)
	out = func(cl store.Claimed, kind store.OutcomeKind, status int) store.Outcome {
		return store.Outcome{DeliveryID: cl.ID, SubscriptionID: cl.Target.SubscriptionID, Kind: kind, Attempt: cl.Attempt,
			StartedAt: st.Now(), Status: status, Error: "late", RetryAt: st.Now().Add(time.Minute)}
	}
	return st, advance, first, second, out
}

// TestLateOutcomeLeavesAReclaimedRow: when a call outlasts its lease (the clock
// jumped past it) and another claim takes the row and delivers it, the first
// call's failure, recorded late, leaves the row delivered: it is not made pending,
// and sent, again.
func TestLateOutcomeLeavesAReclaimedRow(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, advance, first, second, out := reclaimed(t)
	_, err := st.Exchange(ctx, []store.Outcome{out(second[0], store.OutcomeDelivered, 204)}, 0, time.Minute)
	is.NoErr(err)
	_, err = st.Exchange(ctx, []store.Outcome{out(first[0], store.OutcomeRetry, 500)}, 0, time.Minute) // the first call, late
	is.NoErr(err)
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: first[0].ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "delivered") // stays delivered
	is.Equal(d.LastStatus, 204)          // with its success
	advance(time.Hour)
	again, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(again), 0) // and is not sent again
}

// TestUnusableTargetHoldsUpNobody: a webhook whose secret does not open with the
// key (a database an older hookd left under two keys) cannot be called: its
// deliveries die when claimed, saying why and what to do, and the other webhooks'
// are claimed and sent as ever.
func TestUnusableTargetHoldsUpNobody(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	bad, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://a.example/bad", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	_, _, err = st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://a.example/good", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	other, err := secret.NewBox(secret.Random(secret.KeySize))
	is.NoErr(err)
	_, err = rawDB(t, path).ExecContext(ctx, "UPDATE subscriptions SET signing_secret = ? WHERE uid = ?", other.Seal([]byte("whsec_x")), bad.UID)
	is.NoErr(err) // sealed under another key

	var told []string
	st.Unusable = func(uid, why string) { told = append(told, uid) }
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	claimed, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)                     // the turn goes on
	is.Equal(told, []string{bad.UID}) // the daemon is told, to log it
	is.Equal(len(claimed), 1)         // with the good webhook's delivery
	is.Equal(claimed[0].Target.URL, "https://a.example/good")
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Webhook: bad.UID, Limit: 10})
	is.NoErr(err)
	is.Equal(len(ds), 1)
	is.Equal(ds[0].StateName(), "dead")                                                           // the other one died unsent
	is.Equal(ds[0].Attempts, 0)                                                                   // without an attempt
	is.True(strings.Contains(ds[0].LastError, "its signing secret: sealed secret does not open")) // saying why
	is.True(strings.Contains(ds[0].LastError, "then replay"))                                     // and what to do

	_, _, err = st.RotateWebhookSecret(ctx, c.ID, bad.UID, store.KeepPrevious) // a new secret, the old one rotated out
	is.NoErr(err)
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(2)}}, 0)
	is.NoErr(err)
	claimed, err = st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(claimed), 2) // the rotation mended it: both webhooks are called
}

// TestLateOutcomeWhileReclaimedInFlight: when the first call's failure comes back
// late while a second claim of the row is still out, it is left aside (it is not
// the row's claim any more): the second call's success is the row's outcome.
func TestLateOutcomeWhileReclaimedInFlight(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, advance, first, second, out := reclaimed(t)
	var err error
	for _, kind := range []store.OutcomeKind{store.OutcomeRetry, store.OutcomeDead, store.OutcomeReleased} {
		_, err = st.Exchange(ctx, []store.Outcome{out(first[0], kind, 500)}, 0, time.Minute) // the first call, late
		is.NoErr(err)
		d, err := st.Delivery(ctx, store.DeliveryFilter{ID: first[0].ID})
		is.NoErr(err)
		is.Equal(d.State, store.StateInFlight) // left to the second call: not pending, not dead
		is.Equal(d.LastStatus, 0)              // nor marked with the first call's answer
	}
	_, err = st.Exchange(ctx, []store.Outcome{out(second[0], store.OutcomeDelivered, 204)}, 0, time.Minute)
	is.NoErr(err)
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: first[0].ID})
	is.NoErr(err)
	is.Equal(d.StateName(), "delivered") // the second call's success counts
	advance(time.Hour)
	again, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(again), 0) // and nothing goes out a third time
}

// TestFailureAfterSuccessInOneTurnKeepsItsMark: a turn that records a success and
// then a failure of the same webhook ends with a run of failures begun by that
// failure, whose mark stays: a success claimed before it, recorded later, ends it.
func TestFailureAfterSuccessInOneTurnKeepsItsMark(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, wh, d, out := claimedHealthy(t, 4)
	for _, turn := range [][]store.Outcome{
		{out(d[0], store.OutcomeRetry, 503)},
		{out(d[1], store.OutcomeDelivered, 204), out(d[2], store.OutcomeRetry, 503)}, // a success, then a new run begins
		{out(d[3], store.OutcomeDelivered, 204)},                                     // claimed before it: still ends it
	} {
		_, err := st.Exchange(ctx, turn, 0, time.Minute)
		is.NoErr(err)
	}
	got, err := st.Subscription(ctx, wh.UID)
	is.NoErr(err)
	is.True(got.FailingSince.IsZero())
}

// TestClaimAfterClaimsFoundNothing: once a turn's claim finds nothing, the next
// turns ask first whether anything is due, and must still take what becomes due:
// a new event's delivery, a retry whose time comes, a row whose lease ran out, and
// a row of a webhook deactivated meanwhile (which dies unsent when claimed).
func TestClaimAfterClaimsFoundNothing(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, now, c := claimStore(t)
	claimWebhooks(t, st, c.ID, 2)
	claim := func(want int) []store.Claimed {
		t.Helper()
		got, err := st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		if len(got) != want {
			t.Fatalf("claimed %d, want %d", len(got), want)
		}
		return got
	}
	claim(0) // nothing due: the next claims ask first
	is.True(store.ClaimsFoundNothing(st))
	claim(0)
	_, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	first := claim(1) // a new event's delivery
	is.True(!store.ClaimsFoundNothing(st))

	retry := store.Outcome{DeliveryID: first[0].ID, SubscriptionID: first[0].Target.SubscriptionID, Kind: store.OutcomeRetry,
		Attempt: first[0].Attempt, StartedAt: *now, Status: 503, Error: "HTTP 503", RetryAt: now.Add(time.Minute)}
	got, err := st.Exchange(ctx, []store.Outcome{retry}, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(got), 0) // the retry is not due yet
	claim(0)
	*now = now.Add(time.Minute)
	again := claim(1) // due now
	is.Equal(again[0].ID, first[0].ID)

	claim(0)
	*now = now.Add(2 * time.Minute) // past the lease: the call never came back
	claimed := claim(1)
	is.Equal(claimed[0].ID, first[0].ID)
	is.Equal(claimed[0].Attempt, 3) // claimed a third time

	claim(0)
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	whs, err := st.OrcidWebhooks(ctx, c.ID, claimOrcid(1))
	is.NoErr(err)
	is.Equal(len(whs), 1)
	defer store.SetKillBatch(0)() // the deactivation leaves its delivery waiting
	_, err = st.SetSubscriptionActive(ctx, whs[0].UID, false, "retired")
	is.NoErr(err)
	killed := st.ClaimKilled()
	claim(0)                             // its delivery dies when claimed
	is.Equal(st.ClaimKilled(), killed+1) // found due, not skipped
	claim(0)
}

// TestClaimAfterFreshClaims: while the turns' claims find nothing (the deliveries
// of new events are claimed in the events' own transactions), a turn that records
// an outcome which makes its delivery due again at once, a retry or a release,
// claims it in the same transaction.
func TestClaimAfterFreshClaims(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, now, c := claimStore(t)
	claimWebhooks(t, st, c.ID, 1)
	var taken []store.Claimed
	st.ClaimFresh(&store.FreshClaimer{Limit: func() int { return 16 }, Take: func(cs []store.Claimed) { taken = append(taken, cs...) },
		Settled: func() bool { return true }, Lease: time.Minute})
	got, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(got), 0)
	is.True(store.ClaimsFoundNothing(st)) // the turns now ask first
	res, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	is.True(res.Claimed)
	is.Equal(len(taken), 1)               // claimed with its event
	is.True(store.ClaimsFoundNothing(st)) // which leaves the turns' mark as it was

	for _, kind := range []store.OutcomeKind{store.OutcomeRetry, store.OutcomeReleased} {
		cl := taken[len(taken)-1]
		out := store.Outcome{DeliveryID: cl.ID, SubscriptionID: cl.Target.SubscriptionID, Kind: kind, Attempt: cl.Attempt,
			StartedAt: *now, Status: 503, Error: "HTTP 503", RetryAt: *now}
		got, err = st.Exchange(ctx, []store.Outcome{out}, 10, time.Minute)
		is.NoErr(err)
		if len(got) != 1 || got[0].ID != cl.ID {
			t.Fatalf("%s due at once: the turn that records it claimed %d rows, want it again", kind, len(got))
		}
		taken = append(taken, got[0])
		got, err = st.Claim(ctx, 10, time.Minute)
		is.NoErr(err)
		is.Equal(len(got), 0) // in flight again: nothing more
	}
}

// TestFreshClaimCountsKilled: rows that a fresh claim finds due but kills (their
// webhook was deactivated) count against its room, as rows it takes do: a claim
// that filled its room so may have left more of them, and the call must not be
// told that a turn would find nothing.
func TestFreshClaimCountsKilled(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, now, c := claimStore(t)
	wh, _, err := st.CreateWebhook(ctx, c.ID, store.WebhookSpec{TargetURL: "https://a.example/hook", Auth: store.Auth{Type: store.AuthNone}})
	is.NoErr(err)
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}, {Orcid: claimOrcid(2)}, {Orcid: claimOrcid(3)}}, 0)
	is.NoErr(err) // three deliveries for the webhook
	defer store.SetKillBatch(0)()
	_, err = st.SetSubscriptionActive(ctx, wh.UID, false, "retired")
	is.NoErr(err) // which leaves them waiting, to die when claimed
	*now = now.Add(time.Second)

	var taken []store.Claimed
	st.ClaimFresh(&store.FreshClaimer{Limit: func() int { return 2 }, Take: func(cs []store.Claimed) { taken = append(taken, cs...) },
		Settled: func() bool { return true }, Lease: time.Minute})
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, claimOrcid(9), "https://example.org/9")
	is.NoErr(err)
	killed := st.ClaimKilled()
	res, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(9)}}, 0)
	is.NoErr(err)
	is.Equal(len(taken), 1)              // its delivery, the newest,
	is.Equal(st.ClaimKilled(), killed+1) // and a dead webhook's: the room is full
	is.True(!res.Claimed)                // so a turn may find more
	got, err := st.Claim(ctx, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(got), 0)
	is.Equal(st.ClaimKilled(), killed+3) // it does: the other two die
}

// TestAttemptLogKeepsFirstAndLast: a delivery's attempt log keeps its first ten
// attempts and its last forty, however many it had (a receiver answering 429
// with "Retry-After: 1" is called every second for days), then its success.
func TestAttemptLogKeepsFirstAndLast(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, now, c := claimStore(t)
	claimWebhooks(t, st, c.ID, 1)
	_, err := st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(0)}}, 0)
	is.NoErr(err)
	var outs []store.Outcome
	for range 75 {
		claimed, err := st.Exchange(ctx, outs, 1, time.Minute)
		is.NoErr(err)
		is.Equal(len(claimed), 1) // due again at once
		o := answered(st, claimed[0], store.OutcomeRetry)
		o.Status, o.Error, o.RetryAt = 429, "HTTP 429", *now
		outs = []store.Outcome{o}
		*now = now.Add(time.Second)
	}
	claimed, err := st.Exchange(ctx, outs, 1, time.Minute)
	is.NoErr(err)
	outs = []store.Outcome{answered(st, claimed[0], store.OutcomeDelivered)}
	_, err = st.Exchange(ctx, outs, 0, time.Minute)
	is.NoErr(err)

	log, err := st.Attempts(ctx, claimed[0].ID)
	is.NoErr(err)
	var numbers []int
	for _, a := range log {
		numbers = append(numbers, a.Attempt)
	}
	var want []int
	for n := 1; n <= 10; n++ {
		want = append(want, n)
	}
	for n := 36; n <= 76; n++ { // the last forty failures, and the success
		want = append(want, n)
	}
	is.Equal(numbers, want)
}

// TestLateSuccessLeavesAReclaimedRowWithNewEvents: when a call outlasts its lease
// (the clock jumped past it), an event that came during the call is folded into the
// row as it is taken back, and a second claim sends both; the first call's success,
// recorded late, is not the row's: the second call's failure retries the row, so the
// event the first call could not carry still goes out.
func TestLateSuccessLeavesAReclaimedRowWithNewEvents(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	advance := movable(st)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, claimOrcid(1), "https://example.org/hook")
	is.NoErr(err)
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)
	first, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(first), 1) // the first call goes out
	_, err = st.Intake(ctx, c.ID, "", []store.Event{{Orcid: claimOrcid(1)}}, 0)
	is.NoErr(err)            // an event during the call
	advance(2 * time.Minute) // past the lease
	second, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(second), 1) // claimed again, with the new event
	is.Equal(second[0].ID, first[0].ID)
	is.Equal(second[0].EventCount, 2)
	out := func(cl store.Claimed, kind store.OutcomeKind, status int) store.Outcome {
		return store.Outcome{DeliveryID: cl.ID, SubscriptionID: cl.Target.SubscriptionID, Kind: kind, Attempt: cl.Attempt,
			StartedAt: st.Now(), Status: status, Error: "late", RetryAt: st.Now().Add(time.Minute)}
	}
	_, err = st.Exchange(ctx, []store.Outcome{out(first[0], store.OutcomeDelivered, 204)}, 0, time.Minute) // the first call, late
	is.NoErr(err)
	d, err := st.Delivery(ctx, store.DeliveryFilter{ID: first[0].ID})
	is.NoErr(err)
	is.Equal(d.State, store.StateInFlight) // left to the second call
	_, err = st.Exchange(ctx, []store.Outcome{out(second[0], store.OutcomeRetry, 500)}, 0, time.Minute)
	is.NoErr(err)
	advance(time.Hour)
	again, err := st.Exchange(ctx, nil, 10, time.Minute)
	is.NoErr(err)
	is.Equal(len(again), 1) // the new event goes out at the retry
	is.Equal(again[0].ID, first[0].ID)
}

// TestCalledURLAppendsTheIDAsTheHub: an organisation webhook with append-orcid calls
// its URL as written with "/{orcid}" after it, as the ORCID Hub builds it: a trailing
// "/" is not doubled, and a query gets the iD at its end (README, "What the
// organisation's receiver gets").
func TestCalledURLAppendsTheIDAsTheHub(t *testing.T) {
	is := is.New(t)
	const id = "0000-0002-7253-3645"
	for url, want := range map[string]string{
		"https://hooks.example/orcid":       "https://hooks.example/orcid/" + id,
		"https://hooks.example/orcid/":      "https://hooks.example/orcid/" + id,
		"https://hooks.example":             "https://hooks.example/" + id,
		"https://hooks.example/orcid?k=1":   "https://hooks.example/orcid?k=1/" + id,
		"https://hooks.example/a%2Fb?x=%2F": "https://hooks.example/a%2Fb?x=%2F/" + id,
	} {
		is.Equal((&store.Target{URL: url, AppendOrcid: true}).CalledURL(id), want) // appended
		is.Equal((&store.Target{URL: url}).CalledURL(id), url)                     // as registered without append-orcid
	}
}
