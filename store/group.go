package store

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"runtime"
	"slices"
	"sync"
	"time"
)

// groupMax bounds how many calls share one transaction.
const groupMax = 256

// groupWeightMax bounds the work one group takes on, in rows (an intake call weighs
// its events, a turn of the dispatch loop its outcomes and claims): past it, the
// calls still waiting go in the next group. The write connection is held for the
// whole group, and every call in it waits for its commit, so a group of eight
// 100-event intakes (~8 ms) would hold up a single event, or a turn of the
// dispatch loop, for as long. A call heavier than this is a group of its own.
const groupWeightMax = 256

// groupYields bounds how many times the writer yields to gather a group.
const groupYields = 4

// groupStmts are the savepoint statements around each call of a group, prepared once at Open.
type groupStmts struct {
	savepoint, release, rollbackTo *sql.Stmt
}

func (s *Store) prepareGroup(ctx context.Context) error {
	p := &s.groupSQL
	return s.prepare(ctx, hot{&p.savepoint, "SAVEPOINT g"}, hot{&p.release, "RELEASE g"}, hot{&p.rollbackTo, "ROLLBACK TO g"})
}

// groupReq is one call waiting for the group writer.
type groupReq struct {
	ctx    context.Context
	fn     groupFn
	weight int  // rows it writes, about (at least 1)
	lazy   bool // its commit need not wait for the disk (see beginGroup)
	done   chan error
	// drained is set, before done is sent, when the fresh claim that ended its
	// group took every delivery the dispatch loop could claim (claimFresh).
	drained bool
	// at is the call's reading of the clock, in milliseconds, when the rows it
	// writes are due at once (an intake without a coalescing window): the fresh
	// claim claims at no earlier time, so a wall clock stepped back since does not
	// leave them behind a call told the claim took all.
	at int64
}

// groupFn is a call's work in the group's transaction. Its ctx carries the call's
// values but not its cancellation: once a call is in the group, its statements run
// to the end whatever happens to the request that made it (and the driver need not
// watch a context for each statement, a goroutine and a channel each time).
//
// fn may run more than once: when another call of its group fails, the group rolls
// back and runs again with a savepoint per call (and again without each call whose
// error took the whole transaction: see runSavepoints). So fn sets its results
// afresh each time it runs, and keeps nothing outside the database that the
// rollback would undo.
type groupFn func(ctx context.Context, tx *sql.Tx) error

// group runs fn in a write transaction shared with whatever other calls are waiting
// at the same moment (group commit): under concurrency, many small writes (intake,
// registrations) cost one commit, and so one fsync, between them. A fn's error
// rolls back its changes only (the group runs again, each fn in a savepoint of its
// own: see groupFn); group returns after the commit, so an acknowledged write is
// durable.
func (s *Store) group(ctx context.Context, fn groupFn) error {
	return s.groupWeighted(ctx, 1, fn)
}

// groupWeighted is group for a call that writes about weight rows (groupWeightMax).
func (s *Store) groupWeighted(ctx context.Context, weight int, fn groupFn) error {
	_, err := s.groupDrained(ctx, weight, 0, fn)
	return err
}

// groupDrained is groupWeighted that also reports whether, once the call was
// committed, the fresh claim of its group left nothing for the dispatch loop to
// claim (claimFresh): a turn to claim the call's deliveries would find none. at is
// the call's reading of the clock when what it writes is due then (groupReq.at),
// else 0.
func (s *Store) groupDrained(ctx context.Context, weight int, at int64, fn groupFn) (drained bool, err error) {
	req := &groupReq{ctx: ctx, fn: fn, weight: weight, at: at}
	if err := s.enqueue(ctx, req, s.groupCh); err != nil {
		return false, err
	}
	return req.drained, nil // written before its answer was sent
}

// groupTurn is groupWeighted for a turn of the dispatch loop: it leads the next
// group, ahead of the calls already waiting, because the workers run dry while it
// waits (there is never more than one turn waiting, so it cannot keep the others
// out for longer than its own turn); and it is lazy (beginGroup).
func (s *Store) groupTurn(ctx context.Context, weight int, fn groupFn) error {
	return s.enqueue(ctx, &groupReq{ctx: ctx, fn: fn, weight: weight, lazy: true}, s.firstCh)
}

// enqueue hands a call to the group writer on ch and waits for its commit.
func (s *Store) enqueue(ctx context.Context, req *groupReq, ch chan *groupReq) error {
	req.weight, req.done = max(req.weight, 1), make(chan error, 1)
	select {
	case ch <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errStopped
	}
	// Once queued, fn runs: wait for its commit whatever ctx does, unless the writer
	// has stopped (the store was closed) without taking it.
	select {
	case err := <-req.done:
		return err
	case <-s.groupDone:
		select {
		case err := <-req.done:
			return err
		default:
			return errStopped
		}
	}
}

// groupWriter takes waiting calls in batches and runs each batch in one transaction.
func (s *Store) groupWriter() {
	defer close(s.groupDone)
	for {
		first := s.next()
		if first == nil {
			select {
			case first = <-s.firstCh:
			case first = <-s.groupCh:
			case <-s.catchUp:
				s.checkpointTail()
				continue
			case <-s.closed:
				return
			}
		}
		// Take whatever else is waiting; while that brings more, let the goroutines
		// that are about to write run first (Gosched returns at once when nothing else
		// is runnable, so a lone call is not delayed), so a busy moment shares one commit.
		// A call that would take the group past groupWeightMax is held for the next.
		batch, weight := s.takeWaiting([]*groupReq{first}, first.weight)
		for yields := 0; yields < groupYields && len(batch) < groupMax && len(s.held) == 0; yields++ {
			runtime.Gosched()
			n := len(batch)
			if batch, weight = s.takeWaiting(batch, weight); len(batch) == n {
				break
			}
		}
		s.runGroup(batch)
	}
}

// next is the call that leads the next group, if one is waiting: a call that goes
// first, else one held back from the last group, else the longest waiting. Waiting
// writes go before a checkpoint.
func (s *Store) next() *groupReq {
	select {
	case r := <-s.firstCh:
		return r
	default:
	}
	if len(s.held) > 0 {
		r := s.held[0]
		s.held = slices.Delete(s.held, 0, 1)
		return r
	}
	select {
	case r := <-s.groupCh:
		return r
	default:
		return nil
	}
}

// WriteStats reports how many write transactions the group writer has committed or
// rolled back and how many calls they carried (calls/groups is the group size).
func (s *Store) WriteStats() (groups, calls uint64) {
	return s.groups.Load(), s.groupCalls.Load()
}

// takeWaiting appends the calls waiting now to batch, up to groupMax calls and
// groupWeightMax rows; the call that would go past the weight is held back to lead
// the next group (s.held, at its front: it was taken in its turn). It returns the
// batch and its weight.
func (s *Store) takeWaiting(batch []*groupReq, weight int) ([]*groupReq, int) {
	for len(batch) < groupMax {
		r := s.next()
		if r == nil {
			return batch, weight
		}
		if weight+r.weight > groupWeightMax {
			s.held = slices.Insert(s.held, 0, r)
			return batch, weight
		}
		batch = append(batch, r)
		weight += r.weight
	}
	return batch, weight
}

func (s *Store) runGroup(batch []*groupReq) {
	s.groups.Add(1)
	s.groupCalls.Add(uint64(len(batch)))
	lazy := true
	for _, r := range batch {
		lazy = lazy && r.lazy
	}
	// A turn of the dispatch loop leads the group but runs last in it, so it claims
	// the deliveries of events stored in the same commit: their calls start as soon
	// as it is acknowledged, instead of a turn later.
	slices.SortStableFunc(batch, func(a, b *groupReq) int {
		return cmp.Compare(b2i(a.lazy), b2i(b.lazy))
	})
	// A call whose request went away before the group began is not run.
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
		} else {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	// A call's error is rare: the group runs first without a savepoint per call (two
	// statements a call saved), and only when a call fails does it roll back and run
	// again with one, so that the failing call fails alone.
	if s.runWhole(live, lazy) {
		return
	}
	// Each run that a call's error ends whole leaves that call out of the next: at
	// most one run a call.
	for rest := live; len(rest) > 0; {
		rest = s.runSavepoints(rest, lazy)
	}
}

// answerAll gives every call of batch the same answer.
func answerAll(batch []*groupReq, err error) {
	for _, r := range batch {
		r.done <- err
	}
}

// runWhole runs the calls of a group in one transaction without savepoints, and
// last the fresh claimer's claim (claimFresh). It reports false, having rolled
// back, when a call of several failed, or the claim did: the group must run again
// call by call (runSavepoints). Otherwise every call has its answer: the
// commit's, or a lone call its own error.
func (s *Store) runWhole(batch []*groupReq, lazy bool) bool {
	tx, release, err := s.beginGroup(context.Background(), lazy)
	if err != nil {
		answerAll(batch, s.faulted(err))
		return true
	}
	defer release()
	s.groupFresh, s.onCommit = 0, s.onCommit[:0]
	for _, r := range batch {
		if err := r.fn(context.WithoutCancel(r.ctx), tx); err != nil {
			tx.Rollback()
			if len(batch) > 1 {
				return false
			}
			r.done <- s.faulted(err)
			return true
		}
	}
	claimErr, err := s.commitClaiming(tx, batch)
	if claimErr != nil {
		return false // the claim is an extra: the calls run again without it
	}
	answerAll(batch, s.faulted(err))
	return true
}

// runSavepoints runs the calls of a group in one transaction, each in a savepoint
// of its own, so a call's error rolls back its changes only.
//
// Some errors make SQLite roll the whole transaction back, the savepoints with it:
// a full disk, an I/O error or no memory in a statement without a statement
// journal (a single event's fan-out has none: see qFanOut). Then the call that
// failed has its answer, and the others are returned, to run again in a
// transaction of their own (their changes went with the rollback).
func (s *Store) runSavepoints(batch []*groupReq, lazy bool) (rest []*groupReq) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	tx, release, err := s.beginGroup(ctx, lazy)
	if err != nil {
		answerAll(batch, s.faulted(err))
		return nil
	}
	defer release()
	s.groupFresh, s.onCommit = 0, s.onCommit[:0] // this run claims nothing for the fresh claimer: the turns do
	for i, r := range batch {
		if _, err := tx.StmtContext(ctx, s.groupSQL.savepoint).ExecContext(ctx); err != nil {
			errs[i] = s.faulted(err)
			continue
		}
		mark := len(s.onCommit)
		if err := r.fn(context.WithoutCancel(r.ctx), tx); err != nil {
			errs[i] = s.faulted(err)
			// What it left to do once committed went with its changes.
			clear(s.onCommit[mark:])
			s.onCommit = s.onCommit[:mark]
			if _, rerr := tx.StmtContext(ctx, s.groupSQL.rollbackTo).ExecContext(ctx); rerr != nil {
				// The transaction is gone (SQLite rolled it back whole): never commit
				// half. The others run again without this call.
				tx.Rollback()
				r.done <- errs[i]
				return slices.Delete(slices.Clone(batch), i, i+1)
			}
		}
		if _, err := tx.StmtContext(ctx, s.groupSQL.release).ExecContext(ctx); err != nil && errs[i] == nil {
			errs[i] = s.faulted(err)
		}
	}
	if err := tx.Commit(); err != nil {
		// Nothing is stored; a call that failed on its own says why.
		err = s.faulted(err)
		for i, r := range batch {
			r.done <- cmp.Or(errs[i], err)
		}
		return nil
	}
	s.committed()
	for i, r := range batch {
		r.done <- errs[i]
	}
	return nil
}

// afterCommit has fn run once the running group's transaction has committed
// (onCommit); called in the group writer.
func (s *Store) afterCommit(fn func()) { s.onCommit = append(s.onCommit, fn) }

// committed runs what the group's transaction left to do once committed.
func (s *Store) committed() {
	for _, fn := range s.onCommit {
		fn()
	}
	clear(s.onCommit)
	s.onCommit = s.onCommit[:0]
}

// beginGroup starts a group's transaction; release is called once it has
// committed or rolled back. A group made of lazy calls only (turns of the dispatch
// loop: claims, outcomes, figures) commits with synchronous = NORMAL when the
// store's setting is FULL: without an fsync of its own, so the writer does not wait
// for the disk, and the turn's WAL frames reach it with the next commit that does
// sync (every intake and API write) or the next checkpoint. A power loss can undo
// such a commit, never an acknowledged write: its deliveries are then claimed and
// sent again (at least once), as after a crash. A process that is killed loses
// nothing either way (the frames are in the operating system's cache).
//
// The setting belongs to the connection and cannot change inside a transaction, so
// the writer holds the connection from before BEGIN until FULL is back.
func (s *Store) beginGroup(ctx context.Context, lazy bool) (tx *sql.Tx, release func(), err error) {
	if end := s.writesEnd.Load(); end != 0 {
		return s.beginGroupBy(ctx, lazy, time.Unix(0, end))
	}
	return s.beginGroupNow(ctx, lazy)
}

// WritesEndBy bounds from now on how long a transaction of the group writer
// waits for the database's write lock while another process holds it (an
// sqlite3 shell's open transaction, a long write of another program): it gives
// up at end, with a store fault, instead of waiting out the busy timeout (10 s
// a try), and none begins after end. hookd serve sets it when it stops, so that
// the writes of its stop end within the stop's time whatever holds the lock,
// and the database is closed before the service manager kills the process. A
// transaction that has begun runs to its end.
func (s *Store) WritesEndBy(end time.Time) { s.writesEnd.Store(end.UnixNano()) }

// beginGroupBy is beginGroupNow that gives up waiting for the write lock (and for
// the write connection) at end.
func (s *Store) beginGroupBy(ctx context.Context, lazy bool, end time.Time) (*sql.Tx, func(), error) {
	if !time.Now().Before(end) {
		return nil, nil, &Error{Code: Unavailable, Message: "hookd is stopping, and the time its stop gives its writes has ended"}
	}
	// The transaction lives as long as its context: cancelled only while BEGIN
	// waits, never once it has begun.
	bctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	begun := false
	t := time.AfterFunc(time.Until(end), func() {
		mu.Lock()
		defer mu.Unlock()
		if !begun {
			cancel()
		}
	})
	tx, release, err := s.beginGroupNow(bctx, lazy)
	t.Stop()
	mu.Lock()
	begun = true
	late := bctx.Err() != nil
	mu.Unlock()
	if late {
		if err == nil {
			tx.Rollback()
			release()
		}
		cancel()
		return nil, nil, &Error{Code: Unavailable, Message: "the database is locked by another process, past the time hookd's stop gives its writes", cause: err}
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return tx, func() { release(); cancel() }, nil
}

// beginGroupNow is beginGroup, waiting for the write lock as long as the busy
// timeout lets it (or until ctx ends).
func (s *Store) beginGroupNow(ctx context.Context, lazy bool) (tx *sql.Tx, release func(), err error) {
	if !lazy || !s.syncFull {
		tx, err := s.begin(ctx)
		return tx, s.yield.leave, err
	}
	if err := s.checkFile(); err != nil {
		return nil, nil, err
	}
	s.yield.enter()
	conn, err := s.write.Conn(ctx)
	if err != nil {
		s.yield.leave()
		return nil, nil, err
	}
	release = func() {
		// (Whatever became of ctx meanwhile: the connection goes back synced.)
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); err != nil {
			// Never hand the connection back unsynced: drop it, and the pool opens a
			// new one with the DSN's pragmas.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
		s.yield.leave()
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		release()
		return nil, nil, err
	}
	if tx, err = conn.BeginTx(ctx, nil); err != nil {
		release()
		return nil, nil, err
	}
	return tx, release, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
