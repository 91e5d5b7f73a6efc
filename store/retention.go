package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// The deliveries that Purge deletes, up to ?2 that finished before ?1: delivered
// ones through deliveries_done, oldest first, and dead ones (few) through
// deliveries_dead. The state is written out, not bound, so that SQLite may use
// the partial indexes.
const (
	qPurgeDelivered = "SELECT id FROM deliveries WHERE state = 2 AND done_at < ?1 ORDER BY done_at LIMIT ?2"
	qPurgeDead      = "SELECT id FROM deliveries WHERE state = 3 AND done_at < ?1 ORDER BY id LIMIT ?2"
)

// qPurgeKeys deletes up to ?2 idempotency keys made before ?1. It finds them
// through idempotency_created: the keys are in no order of age otherwise, and
// finding the few that aged out since the last pass meant reading them all.
const qPurgeKeys = `DELETE FROM idempotency WHERE (client_id, key) IN
	(SELECT client_id, key FROM idempotency WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)`

// Purge deletes up to limit deliveries in state (StateDelivered or StateDead) that
// finished before before, with their attempts, and forgets idempotency keys older
// than IdempotencyWindow. The deliveries are found on the read pool and the keys
// through their index by age, so the write transaction is short and never scans a
// table; it returns how many deliveries and how many idempotency keys it deleted
// (each at most limit).
func (s *Store) Purge(ctx context.Context, state State, before time.Time, limit int) (deliveries, keys int, err error) {
	if state != StateDelivered && state != StateDead {
		return 0, 0, invalid("state", "only delivered or dead deliveries are purged")
	}
	q := qPurgeDelivered
	if state == StateDead {
		q = qPurgeDead
	}
	ids, err := queryColumn[int64](ctx, s.read, q, ms(before), limit)
	if err != nil {
		return 0, 0, fmt.Errorf("purge: %w", err)
	}
	b, _ := json.Marshal(ids)
	var n, k int64
	// hookd deliveries purge calls Purge batch after batch: beside the daemon, its
	// writes go between them.
	s.yield.pause()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if len(ids) > 0 {
			// Re-check the state: a row may have been replayed since it was read. A
			// removed subscription's row may be among them (its history is kept as
			// long as anyone's), and it is forgotten with its last one.
			removed, err := deleteDeliveries(ctx, tx, "DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?1)) AND state = ?2 AND done_at < ?3",
				string(b), state, ms(before))
			if err != nil {
				return err
			}
			n = int64(len(removed))
			if err := forgetRemoved(ctx, tx, removed); err != nil {
				return err
			}
		}
		r, err := tx.ExecContext(ctx, qPurgeKeys, ms(s.Now().Add(-IdempotencyWindow)), limit)
		if err != nil {
			return err
		}
		k, _ = r.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("purge: %w", err)
	}
	return int(n), int(k), nil
}
