package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
)

// groupMax bounds how many calls share one transaction.
const groupMax = 256

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
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// group runs fn in a write transaction shared with whatever other calls are waiting
// at the same moment (group commit): under concurrency, many small writes (intake,
// registrations) cost one commit, and so one fsync, between them. Each fn runs in a
// savepoint of its own, so its error rolls back its changes only; group returns
// after the commit, so an acknowledged write is durable.
func (s *Store) group(ctx context.Context, fn func(tx *sql.Tx) error) error {
	req := &groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.groupCh <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return fmt.Errorf("store is closed")
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
			return fmt.Errorf("store is closed")
		}
	}
}

// groupWriter takes waiting calls in batches and runs each batch in one transaction.
func (s *Store) groupWriter() {
	defer close(s.groupDone)
	for {
		var first *groupReq
		select {
		case first = <-s.groupCh: // waiting writes go before a checkpoint
		default:
			select {
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
		batch := s.takeWaiting([]*groupReq{first})
		for yields := 0; yields < groupYields && len(batch) < groupMax; yields++ {
			runtime.Gosched()
			n := len(batch)
			if batch = s.takeWaiting(batch); len(batch) == n {
				break
			}
		}
		s.runGroup(batch)
	}
}

// WriteStats reports how many write transactions the group writer has committed or
// rolled back and how many calls they carried (calls/groups is the group size).
func (s *Store) WriteStats() (groups, calls uint64) {
	return s.groups.Load(), s.groupCalls.Load()
}

// takeWaiting appends the calls waiting now to batch, up to groupMax.
func (s *Store) takeWaiting(batch []*groupReq) []*groupReq {
	for len(batch) < groupMax {
		select {
		case r := <-s.groupCh:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (s *Store) runGroup(batch []*groupReq) {
	s.groups.Add(1)
	s.groupCalls.Add(uint64(len(batch)))
	ctx := context.Background()
	errs := make([]error, len(batch))
	tx, err := s.begin(ctx)
	if err != nil {
		err = s.faulted(err)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	defer s.yield.leave()
	if len(batch) == 1 {
		// Alone in its transaction, a call needs no savepoint: its error rolls back all.
		r := batch[0]
		err := r.ctx.Err()
		if err == nil {
			err = r.fn(tx)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		r.done <- s.faulted(err)
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.StmtContext(ctx, s.groupSQL.savepoint).ExecContext(ctx); err != nil {
			errs[i] = s.faulted(err)
			continue
		}
		if err := r.fn(tx); err != nil {
			errs[i] = s.faulted(err)
			if _, rerr := tx.StmtContext(ctx, s.groupSQL.rollbackTo).ExecContext(ctx); rerr != nil {
				// The transaction is unusable (SQLite rolls a transaction back whole on
				// some errors, a full disk among them): fail everyone rather than commit
				// half, with the fault that did it when it was one.
				tx.Rollback()
				fail := fmt.Errorf("group transaction: %w", s.faulted(rerr))
				if errors.Is(errs[i], ErrUnavailable) {
					fail = errs[i]
				}
				for _, r := range batch {
					r.done <- fail
				}
				return
			}
		}
		if _, err := tx.StmtContext(ctx, s.groupSQL.release).ExecContext(ctx); err != nil && errs[i] == nil {
			errs[i] = s.faulted(err)
		}
	}
	if err := tx.Commit(); err != nil {
		err = s.faulted(err)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}
