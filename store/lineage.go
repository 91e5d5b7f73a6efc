package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"hookd/secret"
)

// Seen is what the daemon's lock file beside the database says of it: the marks it
// gave the database (the last, and the one before, which the database may still
// hold when the daemon stopped between writing the lock file and the database), the
// highest delivery id it saw given, and whether the file was written on another
// machine.
type Seen struct {
	Marks     []string
	Issued    int64
	Elsewhere bool
}

// Mark is the mark the database holds ("" when none).
func (s *Store) Mark(ctx context.Context) (string, error) {
	var m string
	err := s.read.QueryRowContext(ctx, "SELECT mark FROM lineage WHERE id = 1").Scan(&m)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("mark: %w", Classify(err))
	}
	return m, nil
}

// NewMark is a new mark for Lineage.
func NewMark() string { return hex.EncodeToString(secret.Random(16)) }

// Lineage checks that the database is the state the daemon's lock file last saw,
// and gives it the mark next, which the caller has kept in the lock file first (so
// that the database never holds a mark the lock file does not know).
//
// A database that is not that state is a restored backup, a Litestream replica
// restored, a copy started on another machine, or a new database in the place of
// one that gave deliveries before: its delivery id counter is behind the ids the
// original gave (Issued), or its mark is not one the lock file kept, or the lock
// file is another machine's. The ids the original gave after it, and so their
// webhook-ids (msg_<id>), would be given again to other messages, which receivers
// that drop repeats would drop. So the ids of its new deliveries move past any the
// original can have given, to the current time in microseconds, and every delivery
// (which the original may have sent since, or replayed, delivered or dead, and
// revised) takes a
// revision past any the original can have given it, the current time in
// seconds (a number an int holds on every platform until 2038, and no revision
// count reaches), so that what it sends from now on is a new message too: a repeat
// under a new id rather than a change dropped. New organisations take ids from
// the current time in seconds on too: the original may have made some since,
// which its Hub or a script names by their ids. movedTo is the first id new
// deliveries take, 0 when nothing moved. A database without a mark (from an older
// hookd) beside a lock file without one moves nothing.
func (s *Store) Lineage(ctx context.Context, seen Seen, next string) (movedTo int64, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		movedTo = 0
		var kept string
		err := tx.QueryRowContext(ctx, "SELECT mark FROM lineage WHERE id = 1").Scan(&kept)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		issued, err := deliveriesIssued(ctx, tx)
		if err != nil {
			return err
		}
		if issued < seen.Issued || kept != "" && (!slices.Contains(seen.Marks, kept) || seen.Elsewhere) {
			if movedTo, err = s.moveIDs(ctx, tx, seen.Issued); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO lineage(id, mark) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET mark = excluded.mark", next)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("lineage: %w", Classify(err))
	}
	return movedTo, nil
}

// moveIDs moves the delivery id counter past now in microseconds (and past issued)
// and the revision of every delivery it holds, finished ones too (a replay sends a
// delivered or dead one again), to now in seconds or past its highest (the lineage
// row's floor, revNow); it returns the first id new deliveries take.
func (s *Store) moveIDs(ctx context.Context, tx *sql.Tx, issued int64) (int64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence(name, seq) SELECT 'deliveries', 0
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'deliveries')`); err != nil {
		return 0, err
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, "UPDATE sqlite_sequence SET seq = max(seq, ?, ?) WHERE name = 'deliveries' RETURNING seq",
		s.Now().UnixMicro()-1, issued).Scan(&seq); err != nil {
		return 0, err
	}
	// The floor is past every revision a delivery holds (its own, or the floor of
	// an earlier move), and the current time in seconds: past any the original can
	// have given since. Read through revNow, it is every delivery's revision but
	// those revised past it, without writing any of them: that was an UPDATE of
	// every delivery, 3 to 12 s at a million, in the transaction the daemon starts with.
	_, err := tx.ExecContext(ctx, `INSERT INTO lineage(id, mark, rev_floor, rev_below)
		SELECT 1, '', max(?1, coalesce((SELECT max(msg_rev) FROM deliveries), 0) + 1, coalesce((SELECT rev_floor FROM lineage WHERE id = 1), 0) + 1), ?2
		WHERE true
		ON CONFLICT (id) DO UPDATE SET rev_floor = excluded.rev_floor, rev_below = excluded.rev_below`, s.Now().Unix(), seq+1)
	if err != nil {
		return 0, err
	}
	// An organisation made from now on takes an id past any the original can have
	// given since (the current time in seconds, as the revisions): the original's
	// ORCID Hub, a script or a page still naming one it made after the copy by its
	// id would act on the copy's newcomer with that id.
	if _, err := tx.ExecContext(ctx, "UPDATE id_marks SET value = max(value, ?) WHERE name = 'organisations'", s.Now().Unix()-1); err != nil {
		return 0, err
	}
	return seq + 1, nil
}

// DeliveriesIssued is the highest delivery id the database has given (0 for none).
func (s *Store) DeliveriesIssued(ctx context.Context) (int64, error) {
	n, err := deliveriesIssued(ctx, s.read)
	if err != nil {
		return 0, fmt.Errorf("deliveries issued: %w", Classify(err))
	}
	return n, nil
}

func deliveriesIssued(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'").Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}
