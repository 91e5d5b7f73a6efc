package dispatch

import (
	"time"

	"hookd/store"
)

// queueDepth is how many calls' worth of rows the dispatcher keeps claimed per
// worker (and per host connection). A turn (one transaction) takes ~50 µs per row,
// so at 4 the workers ran dry during every turn of a backlog drain; at 8 they
// do not (BENCHMARKS.md).
const queueDepth = 8

// leaseSlack is how much longer a claim's lease is than the longest wait and call
// it covers: time for the call's outcome to reach a turn and be recorded.
const leaseSlack = 30 * time.Second

// stallAfter is how long a host with calls running may go without finishing one
// before it counts as stalled: its queue is cut back to one round of calls, and
// its calls no longer take workers from other hosts (parked). At a second, hosts
// that stopped answering together held every worker and the whole capacity (their
// queues) for that second. A host whose calls are known to take longer has
// longer (see scheduler.stalled).
const stallAfter = 250 * time.Millisecond

// hangAfter is how long a call may get no answer before its host counts as
// hanging: one call at a time until a call to it is answered.
const hangAfter = time.Second

// parkedPerWorker bounds the calls parked at once, per worker: hosts that stop
// answering hold no worker until 4 × workers of their calls wait at once (each a
// goroutine and a connection, tens of KiB), so at most 5 × workers calls run.
const parkedPerWorker = 4

// releaseDelay is how long a row handed back by a saturated host waits before it is
// due again.
const releaseDelay = 100 * time.Millisecond

// handBackMax bounds how long a row a host cannot take waits before it is due
// again (handBackDelay): the longest a host that answers again, or works through
// its queue sooner than its average call says, waits for its rows.
const handBackMax = 5 * time.Second

// speedHosts bounds how many hosts' speeds the scheduler remembers; past it, it
// forgets them all and learns again.
const speedHosts = 10000

// hostState is one target host's share of the scheduler.
type hostState struct {
	inFlight int
	parked   int // of inFlight, calls parked when the host stalled
	queue    []store.Claimed
	// buf is queue's array from its front: a queue that empties starts again there,
	// so a busy host's rows do not grow a new array at every turn.
	buf      []store.Claimed
	progress time.Time // when a call to it last finished, or its first call started
}

// scheduler holds the rows the dispatcher has claimed and hands them to the
// workers host by host: at most workers calls at once, at most perHost to one
// host, hosts taking turns, and a bounded queue per host, so a slow or dead
// receiver cannot take capacity that other hosts could use. A host known to be
// quick may hold more (see room).
//
// Hosts that stop answering cannot hold the workers either. Once a host has
// stalled (no call to it finished for stallAfter), its running calls are parked:
// they count neither against workers nor in the capacity, so the other hosts get
// every worker while those calls wait out their timeout (at most parkMax calls are
// parked at once). A host whose call got no answer for longer than hangAfter is
// hanging: it gets one call at a time, and one round of rows queued, until a call
// to it is answered.
//
// Its clock, now, tells whether a host has stalled and when a row handed back is
// due again; the dispatcher gives it the store's clock, so a test that pins one
// pins both. It is not safe for concurrent use: the dispatcher's mutex guards it.
type scheduler struct {
	now     func() time.Time
	tick    time.Duration // how long a row a slow host cannot take waits
	workers int           // calls at once
	perHost int           // calls at once to one host

	inFlight int                      // calls running, parked ones included
	parked   int                      // calls running to stalled hosts, outside the workers' count
	parkMax  int                      // the most calls parked at once
	queued   int                      // rows waiting for a worker
	hosts    map[string]*hostState    // hosts with calls running or rows queued
	speed    map[string]time.Duration // per host: average call duration
	hanging  map[string]struct{}      // hosts whose last call got no answer for longer than hangAfter
	ready    []string                 // hosts with queued rows, in turn order
}

func newScheduler(workers, perHost int, tick time.Duration, now func() time.Time) *scheduler {
	return &scheduler{
		now: now, tick: tick, workers: workers, perHost: perHost, parkMax: parkedPerWorker * workers,
		hosts: map[string]*hostState{},
		speed: map[string]time.Duration{}, hanging: map[string]struct{}{},
	}
}

// capacity is how many rows the dispatcher holds at once (running and queued): more
// than the workers, so the next batch is ready while the loop writes outcomes.
func (s *scheduler) capacity() int { return queueDepth * s.workers }

// hostQueueMax bounds the rows a host of unknown speed may have waiting: a slow
// receiver keeps at most this many claimed, and the rest of the capacity serves
// other hosts.
func (s *scheduler) hostQueueMax() int { return queueDepth * s.perHost }

// held is how many rows are running or queued, parked calls left out: they take
// no place in the capacity.
func (s *scheduler) held() int { return s.inFlight - s.parked + s.queued }

// active is how many calls take a worker: those running, less the parked ones.
func (s *scheduler) active() int { return s.inFlight - s.parked }

// limit is how many calls host key may have at once: perHost, or one while it is
// hanging.
func (s *scheduler) limit(key string) int {
	if len(s.hanging) > 0 {
		if _, ok := s.hanging[key]; ok {
			return 1
		}
	}
	return s.perHost
}

// stalled reports whether host key (h) has calls running and none has finished
// for longer than stallAfter, or, for a host whose calls are known to take longer,
// twice its average call, up to hangAfter, unless it is hanging (its calls' time
// is then how long they waited for no answer): a receiver that answers every call in
// 300 ms, its calls started together, finishes none for 300 ms at a time; counted
// as stalled then, its queue was cut to one round between every two, and with the
// rows handed back due a tick later it had none for the next round now and again
// (a backlog for one such host drained at 22 deliveries a second, not 26).
func (s *scheduler) stalled(key string, h *hostState, now time.Time) bool {
	if h.inFlight == 0 {
		return false
	}
	after := stallAfter
	if speed := s.speed[key]; 2*speed > after {
		if _, hanging := s.hanging[key]; !hanging {
			after = min(2*speed, hangAfter)
		}
	}
	return now.Sub(h.progress) > after
}

// handBackDelay is how long a row that host h cannot take waits before it is
// due again: a tick, or as long as the host takes to work through its queue
// (queueTime) if that is longer, or, once the host has stalled, as long as it has
// been stalled, up to handBackMax. A host that has stopped answering (its calls
// wait out delivery.timeout) then has its rows claimed and handed back every few
// seconds, not at every turn, where they came first in each claim (the oldest
// due) and took its place from other hosts' rows.
func (s *scheduler) handBackDelay(key string, h *hostState, now time.Time) time.Duration {
	if !s.stalled(key, h, now) {
		return max(s.tick, s.queueTime(key, h))
	}
	return min(max(s.tick, now.Sub(h.progress)), handBackMax)
}

// queueTime is about how long host key (h) takes to work through the rows it has
// queued, at its average call and its limit of calls at once, up to
// handBackMax; 0 for a host whose speed is not known. A row such a host
// cannot take is due again then rather than a tick later: a backlog for a host
// whose calls take 300 ms was claimed and handed back 22,680 times in 15 s for
// 392 deliveries, each of its rows at every turn, though the host could take none
// of them for seconds.
func (s *scheduler) queueTime(key string, h *hostState) time.Duration {
	speed := s.speed[key]
	if speed <= 0 {
		return 0
	}
	return min(time.Duration(len(h.queue))*speed/time.Duration(s.limit(key)), handBackMax)
}

// free is how many more rows the next turn may claim.
func (s *scheduler) free() int { return s.capacity() - s.held() }

// room is how many rows a host may have queued: hostQueueMax, or, for a host whose
// calls are quick, as many as it finishes in about a second (so a backlog for one
// or a few fast hosts fills the whole capacity instead of being claimed and handed
// back turn after turn). A hanging host gets queueDepth; a host that has stalled,
// one round of calls (its limit), so a few dead hosts cannot fill the capacity
// with rows that wait for them.
func (s *scheduler) room(key string, h *hostState, now time.Time) int {
	limit := s.limit(key)
	switch {
	case s.stalled(key, h, now):
		return limit
	case limit < s.perHost:
		return queueDepth * limit
	}
	speed := s.speed[key]
	if speed <= 0 {
		return s.hostQueueMax()
	}
	return min(max(s.hostQueueMax(), int(time.Second/speed)*s.perHost), s.capacity())
}

// released is the outcome of a row handed back unattempted, due again at retryAt.
func released(c store.Claimed, retryAt time.Time) store.Outcome {
	return store.Outcome{
		DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID, Kind: store.OutcomeReleased, RetryAt: retryAt, Attempt: c.Attempt,
	}
}

// queue takes the rows a turn claimed: each joins its host's queue or, when the
// host is saturated, is handed back (appended to out as released). It returns how
// many rows it queued, and out.
func (s *scheduler) queue(claimed []store.Claimed, out []store.Outcome) (int, []store.Outcome) {
	now := s.now()
	// Each host's room, and whether it is slow (it still had half its room queued
	// from earlier turns, not just briefly ahead of the others), as the turn began.
	type hostTurn struct {
		room int
		slow bool
	}
	turn := map[string]hostTurn{}
	n := 0
	for _, c := range claimed {
		key := c.Target.Host()
		h := s.hosts[key]
		if h == nil {
			h = &hostState{}
			s.hosts[key] = h
		}
		ht, seen := turn[key]
		if !seen {
			ht.room = s.room(key, h, now)
			ht.slow = len(h.queue) >= ht.room/2
			turn[key] = ht
		}
		if len(h.queue) >= ht.room {
			// The host is saturated: hand the row back untouched, behind the others,
			// so a slow receiver cannot take capacity that other hosts could use. A
			// host that only filled up in this turn gets it back shortly, so a brief
			// imbalance leaves no tail of late deliveries; a slow one's wait a tick or
			// until it has worked through its queue, and a stalled one's as long as
			// it has stalled (handBackDelay), so a slow or dead host does not churn
			// the outbox.
			delay := min(s.tick, releaseDelay)
			if ht.slow {
				delay = s.handBackDelay(key, h, now)
			}
			out = append(out, released(c, now.Add(delay)))
			continue
		}
		if len(h.queue) == 0 {
			s.ready = append(s.ready, key)
		}
		if len(h.queue) == cap(h.queue) {
			h.queue = append(h.queue, c)
			h.buf = h.queue[:0] // a new array
		} else {
			h.queue = append(h.queue, c)
		}
		s.queued++
		n++
	}
	return n, out
}

// trim parks the calls of hosts that have stalled, and hands back (a tick later,
// or longer: handBackDelay) what a host holds queued beyond its room: a host that has stalled keeps one round
// of calls, so no queued row outlives its lease. It appends the rows handed back to
// out and returns how many, and out; s.parked tells how many calls are parked.
func (s *scheduler) trim(out []store.Outcome) (int, []store.Outcome) {
	now := s.now()
	n := 0
	for key, h := range s.hosts {
		if h.parked < h.inFlight && s.parked < s.parkMax && s.stalled(key, h, now) {
			k := min(h.inFlight-h.parked, s.parkMax-s.parked)
			h.parked += k
			s.parked += k
		}
		for room := s.room(key, h, now); len(h.queue) > room; {
			c := h.queue[len(h.queue)-1]
			h.queue[len(h.queue)-1] = store.Claimed{} // the array stays: it holds no target
			h.queue = h.queue[:len(h.queue)-1]
			out = append(out, released(c, now.Add(s.handBackDelay(key, h, now))))
			s.queued--
			n++
		}
	}
	return n, out
}

// startable is how many queued rows may start now: take would hand out as many,
// one after another, with no call finishing meanwhile.
func (s *scheduler) startable() int {
	n := 0
	for _, key := range s.ready {
		h := s.hosts[key]
		n += min(len(h.queue), max(s.limit(key)-h.inFlight, 0))
	}
	return min(n, max(s.workers-s.active(), 0))
}

// take takes the next queued row that may start now, counting it in flight, and
// returns it with its host.
func (s *scheduler) take() (store.Claimed, string, bool) {
	for i := 0; i < len(s.ready) && s.active() < s.workers; i++ {
		key := s.ready[i]
		h := s.hosts[key]
		if h.inFlight >= s.limit(key) {
			continue
		}
		c := h.queue[0]
		h.queue[0] = store.Claimed{} // the array stays: it holds no target
		h.queue = h.queue[1:]
		// The host goes to the back of the line (or leaves it when it has nothing
		// left), so hosts take turns: a host whose calls hang cannot keep the workers
		// from the others' rows until those outlive their lease.
		s.ready = append(s.ready[:i], s.ready[i+1:]...)
		if len(h.queue) == 0 {
			h.queue = h.buf // empty, at the array's front
		} else {
			s.ready = append(s.ready, key)
		}
		if h.inFlight == 0 {
			h.progress = s.now()
		}
		h.inFlight++
		s.inFlight++
		s.queued--
		return c, key, true
	}
	return store.Claimed{}, "", false
}

// done counts a call to host key that took took as finished; answered says whether
// it got an answer (any status). A call with no answer after more than hangAfter
// makes the host hanging; an answer ends that. It reports whether a host's limit
// rose (this one was hanging, or the hosts remembered as hanging were forgotten),
// so more rows may start than the one its worker takes next.
func (s *scheduler) done(key string, took time.Duration, answered bool) (rose bool) {
	h := s.hosts[key]
	h.progress = s.now()
	s.noteCall(key, took)
	switch {
	case answered:
		if len(s.hanging) > 0 {
			_, rose = s.hanging[key]
			delete(s.hanging, key)
		}
	case took > hangAfter:
		if len(s.hanging) >= speedHosts {
			s.hanging = map[string]struct{}{} // bounded: forget and learn again
			rose = true                       // (each of them gets its limit back)
		}
		s.hanging[key] = struct{}{}
	}
	if h.parked > 0 {
		// Which of its calls finished is not known: one parked, to err on the side
		// of fewer calls taking workers.
		h.parked--
		s.parked--
	}
	h.inFlight--
	if h.inFlight == 0 && len(h.queue) == 0 {
		delete(s.hosts, key)
	}
	s.inFlight--
	return rose && s.perHost > 1
}

// noteCall updates a host's average call duration.
func (s *scheduler) noteCall(key string, took time.Duration) {
	if len(s.speed) >= speedHosts {
		s.speed = map[string]time.Duration{} // bounded: forget and learn again
	}
	if old, ok := s.speed[key]; ok {
		took = (7*old + took) / 8
	}
	s.speed[key] = max(took, time.Microsecond)
}

// releaseAll hands every queued row back, due at once (at shutdown). It appends
// them to out and returns how many, and out.
func (s *scheduler) releaseAll(out []store.Outcome) (int, []store.Outcome) {
	now := s.now()
	n := 0
	for _, key := range s.ready {
		h := s.hosts[key]
		for _, c := range h.queue {
			out = append(out, released(c, now))
			s.queued--
			n++
		}
		h.queue = nil
		if h.inFlight == 0 {
			delete(s.hosts, key)
		}
	}
	s.ready = nil
	return n, out
}
