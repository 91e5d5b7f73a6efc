package store

import (
	"context"
	"database/sql"
	"fmt"
)

// groupMax bounds how many calls share one transaction.
const groupMax = 256

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
		case first = <-s.groupCh:
		case <-s.closed:
			return
		}
		batch := []*groupReq{first}
	more:
		for len(batch) < groupMax {
			select {
			case r := <-s.groupCh:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.runGroup(batch)
	}
}

func (s *Store) runGroup(batch []*groupReq) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT g"); err != nil {
			errs[i] = err
			continue
		}
		if err := r.fn(tx); err != nil {
			errs[i] = err
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO g"); rerr != nil {
				// The transaction is unusable: fail everyone rather than commit half.
				tx.Rollback()
				for _, r := range batch {
					r.done <- fmt.Errorf("group transaction: %w", rerr)
				}
				return
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE g"); err != nil && errs[i] == nil {
			errs[i] = err
		}
	}
	if err := tx.Commit(); err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}
