package store

import (
	"context"
	"database/sql"
	"time"
)

// FreshClaimer lets the dispatch loop take the deliveries of new events in the
// transaction that stores them. Without it, an event's delivery waits after the
// event's commit for a turn of the loop to claim it, and while a backlog drains
// for another host, that is the rest of a long turn and a short one after it.
// With it, a group of the writer that made deliveries due now (the intake's, with
// no coalescing window) claims up to Limit of the newest due rows last, in the same
// transaction, and hands them to Take after the commit: the calls can begin as the
// events are acknowledged.
type FreshClaimer struct {
	// Limit is how many deliveries the loop can take now (0: none). Called in the
	// group writer: it must be quick and must not call the store.
	Limit func() int
	// Take receives the claimed deliveries, leased, after their commit: the loop
	// queues them as a turn's. Called in the group writer: it must be quick and must
	// not call the store.
	Take func([]Claimed)
	// Settled reports, after Take, whether the loop holds nothing the store has not
	// recorded yet (the outcomes of finished calls, rows handed back): only then
	// may a call whose claim took all it could skip asking for a turn
	// (IntakeResult.Claimed), since recording them may make more rows claimable.
	// Called in the group writer: it must be quick and must not call the store.
	// Nil: never.
	Settled func() bool
	Lease   time.Duration
}

// ClaimFresh sets the claimer of the deliveries of new events (nil: none, and the
// turns of the dispatch loop claim them). It returns once no group is between a
// claim for the claimer it replaces and that claimer's Take: after ClaimFresh(nil),
// the old claimer gets nothing more.
func (s *Store) ClaimFresh(c *FreshClaimer) {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	s.fresh.Store(c)
}

// madeDeliveries notes, in the group writer, that a call of the running group
// made or merged outbox rows.
func (s *Store) madeDeliveries(n int) { s.groupFresh += n }

// claimFresh claims, last in a group's transaction, the newest due deliveries for
// the fresh claimer, when a call of the group made deliveries, no turn is in the
// group (a turn claims them itself) and the claimer has room. It returns what it
// claimed, the claimer (nil when it did not claim), and whether it took every
// delivery a claim could take now: it found fewer than it had room for.
func (s *Store) claimFresh(ctx context.Context, tx *sql.Tx, batch []*groupReq) (claimed []Claimed, c *FreshClaimer, drained bool, err error) {
	c = s.fresh.Load()
	if c == nil || s.groupFresh == 0 {
		return nil, nil, false, nil
	}
	for _, r := range batch {
		if r.lazy {
			return nil, nil, false, nil
		}
	}
	n := c.Limit()
	if n <= 0 {
		return nil, nil, false, nil
	}
	at := ms(s.Now())
	for _, r := range batch {
		at = max(at, r.at)
	}
	claimed, found, err := s.claimRows(ctx, tx, nil, at, 0, n, c.Lease)
	if err != nil {
		return nil, nil, false, err
	}
	return claimed, c, found < n, nil
}

// commitClaiming commits a group's transaction, having claimed last for the fresh
// claimer (claimFresh), and then hands the claim to the claimer's Take; the claimer
// stays set meanwhile (ClaimFresh waits). Each call of batch learns whether the
// claim left anything for the dispatch loop (groupReq.drained). A claim that fails
// rolls tx back and is returned as claimErr, nothing committed; otherwise err is
// the commit's.
func (s *Store) commitClaiming(tx *sql.Tx, batch []*groupReq) (claimErr, err error) {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	claimed, c, drained, claimErr := s.claimFresh(context.Background(), tx, batch)
	if claimErr != nil {
		tx.Rollback()
		return claimErr, nil
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.committed()
	if len(claimed) > 0 {
		c.Take(claimed)
	}
	// What the loop holds unrecorded may make more rows claimable once a turn
	// records it (an outcome frees its pair's waiting row): then a turn is needed.
	drained = drained && c.Settled != nil && c.Settled()
	for _, r := range batch {
		r.drained = drained
	}
	return nil, nil
}
