package store

import (
	"context"
	"database/sql"
	"fmt"
	"path"
)

// MigrateTo makes the database file at path as a hookd of schema version v left
// it: the embedded migrations up to v and no further, for the upgrade tests.
func MigrateTo(ctx context.Context, file string, v int) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return err
	}
	ms, err := migrationFiles()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.version > v {
			break
		}
		body, err := migrations.ReadFile(path.Join("migrations", m.name))
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)", m.version); err != nil {
			return err
		}
	}
	return nil
}

// WriteSynchronous is PRAGMA synchronous on the write connection: 2 is FULL, 1 NORMAL.
func WriteSynchronous(ctx context.Context, s *Store) (int, error) {
	var v int
	err := s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v)
	return v, err
}

// WriteTempStore is PRAGMA temp_store on the write connection: 2 is MEMORY.
func WriteTempStore(ctx context.Context, s *Store) (int, error) {
	var v int
	err := s.write.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&v)
	return v, err
}

// SetDeliveriesWindow sets how many of the newest ids an owner's list of
// deliveries reads in order first (0: none, always gathering and sorting), until
// the returned function restores it.
func SetDeliveriesWindow(n int64) (restore func()) {
	old := deliveriesWindow
	deliveriesWindow = n
	return func() { deliveriesWindow = old }
}

// ExecWrite runs a statement on the store's write connection, for tests that set
// rows up as only a long history would leave them.
func ExecWrite(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.write.ExecContext(ctx, query, args...)
	return err
}
