package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"hookd/dispatch"
	"hookd/store"
)

// TestNudgeWhileOutcomesWait: an intake call whose own transaction's claim took all
// it could need not nudge the loop (IntakeResult.Claimed), unless the loop holds
// outcomes it has not recorded: a second event for a record whose first call has
// finished, its outcome not yet recorded, waits for that record, which only a turn
// makes. Here no turn would come for an hour otherwise (both other hosts are
// saturated and hang, so finished calls do not make one due); the second call
// must go out at once.
func TestNudgeWhileOutcomesWait(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	answer := sync.OnceFunc(func() { close(release) })
	defer answer()
	slow1 := hangingReceiver(t, release, 20*time.Second)
	slow2 := hangingReceiver(t, release, 20*time.Second)
	fast := newReceiver(t, nil)
	i := 0
	for _, rv := range []*receiver{slow1, slow2} {
		for range 8 {
			e.subscribe(testOrcid(i), rv.URL+"/cb")
			e.intake(0, store.Event{Orcid: testOrcid(i)})
			i++
		}
	}
	e.subscribe(orcidB, fast.URL+"/cb")
	d := e.dispatcher(func(o *dispatch.Options) { o.Workers, o.PerHost, o.Tick = 3, 1, time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	waitFor(t, 5*time.Second, "both slow hosts called", func() bool { return slow1.count() == 1 && slow2.count() == 1 })
	post := func() { // as the intake's handler does
		if res := e.intake(0, store.Event{Orcid: orcidB}); res.Deliveries > 0 && !res.Claimed {
			d.Nudge()
		}
	}
	post()
	waitFor(t, 5*time.Second, "the first call", func() bool { return fast.count() == 1 })
	time.Sleep(50 * time.Millisecond) // its outcome waits in the loop
	post()
	waitFor(t, 3*time.Second, "the second event's call", func() bool { return fast.count() == 2 })
	answer() // the slow hosts answer at last
	cancel() // and the loop ends as at a shutdown, without an error
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
}
