package store

import (
	"context"
	"database/sql"
	"fmt"
)

// RecoverInFlight returns every in-flight delivery to pending, due now, without
// waiting for its lease. Only the one daemon of a file may call it, at start, before
// it claims: then nothing else holds those leases, and the work of a process that
// crashed is sent again at once. Each keeps how long it has waited (waiting_since),
// as one handed back unsent does: no outcome of its call was recorded, so it has
// waited since it was due (or first handed back), and the oldest due delivery's
// age goes on from there, not from the start. It reports how many rows it
// returned.
func (s *Store) RecoverInFlight(ctx context.Context) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := queryColumn[int64](ctx, tx, "SELECT id FROM deliveries WHERE state = 1")
		if err != nil {
			return err
		}
		now := ms(s.Now())
		for _, id := range ids {
			if err := s.backToPendingAt(ctx, tx, id, now, 0, 0, false, true); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
	}
	return n, nil
}
