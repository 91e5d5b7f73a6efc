package dispatch

import (
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

	s.done("b:1", time.Millisecond)
	_, _, ok := s.take()
	is.True(!ok) // a worker is free, but a:1 already has its 2 calls
	s.done("a:1", time.Millisecond)
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
// back to hostQueueMax, handing the rest back a tick later.
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

	clock.t = clock.t.Add(time.Millisecond)
	trimmed, back = s.trim(nil)
	is.Equal(trimmed, 30-16) // stalled: cut back to hostQueueMax
	is.Equal(len(back), 30-16)
	for _, o := range back {
		is.Equal(o.Kind, store.OutcomeReleased)       // unattempted
		is.Equal(o.RetryAt, clock.t.Add(time.Second)) // due a tick later
	}
	is.Equal(s.held(), 2+16)

	s.done("a:1", time.Millisecond) // a call finishes: the host moves again
	is.Equal(s.room("a:1", s.hosts["a:1"], clock.now()), 32)
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
	s.done("b:1", time.Millisecond)
	is.Equal(s.startable(), 0) // a worker is free, but a:1 has its 2 calls
	s.done("a:1", time.Millisecond)
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
