package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Purge deletes up to limit deliveries in state (StateDelivered or StateDead) that
// finished before before, with their attempts, and forgets idempotency keys older
// than IdempotencyWindow. The candidates are found on the read pool, so the write
// transaction is short and never scans the table; it returns how many deliveries
// and how many idempotency keys it deleted (each at most limit).
func (s *Store) Purge(ctx context.Context, state State, before time.Time, limit int) (deliveries, keys int, err error) {
	if state != StateDelivered && state != StateDead {
		return 0, 0, invalid("state", "only delivered or dead deliveries are purged")
	}
	rows, err := s.read.QueryContext(ctx, "SELECT id FROM deliveries WHERE state = ? AND done_at < ? ORDER BY id LIMIT ?", state, ms(before), limit)
	if err != nil {
		return 0, 0, fmt.Errorf("purge: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("purge: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, 0, fmt.Errorf("purge: %w", err)
	}
	b, _ := json.Marshal(ids)
	var n, k int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if len(ids) > 0 {
			// Re-check the state: a row may have been replayed since it was read.
			r, err := tx.ExecContext(ctx, "DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) AND state = ? AND done_at < ?",
				string(b), state, ms(before))
			if err != nil {
				return err
			}
			n, _ = r.RowsAffected()
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE (client_id, key) IN
			(SELECT client_id, key FROM idempotency WHERE created_at < ? LIMIT ?)`, ms(s.Now().Add(-IdempotencyWindow)), limit)
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
