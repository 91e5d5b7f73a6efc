package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// TestUpgradeFromVersion1 makes a file as the first release left it (schema
// version 1 only) and opens it with this binary: the later migrations run, and the
// data of version 1 is kept.
func TestUpgradeFromVersion1(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "old", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	is.NoErr(st.Close())

	// Undo the later migrations by hand: what a version-1 file looks like.
	db := rawDB(t, path)
	for _, q := range []string{
		"DROP TABLE upstream_registrations",
		"DROP TABLE server_secrets",
		"ALTER TABLE clients DROP COLUMN email",
		"ALTER TABLE tokens DROP COLUMN refresh_scope",
		"DROP TABLE inboxes",
		"DROP TABLE inbox_requests",
		"DROP INDEX subscriptions_signed",
		"DELETE FROM schema_migrations WHERE version > 1",
	} {
		_, err := db.Exec(q)
		is.NoErr(err) // make a version-1 file
	}
	is.NoErr(db.Close())

	st = openAt(t, path, box)
	var version int
	db = rawDB(t, path)
	is.NoErr(db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&version))
	is.Equal(version, store.SchemaVersion()) // migrated forward at start
	got, err := st.AuthenticateClient(ctx, c.ID, c.Secret)
	is.NoErr(err)             // the old client still works
	is.Equal(got.Email, "")   // with the new column's default
	is.Equal(got.Name, "old") // and its data
	_, err = st.CreateClient(ctx, store.NewClient{Name: "new", Scopes: []string{store.ScopeWebhook}, Email: "a@b.example"})
	is.NoErr(err) // the new schema is usable
}

// TestMigrationMissedBelowNewest: a file that has a newer migration but lacks an
// older one (numbers are assigned ahead, so a file can meet them out of order) gets
// the older one at start.
func TestMigrationMissedBelowNewest(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	box := newBox(t)
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	is.NoErr(err)        // a file with every migration
	is.NoErr(st.Close()) // close it

	db := rawDB(t, path)
	for _, q := range []string{
		"ALTER TABLE tokens DROP COLUMN refresh_scope", // undo migration 4 alone
		"DELETE FROM schema_migrations WHERE version = 4",
	} {
		_, err := db.Exec(q)
		is.NoErr(err) // a file that missed migration 4
	}
	is.NoErr(db.Close())

	st = openAt(t, path, box)
	db = rawDB(t, path)
	var n int
	is.NoErr(db.QueryRow("SELECT count(*) FROM schema_migrations WHERE version = 4").Scan(&n))
	is.Equal(n, 1) // migration 4 applied at start
	is.NoErr(db.QueryRow("SELECT count(*) FROM pragma_table_info('tokens') WHERE name = 'refresh_scope'").Scan(&n))
	is.Equal(n, 1) // with its column
	c, err := st.CreateClient(ctx, store.NewClient{Name: "after", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // the store works
	tok, err := st.IssueToken(ctx, c.Client, []string{store.ScopeWebhook}, time.Hour)
	is.NoErr(err) // tokens (migration 4's table) too
	_, err = st.RefreshToken(ctx, c.Client, tok.Refresh, []string{store.ScopeWebhook}, time.Hour, false)
	is.NoErr(err) // tokens (migration 4's table) too
}

// TestBackupWhileOpen copies the database with Backup while the store is open and
// writing, and opens the copy.
func TestBackupWhileOpen(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	box := newBox(t)
	st := openAt(t, filepath.Join(dir, "hookd.db"), box)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "kept", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://example.org/cb")
	is.NoErr(err)

	done := make(chan error, 1)
	go func() { // a writer keeps going during the copy
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			_, err = st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
		}
		done <- err
	}()
	copyPath := filepath.Join(dir, "backup.db")
	is.NoErr(st.Backup(ctx, copyPath)) // consistent copy while open
	is.NoErr(<-done)                   // the writer was not disturbed

	restored := openAt(t, copyPath, box)
	got, err := restored.AuthenticateClient(ctx, c.ID, c.Secret)
	is.NoErr(err)              // the copy has the client
	is.Equal(got.Name, "kept") // intact
	subs, err := restored.OrcidWebhooks(ctx, c.ID, "0000-0002-7253-3645")
	is.NoErr(err)
	is.Equal(len(subs), 1)                         // and its registration
	is.True(restored.Backup(ctx, copyPath) != nil) // a backup never overwrites a file
}
