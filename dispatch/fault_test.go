package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestFaultOutlastingLeases: after a store fault that lasted longer than the
// leases, with more outcomes kept than one turn records (turnRecordMax), the first
// turn records them all before its look for expired leases, so no row whose
// outcome the loop holds is claimed and sent again.
func TestFaultOutlastingLeases(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, nil) // 204 to everything
	const rows = dispatch.TurnClaimMax + 80
	for i := range rows {
		e.subscribe(testOrcid(i), rv.URL+"/hook")
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	const timeout = time.Second
	d := e.dispatcher(func(o *dispatch.Options) { o.Workers, o.PerHost, o.Timeout = 32, 32, timeout })
	dispatch.SetHostSpeed(d, strings.TrimPrefix(rv.URL, "http://"), time.Millisecond)

	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, dispatch.TurnClaimMax)
	for range 5 { // 5 quick turns of 16: claim the rest without recording anything
		dispatch.QuickTurn(d, ctx)
	}
	waitFor(t, 10*time.Second, "all calls", func() bool { return dispatch.Pending(d) == rows })
	is.Equal(rv.count(), rows) // each called once, every one a success

	is.NoErr(e.st.QueryOnly(ctx, true)) // the store faults
	_, err = d.Tick(ctx)
	is.True(err != nil)                       // the turn fails
	is.Equal(dispatch.Pending(d), rows)       // the outcomes are kept
	e.clock.Advance(10*timeout + time.Minute) // the fault outlasts the lease (9*timeout+30s)
	is.NoErr(e.st.QueryOnly(ctx, false))      // and ends

	n, err = d.Tick(ctx)
	is.NoErr(err)
	is.NoErr(d.Wait(ctx))
	is.Equal(n, 0)             // nothing was due: every row's outcome was known
	is.Equal(rv.count(), rows) // none sent again
}

// TestCancelledTurnKeepsOutcomes: after two turns failed for another reason than a
// store fault, a turn cut short by shutdown (its ctx cancelled) does not count as
// a third: the outcomes are not recorded one by one on the cancelled ctx (which
// would drop them all), and shutdown's flush records the good one.
func TestCancelledTurnKeepsOutcomes(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/hook")
	e.intake(0, store.Event{Orcid: orcidA})
	d := e.dispatcher(nil)
	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 1)
	waitFor(t, 5*time.Second, "the call", func() bool { return dispatch.Pending(d) == 1 })
	dispatch.AddOutcome(d, store.Outcome{DeliveryID: 999999, Kind: store.OutcomeKind(99)}) // one that cannot be recorded

	for range 2 {
		_, err = d.Tick(ctx)
		is.True(err != nil) // fails on the bad outcome, not a store fault
	}
	is.Equal(dispatch.Pending(d), 2) // both kept so far

	cancelled, cancel := context.WithCancel(ctx)
	cancel() // shutdown begins as the next turn runs
	_, err = d.Tick(cancelled)
	is.True(err != nil)
	is.NoErr(d.Wait(ctx))                       // shutdown's flush
	is.Equal(e.only().StateName(), "delivered") // the success was kept, and recorded
}

// TestFaultBacksOff: while the store refuses writes, the loop's failing turns
// come with a doubling delay (without it, 150 turns in 1.5 s at this tick), it
// is reported not ready but alive, and it records the kept outcome once the
// fault ends.
func TestFaultBacksOff(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rv := newReceiver(t, nil)
	e.subscribe(orcidA, rv.URL+"/hook")
	e.intake(0, store.Event{Orcid: orcidA})
	d := e.dispatcher(func(o *dispatch.Options) { o.Tick = 10 * time.Millisecond })
	n, err := d.Tick(ctx)
	is.NoErr(err)
	is.Equal(n, 1)
	waitFor(t, 5*time.Second, "the call", func() bool { return dispatch.Pending(d) == 1 })
	is.NoErr(e.st.QueryOnly(ctx, true))
	g0, _ := e.st.WriteStats()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	time.Sleep(1500 * time.Millisecond)
	g1, _ := e.st.WriteStats()
	is.True(g1-g0 <= 10)         // a few turns, each delay twice the last
	is.True(d.Ready(ctx) != nil) // not ready: its turns fail
	is.NoErr(d.Alive(ctx))       // but alive
	is.NoErr(e.st.QueryOnly(ctx, false))
	waitFor(t, 10*time.Second, "recovery", func() bool { return e.only().StateName() == "delivered" })
	cancel()
	is.NoErr(<-ran)
	is.Equal(rv.count(), 1)
}
