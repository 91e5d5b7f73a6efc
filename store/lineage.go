package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"hookd/secret"
)

// Lineage checks that the database is the state the daemon's lock file last saw:
// seen is the mark the lock file keeps ("" when it has none), and the database
// keeps the same one. It gives the database a new mark, which it returns for the
// caller to keep in the lock file in its turn.
//
// A database whose mark is not seen is not the state this daemon's file last ran
// on: a restored backup, a Litestream replica restored, a copy started on another
// machine, each of which holds the delivery id counter of the moment it was taken.
// The ids of its new deliveries then move past any the original can have given
// since (their webhook-ids, msg_<id>, would otherwise be given again to other
// messages, which receivers that drop repeats would drop): to the current time in
// microseconds, which no count of deliveries made since reaches. movedTo is that
// id, 0 when nothing moved. A database without a mark (new, or from an older
// hookd) moves nothing.
func (s *Store) Lineage(ctx context.Context, seen string) (mark string, movedTo int64, err error) {
	mark = hex.EncodeToString(secret.Random(16))
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		movedTo = 0
		var kept string
		err := tx.QueryRowContext(ctx, "SELECT mark FROM lineage WHERE id = 1").Scan(&kept)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if kept != "" && kept != seen {
			movedTo = s.Now().UnixMicro()
			if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence(name, seq) SELECT 'deliveries', 0
				WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'deliveries')`); err != nil {
				return err
			}
			var seq int64
			if err := tx.QueryRowContext(ctx, "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'deliveries' RETURNING seq",
				movedTo-1).Scan(&seq); err != nil {
				return err
			}
			movedTo = seq + 1
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO lineage(id, mark) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET mark = excluded.mark", mark)
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("lineage: %w", Classify(err))
	}
	return mark, movedTo, nil
}
