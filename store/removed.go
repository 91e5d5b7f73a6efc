package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
)

// Removal: a subscription's history outlives it. Every path that deletes
// subscriptions (its owner, an operator, the removal of its client or organisation)
// goes through removeSubscriptions, which keeps what the subscription was in
// removed_subscriptions and points its deliveries there. The schema enforces it: a
// subscription that still has deliveries cannot be deleted.

// notSentRemoved is the last error of a delivery that was waiting when its
// subscription was removed.
const notSentRemoved = "not sent: webhook removed"

// removeSubscriptions deletes the subscriptions with these ids, keeping their
// deliveries and attempts (until retention purges them) as the history of a removed
// subscription. Deliveries that were waiting become dead; one in flight keeps its
// state until its outcome is recorded, and then it is delivered or dead, never
// pending again.
//
// It runs in inTx only, and its callers detach their context (removal): when the
// subscriptions have more than aheadOver finished deliveries, it fails with
// historyAhead, and inTx moves them ahead (moveAhead) and runs the removal again.
func (s *Store) removeSubscriptions(ctx context.Context, tx *sql.Tx, ids []int64, now int64) error {
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		s.targetCache.forget(id)
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	list := string(b)
	var waiting, finished int
	if err := tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE subscription_id IN (SELECT value FROM json_each(?1)) AND state = 0 LIMIT ?2)),
		(SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE subscription_id IN (SELECT value FROM json_each(?1)) AND state IN (2, 3) LIMIT ?3))`,
		list, killBatch+1, aheadOver+1).Scan(&waiting, &finished); err != nil {
		return fmt.Errorf("remove subscriptions: %w", err)
	}
	switch {
	case s.removeWhole.Load():
	case waiting > killBatch:
		return &backlogAhead{ids}
	case finished > aheadOver:
		return &historyAhead{ids}
	}
	// A subscription whose history was moved ahead has its removed record already:
	// it now says what the subscription was when it went.
	if _, err := tx.ExecContext(ctx, `INSERT INTO removed_subscriptions(uid, client_id, org_id, format, target, orcid, append_orcid, removed_at)
		SELECT uid, client_id, org_id, format, target, orcid, append_orcid, ?2 FROM subscriptions s
		WHERE id IN (SELECT value FROM json_each(?1)) AND (EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id)
			OR EXISTS (SELECT 1 FROM removed_subscriptions r WHERE r.uid = s.uid))
		ON CONFLICT(uid) DO UPDATE SET client_id = excluded.client_id, org_id = excluded.org_id, format = excluded.format,
			target = excluded.target, orcid = excluded.orcid, append_orcid = excluded.append_orcid,
			removed_at = excluded.removed_at`,
		list, now); err != nil {
		return fmt.Errorf("remove subscriptions: %w", err)
	}
	// The SET expressions all read the row as it was, so state = 0 means "was waiting".
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET
		removed_subscription_id = (SELECT r.id FROM removed_subscriptions r JOIN subscriptions s ON s.uid = r.uid
			WHERE s.id = deliveries.subscription_id),
		subscription_id = NULL,
		done_at = CASE WHEN state = 0 THEN ?2 ELSE done_at END,
		last_error = CASE WHEN state = 0 THEN ?3 ELSE last_error END,
		state = CASE WHEN state = 0 THEN 3 ELSE state END
		WHERE subscription_id IN (SELECT value FROM json_each(?1))`, list, now, notSentRemoved); err != nil {
		return fmt.Errorf("remove subscriptions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM subscriptions WHERE id IN (SELECT value FROM json_each(?))", list); err != nil {
		return fmt.Errorf("remove subscriptions: %w", err)
	}
	return nil
}

// Moving history ahead of a removal. Moving every kept delivery of the removed
// subscriptions to their removed records in the removal's own transaction held the
// write connection, and so every intake call and every turn of the dispatch loop,
// for as long as that took: 4.5 s for a webhook with 1,000,000 kept deliveries. So
// a removal with more than aheadOver finished (delivered or dead) deliveries first
// moves them, aheadBatch a transaction, with other writes between; the removal
// itself then moves the rest (waiting and in-flight deliveries, and what finished
// meanwhile). Until it commits, the subscriptions are live and their finished
// deliveries show as their removed records' history already. When the removal
// fails after all, undoAhead moves them back; a crash between leaves that to
// RecoverAhead, at the next start.

// aheadOver and aheadBatch: a removal with more finished deliveries than aheadOver
// moves them ahead, aheadBatch a transaction (a few milliseconds each). Those
// transactions need not wait for the disk (inLazyTx): the removal's own commit
// syncs them, and a crash before it leaves them to RecoverAhead whatever it kept.
var aheadOver, aheadBatch = 2000, 500

// maxAheadTries bounds how often inTx runs a removal. Each try after the first
// follows a move of history ahead: of another set of webhooks the removal removes
// (an organisation's own, then its staff's), or of what finished meanwhile. The
// last moves whatever is left in the removal's own transaction.
var maxAheadTries = 5

// removal is the context a removal runs in: its caller's values, but not its
// cancellation. A removal whose history is moved ahead takes seconds, and a caller
// that gave up in the middle would have it undone after all that work.
func removal(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// historyAhead is removeSubscriptions' answer when the subscriptions ids have too
// much history to move in its transaction.
type historyAhead struct{ ids []int64 }

func (h *historyAhead) Error() string { return "remove subscriptions: history to move ahead first" }

// moveAhead moves the finished deliveries of the subscriptions ids to their removed
// records, which it makes as they will be at the removal (removeSubscriptions
// brings them up to date), aheadBatch rows a transaction.
func (s *Store) moveAhead(ctx context.Context, ids []int64) error {
	err := s.chunkBatches(ctx, ids, aheadBatch, func(tx *sql.Tx, chunk string, limit int) (int64, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO removed_subscriptions(uid, client_id, org_id, format, target, orcid, append_orcid, removed_at)
			SELECT uid, client_id, org_id, format, target, orcid, append_orcid, ?2 FROM subscriptions s
			WHERE id IN (SELECT value FROM json_each(?1)) AND EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id AND d.state IN (2, 3))
			ON CONFLICT(uid) DO NOTHING`, chunk, ms(s.Now())); err != nil {
			return 0, err
		}
		r, err := tx.ExecContext(ctx, `UPDATE deliveries SET
			removed_subscription_id = (SELECT r.id FROM removed_subscriptions r JOIN subscriptions s ON s.uid = r.uid
				WHERE s.id = deliveries.subscription_id),
			subscription_id = NULL
			WHERE id IN (SELECT id FROM deliveries WHERE subscription_id IN (SELECT value FROM json_each(?1)) AND state IN (2, 3) LIMIT ?2)`,
			chunk, limit)
		if err != nil {
			return 0, err
		}
		return r.RowsAffected()
	}, nil)
	if err != nil {
		return fmt.Errorf("remove subscriptions: move their history: %w", err)
	}
	return nil
}

// chunkBatches runs exec over the subscriptions ids a chunk at a time (a JSON
// array of at most batch of them), in one lazy transaction after another
// (inLazyTx), each counted in aheadMoves. exec changes at most limit rows of the
// subscriptions of its chunk and says how many it changed; a transaction goes on
// to the next chunk when exec changed fewer than it could, until it has changed
// batch rows or read chunksATx chunks. done, when not nil, runs in the transaction
// that finds a chunk done. A statement reads all of the JSON array it is given each
// time it runs: given all the ids a batch, the removal of a client with 980,000
// webhooks read them all again for each 500 rows it moved, and had moved 5,500 of
// its 1,000,000 deliveries after 3 minutes.
func (s *Store) chunkBatches(ctx context.Context, ids []int64, batch int, exec func(tx *sql.Tx, chunk string, limit int) (int64, error),
	done func(tx *sql.Tx, chunk string) error) error {
	batch = max(batch, 1)
	var chunks []string
	for i := 0; i < len(ids); i += batch {
		b, err := json.Marshal(ids[i:min(i+batch, len(ids))])
		if err != nil {
			return err
		}
		chunks = append(chunks, string(b))
	}
	for len(chunks) > 0 {
		err := s.inLazyTx(ctx, func(tx *sql.Tx) error {
			for left, read := batch, 0; left > 0 && len(chunks) > 0 && read < chunksATx; read++ {
				n, err := exec(tx, chunks[0], left)
				if err != nil {
					return err
				}
				if n < int64(left) {
					if done != nil {
						if err := done(tx, chunks[0]); err != nil {
							return err
						}
					}
					chunks = chunks[1:]
				}
				left -= int(n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.aheadMoves.Add(1)
		s.yield.pause()
	}
	return nil
}

// chunksATx bounds how many chunks of ids one of chunkBatches' transactions reads,
// when their subscriptions have little or nothing to change.
const chunksATx = 10

// undoAhead moves the history moved ahead of a removal back to those of the
// subscriptions ids that are still there (the removal failed), aheadBatch rows a
// transaction, and deletes the removed records it made for them.
func (s *Store) undoAhead(ctx context.Context, ids []int64) error {
	err := s.chunkBatches(ctx, ids, aheadBatch, func(tx *sql.Tx, chunk string, limit int) (int64, error) {
		r, err := tx.ExecContext(ctx, `UPDATE deliveries SET
			subscription_id = (SELECT s.id FROM subscriptions s JOIN removed_subscriptions r ON r.uid = s.uid
				WHERE r.id = deliveries.removed_subscription_id),
			removed_subscription_id = NULL
			WHERE id IN (SELECT d.id FROM subscriptions s JOIN removed_subscriptions r ON r.uid = s.uid
				JOIN deliveries d ON d.removed_subscription_id = r.id
				WHERE s.id IN (SELECT value FROM json_each(?1)) LIMIT ?2)`, chunk, limit)
		if err != nil {
			return 0, err
		}
		return r.RowsAffected()
	}, func(tx *sql.Tx, chunk string) error {
		// Never one that a delivery still points to: that would delete the delivery.
		_, err := tx.ExecContext(ctx, `DELETE FROM removed_subscriptions
			WHERE uid IN (SELECT uid FROM subscriptions WHERE id IN (SELECT value FROM json_each(?1)))
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.removed_subscription_id = removed_subscriptions.id)`, chunk)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove subscriptions: move their history back: %w", err)
	}
	return nil
}

// Killing a backlog ahead of a removal. Waiting deliveries die with their removal
// ("not sent: webhook removed"), and turning 100,000 of them dead in the removal's
// transaction held every other write for a second. They cannot die ahead of it
// while the webhook is live, since it would still be sent what it has waiting. So
// a removal with more than killBatch waiting deliveries first deactivates the
// webhooks (reason reasonRemoving: nothing more is sent to them), turns their
// waiting deliveries dead killBatch a transaction, and runs again. If the removal
// then fails, the webhooks are activated again (undoKill; at the next start,
// RecoverAhead): they are as they were but for their backlog, which stays dead and
// can be replayed.

// reasonRemoving is the reason of a webhook deactivated ahead of its removal.
const reasonRemoving = "being removed"

// backlogAhead is removeSubscriptions' answer when the subscriptions ids have more
// waiting deliveries than one transaction should turn dead (killBatch).
type backlogAhead struct{ ids []int64 }

func (b *backlogAhead) Error() string { return "remove subscriptions: backlog to kill ahead first" }

// killAhead deactivates those of the subscriptions ids that are active and turns
// what they all have waiting dead, killBatch a transaction, each committed without
// its own fsync (a crash that loses one leaves deliveries waiting for a deactivated
// webhook, which die unsent as any such, or webhooks active that were to be
// deactivated, as if the removal had not begun). It returns the ids it
// deactivated, also when it fails after some: the deactivation of 490,000 webhooks
// in one transaction held every other write for 13 s.
func (s *Store) killAhead(ctx context.Context, ids []int64) (off []int64, err error) {
	err = s.chunkBatches(ctx, ids, killBatch, func(tx *sql.Tx, chunk string, limit int) (int64, error) {
		these, err := queryColumn[int64](ctx, tx, `UPDATE subscriptions SET active = 0, reason = ?2, updated_at = ?3
			WHERE id IN (SELECT id FROM subscriptions WHERE id IN (SELECT value FROM json_each(?1)) AND active = 1 LIMIT ?4) RETURNING id`,
			chunk, reasonRemoving, ms(s.Now()), limit)
		if err != nil {
			return 0, err
		}
		for _, id := range these {
			s.targetCache.forget(id)
		}
		off = append(off, these...) // undoKill leaves those a failed transaction did not deactivate
		return int64(len(these)), nil
	}, nil)
	if err != nil {
		return off, fmt.Errorf("remove subscriptions: deactivate them first: %w", err)
	}
	err = s.chunkBatches(ctx, ids, killBatch, func(tx *sql.Tx, chunk string, limit int) (int64, error) {
		r, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?2, last_error = ?3
			WHERE id IN (SELECT id FROM deliveries WHERE state = 0 AND subscription_id IN
				(SELECT id FROM subscriptions WHERE id IN (SELECT value FROM json_each(?1)) AND active = 0) LIMIT ?4)`,
			chunk, ms(s.Now()), notSentRemoved, limit)
		if err != nil {
			return 0, err
		}
		return r.RowsAffected()
	}, nil)
	if err != nil {
		return off, fmt.Errorf("remove subscriptions: turn their backlog dead: %w", err)
	}
	return off, nil
}

// undoKill activates again those of the subscriptions ids that a removal that
// did not happen had deactivated (reasonRemoving). An organisation's setting
// among them covers its members again: those added meanwhile, which nothing
// covered then, are registered upstream (syncOrgUpstream).
func (s *Store) undoKill(ctx context.Context, ids []int64) error {
	var err error
	for len(ids) > 0 && err == nil {
		// killBatch a transaction, as killAhead deactivated them: one for 490,000
		// webhooks held every other write for seconds. Those a failure leaves
		// deactivated RecoverKilled activates at the next start.
		n := min(len(ids), killBatch)
		err = s.undoKillBatch(ctx, ids[:n])
		ids = ids[n:]
	}
	if err == nil {
		err = s.finishUpstreamLeft(ctx)
	}
	if err != nil {
		return fmt.Errorf("remove subscriptions: activate them again: %w", err)
	}
	return nil
}

// undoKillBatch is one transaction of undoKill.
func (s *Store) undoKillBatch(ctx context.Context, ids []int64) error {
	b, _ := json.Marshal(ids)
	return s.inTxOnce(ctx, func(tx *sql.Tx) error {
		off, err := queryColumn[int64](ctx, tx, "SELECT id FROM subscriptions WHERE id IN (SELECT value FROM json_each(?1)) AND active = 0 AND reason = ?2",
			string(b), reasonRemoving)
		if err != nil {
			return err
		}
		now := ms(s.Now())
		for _, id := range off {
			if err := s.reactivate(ctx, tx, id, now); err != nil {
				return err
			}
		}
		on, _ := json.Marshal(off)
		orgs, err := queryColumn[int64](ctx, tx, `SELECT DISTINCT org_id FROM subscriptions
			WHERE id IN (SELECT value FROM json_each(?1)) AND org_id IS NOT NULL AND format IN ('hub', 'email')`, string(on))
		if err != nil {
			return err
		}
		for _, org := range orgs {
			if err := s.syncOrgUpstream(ctx, tx, org, now); err != nil {
				return err
			}
		}
		return nil
	}, false)
}

// execBatches runs a statement that changes at most batch rows (exec) in one lazy
// transaction after another (inLazyTx), until one changes fewer; moves, when not
// nil, counts the transactions.
func (s *Store) execBatches(ctx context.Context, batch int, moves *atomic.Int64, exec func(tx *sql.Tx) (sql.Result, error)) error {
	for {
		var n int64
		err := s.inLazyTx(ctx, func(tx *sql.Tx) error {
			r, err := exec(tx)
			if err != nil {
				return err
			}
			n, err = r.RowsAffected()
			return err
		})
		if err != nil {
			return err
		}
		if moves != nil {
			moves.Add(1)
		}
		if n < int64(batch) {
			return nil
		}
	}
}

// inLazyTx is inTxOnce for a transaction whose commit need not wait for the disk
// (beginGroup's lazy commit).
func (s *Store) inLazyTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, release, err := s.beginGroup(ctx, true)
	if err != nil {
		return s.faulted(err)
	}
	defer release()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return s.faulted(err)
	}
	return s.faulted(tx.Commit())
}

// RecoverAhead moves back the history moved ahead of removals that did not commit
// (the process stopped between), and reports for how many subscriptions; not
// that of a client's or an organisation's removal, which is finished instead
// (FinishRemovals). The daemon
// calls it at start, beside RecoverInFlight. A removal left so by a command killed
// beside a running daemon waits for the daemon's next start; until then its
// webhooks' lists miss what was moved, which retention leaves alone (qPurgeRemoved).
// A removal that a command runs while the daemon starts moves its history again.
func (s *Store) RecoverAhead(ctx context.Context) (int, error) {
	n, err := s.RecoverKilled(ctx, s.Now().Add(time.Millisecond))
	if err != nil {
		return 0, err
	}
	// Not of an owner being removed: its removal is finished, not undone, and
	// removes the webhook with the history moved for it.
	ids, err := queryColumn[int64](ctx, s.read, "SELECT subscriptions.id FROM removed_subscriptions r JOIN subscriptions ON subscriptions.uid = r.uid WHERE NOT "+qOwnerRemoving)
	if err != nil || len(ids) == 0 {
		return n, err
	}
	return n + len(ids), s.undoAhead(ctx, ids)
}

// RecoverKilled activates again the webhooks deactivated ahead of a removal
// (reasonRemoving) before before, whose removal never came, and reports how many:
// never those of a client or an organisation being removed, whose removal
// finishes (FinishRemovals).
// RecoverAhead calls it for all of them; the retention pass for those left a
// quarter of an hour (a command killed while it removed webhooks beside the
// daemon): no removal takes that long, so it activates none that a running
// removal is about to delete.
func (s *Store) RecoverKilled(ctx context.Context, before time.Time) (int, error) {
	off, err := queryColumn[int64](ctx, s.read, "SELECT id FROM subscriptions INDEXED BY subscriptions_inactive WHERE active = 0 AND reason = ? AND updated_at < ? AND NOT "+qOwnerRemoving,
		reasonRemoving, ms(before))
	if err != nil || len(off) == 0 {
		return 0, err
	}
	return len(off), s.undoKill(ctx, off)
}

// removeSubscriptionsWhere is removeSubscriptions for the subscriptions a condition
// selects (a WHERE clause over subscriptions, with its arguments).
func (s *Store) removeSubscriptionsWhere(ctx context.Context, tx *sql.Tx, now int64, where string, args ...any) error {
	ids, err := queryColumn[int64](ctx, tx, "SELECT id FROM subscriptions WHERE "+where, args...)
	if err != nil {
		return fmt.Errorf("remove subscriptions: %w", err)
	}
	return s.removeSubscriptions(ctx, tx, ids, now)
}

// qPurgeRemoved finds up to ?2 finished deliveries of removed subscriptions that
// finished before ?1, oldest first, through deliveries_removed_done. Never those
// moved ahead of a removal that has not committed (the subscription is still
// there): if the removal does not happen they are its history again, and a live
// subscription's dead deliveries are kept until replayed. It walks past each such
// row, so it runs on a read connection (PurgeRemoved): in the write transaction,
// 200,000 rows moved ahead of a removal under way held the writer for 266 ms a
// pass.
const qPurgeRemoved = `SELECT id FROM deliveries
	WHERE removed_subscription_id IS NOT NULL AND state IN (2, 3) AND done_at < ?1
		AND NOT EXISTS (SELECT 1 FROM removed_subscriptions r JOIN subscriptions s ON s.uid = r.uid
			WHERE r.id = deliveries.removed_subscription_id)
	ORDER BY done_at LIMIT ?2`

// qDeleteRemoved deletes the deliveries ?1 (a JSON array of ids) that qPurgeRemoved
// found, checking each again by its id.
const qDeleteRemoved = `DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))
	AND removed_subscription_id IS NOT NULL AND state IN (2, 3) AND done_at < ?2
	AND NOT EXISTS (SELECT 1 FROM removed_subscriptions r JOIN subscriptions s ON s.uid = r.uid
		WHERE r.id = deliveries.removed_subscription_id)`

// deleteDeliveries runs a DELETE of deliveries, query, and returns for each row it
// deleted its removed subscription's id (0 for a live subscription's row).
func deleteDeliveries(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]int64, error) {
	return queryColumn[int64](ctx, tx, query+" RETURNING coalesce(removed_subscription_id, 0)", args...)
}

// forgetRemoved deletes the removed subscriptions among ids (0 stands for none)
// that have no delivery left: a removed subscription is kept for its history only.
// Retention deletes its deliveries; this runs after, for the subscriptions of the
// rows it deleted, so it reads only those.
func forgetRemoved(ctx context.Context, tx *sql.Tx, ids []int64) error {
	var some []int64
	for _, id := range ids {
		if id != 0 {
			some = append(some, id)
		}
	}
	if len(some) == 0 {
		return nil
	}
	b, _ := json.Marshal(some)
	_, err := tx.ExecContext(ctx, `DELETE FROM removed_subscriptions WHERE id IN (SELECT value FROM json_each(?1))
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.removed_subscription_id = removed_subscriptions.id)`, string(b))
	return err
}

// PurgeRemoved deletes up to limit finished (delivered or dead) deliveries of
// removed subscriptions that finished before before, with their attempts, and then
// forgets removed subscriptions that have no delivery left. The retention pass calls
// it: a removed subscription's dead deliveries cannot be replayed, so nobody else
// would. It returns how many deliveries it deleted.
func (s *Store) PurgeRemoved(ctx context.Context, before time.Time, limit int) (int, error) {
	ids, err := queryColumn[int64](ctx, s.read, qPurgeRemoved, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("purge removed subscriptions' deliveries: %w", err)
	}
	b, _ := json.Marshal(ids)
	var n int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var removed []int64
		if len(ids) > 0 {
			var err error
			if removed, err = deleteDeliveries(ctx, tx, qDeleteRemoved, string(b), ms(before)); err != nil {
				return err
			}
		}
		n = int64(len(removed))
		if !s.removedSwept.Load() {
			// Once a process, every removed subscription left without a delivery by
			// a path that did not forget it (a version that checked them all on every
			// pass left that to the next one).
			_, err := tx.ExecContext(ctx, `DELETE FROM removed_subscriptions WHERE NOT EXISTS
				(SELECT 1 FROM deliveries d WHERE d.removed_subscription_id = removed_subscriptions.id)`)
			if err != nil {
				return err
			}
		}
		return forgetRemoved(ctx, tx, removed)
	})
	if err == nil {
		s.removedSwept.Store(true)
	}
	if err != nil {
		return 0, fmt.Errorf("purge removed subscriptions' deliveries: %w", err)
	}
	return int(n), nil
}
