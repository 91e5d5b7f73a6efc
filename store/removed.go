package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO removed_subscriptions(uid, client_id, org_id, format, target, orcid, removed_at)
		SELECT uid, client_id, org_id, format, target, orcid, ?2 FROM subscriptions s
		WHERE id IN (SELECT value FROM json_each(?1)) AND EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id)`,
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

// removeSubscriptionsWhere is removeSubscriptions for the subscriptions a condition
// selects (a WHERE clause over subscriptions, with its arguments).
func (s *Store) removeSubscriptionsWhere(ctx context.Context, tx *sql.Tx, now int64, where string, args ...any) error {
	ids, err := queryColumn[int64](ctx, tx, "SELECT id FROM subscriptions WHERE "+where, args...)
	if err != nil {
		return fmt.Errorf("remove subscriptions: %w", err)
	}
	return s.removeSubscriptions(ctx, tx, ids, now)
}

// qPurgeRemoved deletes up to ?2 finished deliveries of removed subscriptions that
// finished before ?1, oldest first, found through deliveries_removed_done.
const qPurgeRemoved = `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
	WHERE removed_subscription_id IS NOT NULL AND state IN (2, 3) AND done_at < ?1 ORDER BY done_at LIMIT ?2)`

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
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		removed, err := deleteDeliveries(ctx, tx, qPurgeRemoved, ms(before), limit)
		if err != nil {
			return err
		}
		n = int64(len(removed))
		if !s.removedSwept.Load() {
			// Once a process, every removed subscription left without a delivery by
			// a path that did not forget it (a version that checked them all on every
			// pass left that to the next one).
			_, err = tx.ExecContext(ctx, `DELETE FROM removed_subscriptions WHERE NOT EXISTS
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
