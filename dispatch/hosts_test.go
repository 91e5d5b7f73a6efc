package dispatch

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// stepClock is a clock a test moves by hand.
type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time { return c.t }

// claimFor is a claimed row for a target on host.
func claimFor(id int64, host string) store.Claimed {
	return store.Claimed{ID: id, Target: &store.Target{SubscriptionID: id, URL: "http://" + host + "/hook"}}
}

// claimsFor is n claimed rows for host, numbered from first.
func claimsFor(first int64, n int, host string) []store.Claimed {
	var out []store.Claimed
	for i := range n {
		out = append(out, claimFor(first+int64(i), host))
	}
	return out
}

// TestSchedulerTurnsAndLimits: hosts take turns for the workers, within the worker
// and per-host limits.
func TestSchedulerTurnsAndLimits(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(3, 2, time.Second, clock.now) // 3 workers, 2 calls per host
	n, back := s.queue(append(claimsFor(1, 4, "a:1"), claimFor(5, "b:1")), nil)
	is.Equal(n, 5)         // all queued
	is.Equal(len(back), 0) // nothing handed back
	is.Equal(s.held(), 5)

	var order []string
	for {
		_, key, ok := s.take()
		if !ok {
			break
		}
		order = append(order, key)
	}
	is.Equal(order, []string{"a:1", "b:1", "a:1"}) // b's row goes before a's second: hosts take turns; then the 3 workers are busy
	is.Equal(s.inFlight, 3)
	is.Equal(s.queued, 2)

	s.done("b:1", time.Millisecond, true)
	_, _, ok := s.take()
	is.True(!ok) // a worker is free, but a:1 already has its 2 calls
	s.done("a:1", time.Millisecond, true)
	c, key, ok := s.take()
	is.True(ok)          // a:1 may have another call now
	is.Equal(key, "a:1") // its next row
	is.Equal(c.ID, int64(3))
	_, isHost := s.hosts["b:1"]
	is.True(!isHost) // a host with nothing running or queued is forgotten
}

// TestSchedulerHandsBack: a host whose speed is unknown keeps hostQueueMax rows;
// what it cannot take goes back shortly if it only filled up in this turn, and a
// tick later once it is known to be slow.
func TestSchedulerHandsBack(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(4, 2, time.Second, clock.now) // capacity 32, hostQueueMax 16
	n, back := s.queue(claimsFor(1, 20, "a:1"), nil)
	is.Equal(n, 16)        // hostQueueMax
	is.Equal(len(back), 4) // the rest handed back
	for _, o := range back {
		is.Equal(o.Kind, store.OutcomeReleased)          // unattempted
		is.Equal(o.RetryAt, clock.t.Add(releaseDelay))   // due again shortly
		is.Equal(o.SubscriptionID, o.DeliveryID)         // (each for its own row)
		is.True(o.DeliveryID > 16 && o.DeliveryID <= 20) // the last claimed
	}
	n, back = s.queue(claimsFor(21, 3, "a:1"), nil)
	is.Equal(n, 0)                                      // still full
	is.Equal(len(back), 3)                              // all handed back
	is.Equal(back[0].RetryAt, clock.t.Add(time.Second)) // a tick later: the host is slow
}

// TestSchedulerTrimsStalledHost: a host known to be fast may hold the whole
// capacity; once its calls stop finishing for longer than stallAfter, trim cuts it
// back to one round of calls, handing the rest back a tick later (or as long as it
// has stalled, if that is longer), and parks its calls: they take no worker and no
// place in the capacity.
func TestSchedulerTrimsStalledHost(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(4, 2, time.Second, clock.now) // capacity 32, hostQueueMax 16
	s.speed["a:1"] = time.Millisecond               // known to be quick
	n, back := s.queue(claimsFor(1, 32, "a:1"), nil)
	is.Equal(n, 32)        // it may hold the whole capacity
	is.Equal(len(back), 0) // nothing handed back
	for range 2 {
		_, _, ok := s.take()
		is.True(ok) // its 2 calls start
	}

	clock.t = clock.t.Add(stallAfter)
	trimmed, back := s.trim(nil)
	is.Equal(trimmed, 0) // not stalled yet
	is.Equal(len(back), 0)
	is.Equal(s.parked, 0)

	clock.t = clock.t.Add(time.Millisecond)
	trimmed, back = s.trim(nil)
	is.Equal(trimmed, 30-2) // stalled: cut back to one round of its calls
	is.Equal(len(back), 30-2)
	for _, o := range back {
		is.Equal(o.Kind, store.OutcomeReleased)       // unattempted
		is.Equal(o.RetryAt, clock.t.Add(time.Second)) // due a tick later (it has stalled for less than a tick)
	}
	is.Equal(s.parked, 2)   // its 2 calls are parked
	is.Equal(s.active(), 0) // and take no worker
	is.Equal(s.held(), 2)   // nor a place in the capacity: only its 2 queued rows
	_, _, ok := s.take()
	is.True(!ok) // its queued rows still wait: it has its 2 calls

	s.done("a:1", time.Millisecond, true) // a call finishes: the host moves again
	is.Equal(s.parked, 1)                 // (counted as one of the parked)
	is.Equal(s.room("a:1", s.hosts["a:1"], clock.now()), 32)
}

// TestSchedulerSlowHostStallsLater: a host whose calls are known to take 300 ms
// counts as stalled only after twice that with none finishing, not after
// stallAfter: between two rounds of its calls it keeps its queue and its calls
// their workers. One known to take longer still stalls by hangAfter, and one of
// unknown speed after stallAfter, as does a hanging one, whose calls' time is how
// long they got no answer.
func TestSchedulerSlowHostStallsLater(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(8, 2, time.Second, clock.now) // hostQueueMax 16
	s.speed["slow:1"] = 300 * time.Millisecond
	s.speed["slower:1"] = 5 * time.Second
	s.speed["dead:1"] = 20 * time.Second // its calls timed out
	s.hanging["dead:1"] = struct{}{}     // (one at a time)
	s.queue(append(append(append(claimsFor(1, 10, "slow:1"), claimsFor(11, 10, "slower:1")...), claimsFor(21, 10, "new:1")...), claimsFor(31, 10, "dead:1")...), nil)
	for range 7 {
		_, _, ok := s.take()
		is.True(ok) // each host's 2 calls start, dead:1's one
	}
	trimmed := func() map[string]int {
		_, back := s.trim(nil)
		n := map[string]int{}
		for _, o := range back {
			n[map[int64]string{0: "slow:1", 1: "slower:1", 2: "new:1", 3: "dead:1"}[(o.DeliveryID-1)/10]]++
		}
		return n
	}

	clock.t = clock.t.Add(stallAfter + time.Millisecond)
	is.Equal(trimmed(), map[string]int{"new:1": 8 - 2, "dead:1": 8 - 1 - 1}) // only the host of unknown speed and the hanging one have stalled
	is.Equal(s.parked, 3)                                                    // and only their calls are parked
	is.Equal(s.hosts["slow:1"].parked, 0)

	clock.t = clock.t.Add(599*time.Millisecond - stallAfter) // 600 ms with no call finished: twice slow:1's
	is.Equal(len(trimmed()), 0)
	clock.t = clock.t.Add(time.Millisecond)
	is.Equal(trimmed(), map[string]int{"slow:1": 8 - 2}) // now it has stalled too
	is.Equal(s.hosts["slow:1"].parked, 2)
	is.Equal(s.hosts["slower:1"].parked, 0)

	clock.t = clock.t.Add(hangAfter - 601*time.Millisecond)
	is.Equal(len(trimmed()), 0)
	clock.t = clock.t.Add(time.Millisecond)
	is.Equal(trimmed(), map[string]int{"slower:1": 8 - 2}) // by hangAfter, however slow it is known to be
	is.Equal(s.parked, 7)
}

// TestSchedulerParksStalledHosts: the calls of hosts that stall take no worker once
// a trim has parked them (at most parkMax of them), so another host's rows start;
// a call that got no answer for longer than hangAfter leaves its host one call at
// a time until one is answered.
func TestSchedulerParksStalledHosts(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(4, 2, time.Second, clock.now) // 4 workers, 2 calls per host
	is.Equal(s.parkMax, 4*parkedPerWorker)
	s.parkMax = 4 // at most 4 calls parked, for this test
	s.queue(append(claimsFor(1, 4, "a:1"), claimsFor(5, 4, "b:1")...), nil)
	for range 4 {
		_, _, ok := s.take()
		is.True(ok) // a:1 and b:1 take the 4 workers
	}
	s.queue(claimsFor(9, 3, "c:1"), nil)
	_, _, ok := s.take()
	is.True(!ok) // c:1 waits: every worker is busy

	clock.t = clock.t.Add(stallAfter + time.Millisecond) // a:1's and b:1's calls hang
	s.trim(nil)
	is.Equal(s.parked, 4)      // all 4 parked
	is.Equal(s.active(), 0)    // so no worker is taken
	is.Equal(s.startable(), 2) // c:1's rows may start, up to its limit
	for _, want := range []string{"c:1", "c:1"} {
		_, key, ok := s.take()
		is.True(ok)
		is.Equal(key, want) // not a:1 or b:1: each has its 2 calls
	}
	is.Equal(s.inFlight, 6) // more calls at once than workers: 4 of them parked

	s.queue(claimsFor(12, 2, "d:1"), nil)
	clock.t = clock.t.Add(stallAfter + time.Millisecond) // now c:1 hangs too
	s.trim(nil)
	is.Equal(s.parked, 4) // no more than parkMax are parked
	is.Equal(s.active(), 2)

	// A call to a:1 ends with no answer after 20 s: a:1 is hanging.
	is.True(!s.done("a:1", 20*time.Second, false))
	is.Equal(s.limit("a:1"), 1)
	is.Equal(s.parked, 3)                                            // the call was one of the parked
	is.Equal(s.room("a:1", s.hosts["a:1"], clock.now()), queueDepth) // one call's worth queued
	is.Equal(s.limit("b:1"), 2)                                      // other hosts keep theirs
	is.True(!s.done("a:1", 20*time.Second, false))
	c, key, ok := s.take()
	for ok && key != "a:1" {
		c, key, ok = s.take()
	}
	is.True(ok)              // a:1 gets a call again ...
	is.Equal(c.ID, int64(3)) // (its next row)
	is.Equal(s.hosts["a:1"].inFlight, 1)
	for ok {
		_, key, ok = s.take()
		is.True(key != "a:1") // ... but only one at a time
	}
	is.True(s.done("a:1", time.Millisecond, true)) // an answer: its limit rises again
	is.Equal(s.limit("a:1"), 2)
	is.True(!s.done("b:1", 5*time.Millisecond, false)) // a quick failure changes nothing
	is.Equal(s.limit("b:1"), 2)
}

// TestSchedulerForgetsHangingHostsAndSaysSo: when the hosts it remembers as
// hanging reach speedHosts, the scheduler forgets them all, and each gets its
// limit back: done reports it, so idle workers are woken for the rows that may
// start now, rather than left asleep beside them.
func TestSchedulerForgetsHangingHostsAndSaysSo(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(4, 2, time.Second, clock.now)
	s.hanging["a:1"] = struct{}{}
	s.queue(append(claimsFor(1, 3, "a:1"), claimFor(10, "b:1")), nil)
	for range 2 {
		_, _, ok := s.take()
		is.True(ok) // a:1's one call, and b:1's
	}
	is.Equal(s.startable(), 0) // a:1 is hanging: one call at a time
	for i := 0; len(s.hanging) < speedHosts; i++ {
		s.hanging[fmt.Sprintf("h%d.example:443", i)] = struct{}{}
	}
	clock.t = clock.t.Add(2 * time.Second)
	is.True(s.done("b:1", 2*time.Second, false)) // b:1 hangs: the others are forgotten, and their limits rise
	is.Equal(s.limit("a:1"), 2)
	is.Equal(s.startable(), 1) // a:1's next row may start beside its call
}

// TestSchedulerStartable: startable counts what take would hand out now, within
// the per-host and worker limits, and follows takes and finished calls.
func TestSchedulerStartable(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(3, 2, time.Second, clock.now) // 3 workers, 2 calls per host
	is.Equal(s.startable(), 0)                      // nothing queued
	s.queue(append(claimsFor(1, 4, "a:1"), claimFor(5, "b:1")), nil)
	is.Equal(s.startable(), 3) // a:1 two, b:1 one: three, as many as the workers
	n := 0
	for {
		if _, _, ok := s.take(); !ok {
			break
		}
		n++
	}
	is.Equal(n, 3)             // take agrees
	is.Equal(s.startable(), 0) // every worker busy
	s.done("b:1", time.Millisecond, true)
	is.Equal(s.startable(), 0) // a worker is free, but a:1 has its 2 calls
	s.done("a:1", time.Millisecond, true)
	is.Equal(s.startable(), 1) // a:1 may have one more
}

// TestReleasedCarriesItsClaim: a row handed back unattempted names the claim it
// was taken by (its attempt number), so the store applies it only to that claim.
func TestReleasedCarriesItsClaim(t *testing.T) {
	c := store.Claimed{ID: 7, Attempt: 3, Target: &store.Target{SubscriptionID: 2}}
	if o := released(c, time.Now()); o.Attempt != 3 || o.Kind != store.OutcomeReleased || o.DeliveryID != 7 {
		t.Errorf("released: %+v", o)
	}
}

// TestSchedulerKeepsEachHostsOrder checks the scheduler against a model, over
// random sequences of turns (queue), calls starting (take) and ending (done), and
// trims: each host's rows start in the order they were queued, a trim hands back a
// host's last rows, and no row is lost or handed out twice, while a host's queue
// array is used again once it empties.
func TestSchedulerKeepsEachHostsOrder(t *testing.T) {
	hosts := []string{"a:1", "b:1", "c:1"}
	for seed := range int64(200) {
		r := rand.New(rand.NewSource(seed))
		clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
		s := newScheduler(4, 2, time.Second, clock.now)
		s.parkMax = int(seed % 5)     // none to 4 parked at once: the bound is reached
		model := map[string][]int64{} // each host's queued rows, oldest first
		running := map[int64]string{}
		started := map[int64]bool{}
		next := int64(1)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		for range 400 {
			switch op := r.Intn(10); {
			case op < 4: // a turn's rows
				var claimed []store.Claimed
				for range r.Intn(20) {
					claimed = append(claimed, claimFor(next, hosts[r.Intn(len(hosts))]))
					next++
				}
				n, back := s.queue(claimed, nil)
				if n+len(back) != len(claimed) {
					fail("queued %d and handed back %d of %d rows", n, len(back), len(claimed))
				}
				handedBack := map[int64]bool{}
				for _, o := range back {
					handedBack[o.DeliveryID] = true
				}
				for _, c := range claimed {
					if !handedBack[c.ID] {
						model[c.Target.Host()] = append(model[c.Target.Host()], c.ID)
					}
				}
			case op < 7: // a call starts
				c, key, ok := s.take()
				if !ok {
					continue
				}
				if started[c.ID] || c.Target == nil {
					fail("row %d handed out twice, or without its target", c.ID)
				}
				started[c.ID] = true
				if len(model[key]) == 0 || model[key][0] != c.ID {
					fail("took row %d of %s, want the first of %v", c.ID, key, model[key])
				}
				model[key] = model[key][1:]
				running[c.ID] = key
				if h := s.hosts[key]; h.inFlight > s.limit(key) {
					fail("host %s has %d calls at once, its limit %d", key, h.inFlight, s.limit(key))
				}
				if s.active() > s.workers {
					fail("%d calls take a worker, of %d workers", s.active(), s.workers)
				}
			case op < 9: // calls end, time passes
				for id, key := range running {
					if r.Intn(2) == 0 {
						s.done(key, time.Duration(r.Intn(3000))*time.Millisecond, r.Intn(2) == 0)
						delete(running, id)
					}
				}
				clock.t = clock.t.Add(time.Duration(r.Intn(2000)) * time.Millisecond)
			default: // a turn trims what slow hosts hold beyond their room
				_, back := s.trim(nil)
				for _, o := range back {
					host := ""
					for _, h := range hosts {
						if m := model[h]; len(m) > 0 && m[len(m)-1] == o.DeliveryID {
							host = h
						}
					}
					if host == "" {
						fail("trim handed back row %d, the last of no host", o.DeliveryID)
					}
					model[host] = model[host][:len(model[host])-1]
				}
			}
			queued := 0
			for _, h := range hosts {
				queued += len(model[h])
				hs := s.hosts[h]
				if hs == nil {
					if len(model[h]) != 0 {
						fail("host %s forgotten with %d rows queued", h, len(model[h]))
					}
					continue
				}
				var ids []int64
				for _, c := range hs.queue {
					ids = append(ids, c.ID)
				}
				if !slices.Equal(ids, model[h]) {
					fail("host %s has %v queued, want %v", h, ids, model[h])
				}
			}
			if queued != s.queued {
				fail("%d rows counted queued, want %d", s.queued, queued)
			}
			parked, inFlight := 0, 0
			for key, h := range s.hosts {
				if h.parked < 0 || h.parked > h.inFlight {
					fail("host %s has %d calls parked of %d running", key, h.parked, h.inFlight)
				}
				parked += h.parked
				inFlight += h.inFlight
			}
			if parked != s.parked || inFlight != s.inFlight || inFlight != len(running) || s.parked > s.parkMax {
				fail("%d calls parked and %d running; the hosts have %d and %d, the model %d running; at most %d parked", s.parked, s.inFlight, parked, inFlight, len(running), s.parkMax)
			}
		}
		if _, back := s.releaseAll(nil); len(back) != countRows(model) || s.queued != 0 {
			fail("releaseAll handed back %d rows, want %d, and left %d counted queued", len(back), countRows(model), s.queued)
		}
	}
}

// countRows is how many rows a model of the hosts' queues holds.
func countRows(model map[string][]int64) int {
	n := 0
	for _, ids := range model {
		n += len(ids)
	}
	return n
}

// TestSchedulerStalledHandBack: the rows a host that has stalled cannot take wait
// as long as it has stalled before they are due again (a tick at least, and
// handBackMax at most), so a host that stopped answering does not have its
// rows claimed and handed back at every turn; once a call to it finishes, as before.
func TestSchedulerStalledHandBack(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(4, 2, 200*time.Millisecond, clock.now)
	s.queue(claimsFor(1, 4, "a:1"), nil)
	for range 2 {
		_, _, ok := s.take()
		is.True(ok) // its 2 calls start, and hang
	}
	handBack := func(id int64) time.Duration {
		_, back := s.queue(claimsFor(id, 40, "a:1"), nil)
		is.True(len(back) > 0) // it cannot take them all
		return back[len(back)-1].RetryAt.Sub(clock.t)
	}
	is.Equal(handBack(100), releaseDelay)         // filled up in this turn: shortly
	is.Equal(handBack(150), 200*time.Millisecond) // slow, not stalled: a tick
	clock.t = clock.t.Add(3 * time.Second)
	s.trim(nil)
	is.Equal(handBack(200), 3*time.Second) // stalled for 3 s: 3 s
	clock.t = clock.t.Add(time.Minute)
	s.trim(nil)
	is.Equal(handBack(300), handBackMax)   // at most handBackMax
	s.done("a:1", time.Millisecond, false) // a call ends: the host moves again
	is.Equal(handBack(400), releaseDelay)  // and, quick now, gets its rows back shortly
}

// TestSchedulerSlowHostHandsBackForItsQueue: the rows a slow host cannot take (its
// calls known to take 300 ms) are due again once it has worked through its queue,
// not a tick later, so a backlog for it is not claimed and handed back at every
// turn; a quick host's, a tick later; never later than handBackMax.
func TestSchedulerSlowHostHandsBackForItsQueue(t *testing.T) {
	is := is.New(t)
	clock := &stepClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(4, 2, 200*time.Millisecond, clock.now) // hostQueueMax 16
	s.speed["slow:1"] = 300 * time.Millisecond
	s.speed["quick:1"] = time.Millisecond
	s.speed["dead:1"] = time.Minute
	for _, tt := range []struct {
		host string
		want time.Duration
	}{
		{"slow:1", 16 * 300 * time.Millisecond / 2}, // 16 queued, 2 at a time: 2.4 s
		{"quick:1", 200 * time.Millisecond},         // a tick
		{"dead:1", handBackMax},                     // at most
	} {
		s.queue(claimsFor(1, 40, tt.host), nil) // fills its room
		_, back := s.queue(claimsFor(100, 3, tt.host), nil)
		is.Equal(len(back), 3)                          // handed back: the host is full
		is.Equal(back[0].RetryAt.Sub(clock.t), tt.want) // due again then
	}
}
