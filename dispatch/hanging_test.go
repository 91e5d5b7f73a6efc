package dispatch_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/dispatch"
	"hookd/store"
)

// TestHangingHostsHoldNoWorkers: hosts whose calls hang, as many as it takes to
// fill every worker, do not keep another host's deliveries waiting for their
// timeout: once they have stalled, the next turn parks their calls, and the other
// host's rows start beside them. When the calls end, the workers are as many as
// before.
func TestHangingHostsHoldNoWorkers(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	ctx := context.Background()
	release := make(chan struct{})
	// The hanging hosts' calls end when the test releases them: the limit and the
	// call timeout are only backstops, far beyond what the test takes.
	hanging := []*receiver{hangingReceiver(t, release, time.Minute), hangingReceiver(t, release, time.Minute)}
	fast := newReceiver(t, nil)
	n := 0
	for _, rv := range hanging {
		for range 4 {
			e.subscribe(testOrcid(n), rv.URL+"/hook")
			e.intake(0, store.Event{Orcid: testOrcid(n)})
			n++
		}
	}
	e.clock.Advance(time.Millisecond)
	const fastRows = 3
	for i := n; i < n+fastRows; i++ {
		e.subscribe(testOrcid(i), fast.URL+"/hook")
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Workers, o.PerHost = 4, 2 // the two hanging hosts' 2 calls each take every worker
		o.Timeout = time.Minute
	})
	_, err := d.Tick(ctx)
	is.NoErr(err) // the turn claims the hanging hosts' rows
	waitFor(t, 5*time.Second, "4 calls to hang", func() bool { return hanging[0].count()+hanging[1].count() == 4 })

	for i := n; i < n+fastRows; i++ {
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	_, err = d.Tick(ctx)
	is.NoErr(err) // the turn claims the fast host's rows, with no worker free for them
	time.Sleep(50 * time.Millisecond)
	is.Equal(fast.count(), 0) // (every worker waits on a hanging host)

	e.clock.Advance(1100 * time.Millisecond) // no hanging call ends for longer than a second
	_, err = d.Tick(ctx)
	is.NoErr(err) // the turn parks the hanging calls
	waitFor(t, 5*time.Second, "the fast host's calls beside the hanging ones", func() bool { return fast.finished.Load() == fastRows })
	is.Equal(hanging[0].finished.Load()+hanging[1].finished.Load(), int32(0)) // while every hanging call still waits
	is.Equal(hanging[0].count()+hanging[1].count(), 4)                        // and no more went to the hanging hosts
	is.True(dispatch.Running(d) > 4)                                          // a worker for each parked call

	close(release)
	is.NoErr(d.Wait(ctx)) // the hanging calls end, and everything is recorded
	waitFor(t, 5*time.Second, "the parked calls' workers to end", func() bool { return dispatch.Running(d) == 4 })
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered", Limit: 100})), 2*4+fastRows)
}

// TestHangingHostOneCallAtATime: a call that gets no answer for longer than a
// second leaves its host one call at a time, so a dead receiver holds one worker
// and one connection, not per_host of them; an answer gives it its limit back.
func TestHangingHostOneCallAtATime(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	var hang atomic.Bool
	hang.Store(true)
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	var arrived []time.Time
	rv := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) error {
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
		if hang.Load() {
			block(r, release, time.Minute)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	const rows = 5
	for i := range rows {
		e.subscribe(testOrcid(i), rv.URL+"/hook")
		e.intake(0, store.Event{Orcid: testOrcid(i)})
	}
	d := e.dispatcher(func(o *dispatch.Options) {
		o.Workers, o.PerHost = 4, 3
		o.Timeout = 1100 * time.Millisecond // more than a second: a call that times out leaves its host hanging
	})
	is.Equal(e.tick(d), rows) // the turn claims every row, and its calls all time out
	is.Equal(rv.count(), rows)
	// After the first three, one at a time: the fifth call starts only once the fourth has timed out,
	// 1.1 s after it started (the receiver cannot tell when hookd hangs up, so
	// the gap between arrivals tells it; without the limit both start together).
	mu.Lock()
	gap := arrived[4].Sub(arrived[3])
	mu.Unlock()
	if gap < 500*time.Millisecond {
		t.Errorf("the fifth call arrived %s after the fourth: both ran at once", gap)
	}
	for _, row := range e.deliveries(store.DeliveryFilter{Limit: 100}) {
		is.Equal(row.StateName(), "failed") // each to be retried
		is.Equal(row.Attempts, 1)
	}

	hang.Store(false)
	e.clock.Advance(time.Hour) // every row due again
	is.Equal(e.tick(d), rows)
	is.Equal(len(e.deliveries(store.DeliveryFilter{State: "delivered", Limit: 100})), rows) // answered at last
	is.Equal(dispatch.HostLimit(d, strings.TrimPrefix(rv.URL, "http://")), 3)               // and its limit is back
}

// TestRefusedEmailIsAnAnswer: an SMTP relay that refuses an e-mail (a 550 to RCPT
// TO) has answered, however long its session took: the e-mail keeps its limit of
// calls at once, and the other organisations' e-mail does not go one at a time.
func TestRefusedEmailIsAnAnswer(t *testing.T) {
	is := is.New(t)
	e := newEnv(t)
	// The greeting and the answer to EHLO take 0.6 s each: a session of over a
	// second, which a relay far away or a busy one easily takes.
	relay := dispatch.RefusingSMTP(t, 600*time.Millisecond, "550 5.1.1 user unknown")
	e.emailOrg()
	d := e.dispatcher(func(o *dispatch.Options) {
		o.PerHost = 4
		o.Timeout = 10 * time.Second
	})
	d.ConfigureHub(dispatch.HubOptions{Email: dispatch.EmailOptions{Addr: relay, From: "hookd@uni.example"}})
	is.Equal(e.tick(d), 1)
	dl := e.only()
	is.Equal(dl.StateName(), "dead")                                    // refused for good
	is.True(strings.Contains(dl.LastError, `550 "5.1.1 user unknown"`)) // the relay answered
	host := (&store.Target{URL: "orcid@uni.example"}).Host()
	is.Equal(dispatch.HostLimit(d, host), 4) // an answer: the e-mail keeps its limit
}
