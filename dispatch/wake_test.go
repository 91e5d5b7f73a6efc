package dispatch

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"hookd/store"
)

// TestWakeNeverLeavesRowsAsleep drives the real scheduler, queueLocked, takeLocked
// and wakeLocked through random interleavings of the workers' critical sections
// (one at a time, as d.mu makes them), with sync.Cond's waiters modelled in the
// order they wait. After every step: idle and waking match the model, and no idle
// worker sleeps unsignalled while more rows may start than there are workers on
// their way to take them, also when a trim parks a stalled host's calls or an
// answer ends a host's hanging.
func TestWakeNeverLeavesRowsAsleep(t *testing.T) {
	type worker int
	const (
		notStarted worker = iota
		asleep            // in Wait, not signalled
		signalled         // in Wait, signalled
		calling
	)
	hosts := []string{"a:1", "b:1", "c:1"}
	for seed := uint64(0); seed < 2000; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		workers, perHost := 1+r.IntN(6), 1+r.IntN(4)
		clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
		d := &Dispatcher{sched: newScheduler(workers, perHost, time.Second, clock.now)}
		d.sched.parkMax = r.IntN(2 * workers) // (from none: the bound is reached)
		d.work = sync.NewCond(&d.mu)
		state := make([]worker, workers)
		host := make([]string, workers)
		var waiters []int // in the order they began to wait

		// markSignalled marks as many waiters as wakeLocked signalled, oldest first.
		markSignalled := func(before int) {
			k := d.waking - before
			for _, w := range waiters {
				if k > 0 && state[w] == asleep {
					state[w], k = signalled, k-1
				}
			}
			if k != 0 {
				t.Fatalf("seed %d: a signal with no waiter to take it", seed)
			}
		}
		// loop is the worker's loop from takeLocked on.
		loop := func(w int) {
			if _, key, ok := d.takeLocked(); ok {
				state[w], host[w] = calling, key
				return
			}
			d.idle++
			state[w] = asleep
			waiters = append(waiters, w)
		}
		check := func(seed uint64, at string) {
			var sleeping, woken, unstarted int
			for _, s := range state {
				switch s {
				case asleep:
					sleeping++
				case signalled:
					woken++
				case notStarted:
					unstarted++
				}
			}
			if d.idle != sleeping+woken || d.waking != woken {
				t.Fatalf("seed %d, after %s: idle %d, waking %d; the model has %d and %d", seed, at, d.idle, d.waking, sleeping+woken, woken)
			}
			if n := d.sched.startable(); sleeping > 0 && n > woken+unstarted {
				t.Fatalf("seed %d, after %s: %d rows may start, %d workers on their way, %d asleep", seed, at, n, woken+unstarted, sleeping)
			}
		}
		var id int64
		for range 400 {
			switch r.IntN(6) {
			case 0: // a turn or a fresh claim queues rows
				var claimed []store.Claimed
				for range 1 + r.IntN(5) {
					id++
					claimed = append(claimed, claimFor(id, hosts[r.IntN(len(hosts))]))
				}
				before := d.waking
				d.queueLocked(claimed)
				markSignalled(before)
				check(seed, "queue")
			case 1: // a worker starts
				for w, s := range state {
					if s == notStarted {
						loop(w)
						check(seed, "a start")
						break
					}
				}
			case 2: // a signalled worker returns from Wait
				for i, w := range waiters {
					if state[w] == signalled {
						waiters = append(waiters[:i:i], waiters[i+1:]...)
						d.idle--
						d.waking = max(d.waking-1, 0)
						loop(w)
						check(seed, "a wake-up")
						break
					}
				}
			case 3, 4: // a call finishes, and its worker goes on
				var busy []int
				for w, s := range state {
					if s == calling {
						busy = append(busy, w)
					}
				}
				if len(busy) == 0 {
					continue
				}
				w := busy[r.IntN(len(busy))]
				// Answered or not: a call with no answer after more than hangAfter
				// makes its host hanging (one call at a time), an answer ends it.
				if d.sched.done(host[w], time.Duration(1+r.IntN(3))*time.Second, r.IntN(2) == 0) {
					before := d.waking
					d.wakeLocked()
					markSignalled(before)
				}
				d.pending = append(d.pending, released(claimFor(0, host[w]), clock.t))
				d.wg.Done()
				loop(w)
				check(seed, "a finished call")
			case 5: // time passes and a turn trims what stalled hosts hold
				clock.t = clock.t.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
				parked := d.sched.parked
				n, pending := d.sched.trim(d.pending)
				d.pending = pending
				d.wg.Add(-n)
				if d.sched.parked > parked {
					// The calls of a stalled host are parked: a worker is started for
					// each (modelled here, as d.running is 0), and idle ones woken.
					for len(state) < workers+d.sched.parked {
						state, host = append(state, notStarted), append(host, "")
					}
					before := d.waking
					d.parkedLocked()
					markSignalled(before)
				}
				check(seed, "a trim")
			}
		}
	}
}
