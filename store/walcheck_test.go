package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/store"
)

// copyFile copies the file at from to to, as cp does.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientNames lists the names of the API clients of the database at path.
func clientNames(t *testing.T, path string) []string {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: path, Box: newBox(t), MustExist: true, SkipKeyCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs, err := st.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// restoreOver makes, in a new folder, the database a restore leaves where the
// -wal and -shm of the database before it (at killed) stayed: the file at backup
// copied to the database's name beside them. It returns the database's path.
func restoreOver(t *testing.T, killed, backup string) string {
	t.Helper()
	restored := filepath.Join(t.TempDir(), "hookd.db")
	for _, suffix := range []string{"-wal", "-shm"} {
		copyFile(t, killed+suffix, restored+suffix)
	}
	copyFile(t, backup, restored)
	return restored
}

// refusesStaleWAL checks that the database at path, whose WAL was written for
// another file, is refused by every way hookd opens a database, the file and the
// WAL left as they are; and that once the WAL and its index are removed, as a
// restore does, it opens.
func refusesStaleWAL(t *testing.T, path string) {
	t.Helper()
	is := is.NewRelaxed(t)
	ctx := context.Background()
	want, err := os.ReadFile(path)
	is.NoErr(err)
	_, err = store.Open(ctx, store.Options{Path: path, Box: newBox(t), MustExist: true, SkipKeyCheck: true})
	is.True(err != nil) // refused
	if err == nil {
		return
	}
	t.Log(err)
	is.True(strings.Contains(err.Error(), path+"-wal, was written for another database file than "+path))
	is.True(strings.Contains(err.Error(), "remove "+path+"-wal and "+path+"-shm"))
	_, err = store.FileSchemaVersion(ctx, path)
	is.True(err != nil) // check-config says so too
	err = store.BackupAsIs(ctx, path, filepath.Join(t.TempDir(), "copy.db"))
	is.True(err != nil) // and a backup copies nothing
	got, err := os.ReadFile(path)
	is.NoErr(err)
	is.True(bytes.Equal(got, want)) // the file is as it was copied
	_, err = os.Stat(path + "-wal")
	is.NoErr(err) // and the WAL is left for the operator to remove
}

// TestOpenRefusesAnotherDatabasesWAL: a backup restored over the database while
// the -wal and -shm of the database before it stayed (hookd was killed after its
// checkpointer had copied the WAL into the file) is refused, file and WAL left as
// they are: SQLite wrote that WAL's pages into the restored file, which then
// read as the database before it (the client made after the backup was taken).
// Without the WAL it opens as the backup; and the database as the kill left it,
// with its own WAL, opens with everything it committed.
func TestOpenRefusesAnotherDatabasesWAL(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t)})
	is.NoErr(err) // open store
	_, err = st.CreateClient(ctx, store.NewClient{Name: "before", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	backup := filepath.Join(dir, "backup.db")
	is.NoErr(st.Backup(ctx, backup)) // hookd backup
	for i := range 20 {
		_, err = st.CreateClient(ctx, store.NewClient{Name: fmt.Sprintf("after-%d", i), Scopes: []string{store.ScopeWebhook}})
		is.NoErr(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if n, copied := store.WALCopied(path); n > 0 && copied {
			break // the checkpointer copied the WAL into the file, and it holds still
		}
		if time.Now().After(deadline) {
			t.Fatal("the checkpointer did not copy the WAL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// What a kill leaves: the file, its WAL and the index as they are now.
	killed := filepath.Join(t.TempDir(), "hookd.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, path+suffix, killed+suffix)
	}
	is.NoErr(st.Close())

	restored := restoreOver(t, killed, backup)
	refusesStaleWAL(t, restored)
	// An operator who knows the file was not replaced turns the check off.
	t.Setenv("HOOKD_WAL_CHECK", "off")
	is.NoErr(store.CheckWAL(restored)) // not checked
	// In any case, with white space around it, as a unit file or a shell may
	// write it: the refusal said to set it off, and ignored "OFF".
	for _, off := range []string{"OFF", "Off", " off\n"} {
		t.Setenv("HOOKD_WAL_CHECK", off)
		is.NoErr(store.CheckWAL(restored)) // not checked
	}
	// Another value leaves the check on, and the refusal says so.
	for _, other := range []string{"0", "false", "no"} {
		t.Setenv("HOOKD_WAL_CHECK", other)
		err = store.CheckWAL(restored)
		is.True(err != nil) // checked
		if err != nil {
			is.True(strings.Contains(err.Error(), fmt.Sprintf("HOOKD_WAL_CHECK is %q in this environment, which leaves the check on: only off turns it off", other)))
		}
	}
	t.Setenv("HOOKD_WAL_CHECK", "")
	refusesStaleWAL(t, restored) // and on again
	err = store.CheckWAL(restored)
	is.True(err != nil && !strings.Contains(err.Error(), "in this environment, which leaves")) // unset: nothing said of it
	// As a restore does: without the WAL and its index, the backup is what opens.
	is.NoErr(os.Remove(restored + "-wal"))
	is.NoErr(os.Remove(restored + "-shm"))
	is.Equal(clientNames(t, restored), []string{"before"})

	// The database as the kill left it opens with its own WAL, all of it.
	is.Equal(len(clientNames(t, killed)), 21)
}

// TestOpenRefusesAnotherDatabasesWALCopiedInPart: the same where a checkpoint
// copied only the WAL's first commit into the file (a reader held the second
// back): the restored file's pages are not the ones copied. The database as it
// was left passes.
func TestOpenRefusesAnotherDatabasesWALCopiedInPart(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	is.NoErr(err)
	defer db.Close()
	exec := func(c interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows := func(table, text string) string {
		return "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300) INSERT INTO " + table + " SELECT '" + text + "-' || i FROM n"
	}
	exec(db, "CREATE TABLE t(x TEXT)")
	exec(db, "CREATE TABLE u(x TEXT)")
	exec(db, rows("t", "before"))
	exec(db, "PRAGMA wal_checkpoint(TRUNCATE)")
	backup := filepath.Join(dir, "backup.db")
	exec(db, "VACUUM INTO '"+backup+"'")
	exec(db, "UPDATE t SET x = 'changed-' || rowid")
	// A reader holds the second commit back from the checkpoint.
	reader, err := db.Conn(ctx)
	is.NoErr(err)
	tx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	is.NoErr(err)
	var n int
	is.NoErr(tx.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n))
	writer, err := db.Conn(ctx)
	is.NoErr(err)
	exec(writer, rows("u", "later"))
	exec(writer, "PRAGMA wal_checkpoint(PASSIVE)")
	frames, copied := store.WALCopied(path)
	is.True(frames > 0 && !copied) // copied in part
	killed := filepath.Join(t.TempDir(), "hookd.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, path+suffix, killed+suffix)
	}
	tx.Rollback()
	reader.Close()
	writer.Close()

	refusesStaleWAL(t, restoreOver(t, killed, backup))
	_, err = store.FileSchemaVersion(ctx, killed)
	is.True(errors.Is(err, store.ErrNotHookd)) // the database as it was left is read: past the WAL, to its tables
}

// TestCheckWALPassesVacuumCopiedInPart: a database VACUUM made smaller (an
// operator's sqlite3 beside hookd), whose checkpoint a reader held back to the
// commits before the VACUUM, passes as a kill leaves it, and opens with the
// VACUUM's commit: the checkpoint copied no page past the database's new size,
// so the page near the file's end that the commit before it had changed was
// left as it was, and was taken for a page of another database.
func TestCheckWALPassesVacuumCopiedInPart(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t)})
	is.NoErr(err) // open store
	_, err = st.CreateClient(ctx, store.NewClient{Name: "kept", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	is.NoErr(st.Close())

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	is.NoErr(err)
	defer db.Close()
	exec := func(c interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(db, "CREATE TABLE pad(x BLOB)")
	exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300) INSERT INTO pad SELECT randomblob(2000) FROM n")
	exec(db, "PRAGMA wal_checkpoint(TRUNCATE)") // every page in the file
	exec(db, "UPDATE pad SET x = randomblob(2000) WHERE rowid = 290")
	// A reader holds the commits after the update back from the checkpoint.
	reader, err := db.Conn(ctx)
	is.NoErr(err)
	tx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	is.NoErr(err)
	var n int
	is.NoErr(tx.QueryRowContext(ctx, "SELECT count(*) FROM pad").Scan(&n))
	writer, err := db.Conn(ctx)
	is.NoErr(err)
	exec(writer, "DROP TABLE pad")
	exec(writer, "VACUUM")
	exec(writer, "PRAGMA wal_checkpoint(PASSIVE)")
	frames, copied := store.WALCopied(path)
	is.True(frames > 0 && !copied) // copied in part
	killed := filepath.Join(t.TempDir(), "hookd.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, path+suffix, killed+suffix)
	}
	is.NoErr(tx.Rollback())
	is.NoErr(reader.Close())
	is.NoErr(writer.Close())

	is.NoErr(store.CheckWAL(killed)) // its own WAL
	is.Equal(clientNames(t, killed), []string{"kept"})
	kdb, err := sql.Open("sqlite", "file:"+killed+"?mode=ro")
	is.NoErr(err)
	defer kdb.Close()
	is.NoErr(kdb.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'pad'").Scan(&n))
	is.Equal(n, 0) // the VACUUM's commit was read from the WAL
}
