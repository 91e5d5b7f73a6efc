package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	_ "modernc.org/sqlite"

	"hookd/secret"
	"hookd/store"
)

// fillDatabase adds a table of n MiB of random bytes to the configured database,
// so that copying it takes many writes.
func fillDatabase(tb testing.TB, cfg string, mib int) {
	tb.Helper()
	is := is.New(tb)
	_, err := runCmd(tb, "client", "list", "-config", cfg)
	is.NoErr(err) // creates and migrates the database
	db, err := sql.Open("sqlite", filepath.Join(filepath.Dir(cfg), "hookd.db"))
	is.NoErr(err)
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf(`CREATE TABLE filler(b BLOB);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d)
		INSERT INTO filler SELECT randomblob(65536) FROM n`, mib*16))
	is.NoErr(err) // filled
}

// checkCopy opens a backup and checks that it is whole: integrity_check ok and
// every filler row there.
func checkCopy(tb testing.TB, path string, mib int) {
	tb.Helper()
	is := is.New(tb)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	is.NoErr(err)
	defer db.Close()
	var ok string
	is.NoErr(db.QueryRow("PRAGMA integrity_check").Scan(&ok))
	is.Equal(ok, "ok") // the copy is a sound database
	var n int
	is.NoErr(db.QueryRow("SELECT count(*) FROM filler").Scan(&n))
	is.Equal(n, mib*16) // with all its rows
}

// tempFiles lists what a backup to dest left beside it.
func tempFiles(tb testing.TB, dest string) []string {
	tb.Helper()
	m, err := filepath.Glob(dest + ".tmp-*")
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestBackupFlagsAfterDest: flags may follow the destination, as for other commands.
func TestBackupFlagsAfterDest(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	fillDatabase(t, cfg, 1)
	dest := filepath.Join(t.TempDir(), "copy.db")
	out, err := runCmd(t, "backup", dest, "-config", cfg)
	is.NoErr(err)                               // DEST before -config
	is.True(strings.Contains(out, "backed up")) // says so
	checkCopy(t, dest, 1)
	is.Equal(len(tempFiles(t, dest)), 0) // nothing left beside it
	fi, err := os.Stat(dest)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // readable by its owner only

	_, err = runCmd(t, "backup", dest, "-config", cfg)
	is.True(err != nil) // an existing DEST is never overwritten
	_, err = runCmd(t, "backup", "-config", cfg)
	is.True(err != nil) // DEST is required
	_, err = runCmd(t, "backup", dest+"2", dest+"3", "-config", cfg)
	is.True(err != nil) // and only one
	missing := filepath.Join(t.TempDir(), "no-such-folder", "copy.db")
	_, err = runCmd(t, "backup", missing, "-config", cfg)
	is.True(err != nil)                                                             // into a folder that is not there
	is.True(strings.Contains(err.Error(), filepath.Dir(missing)+" does not exist")) // says which
}

// TestBackupRefusesSymlinkAtDest: a symbolic link at FILE, even one to nothing, is
// a file that exists: the backup refuses it at once, as any existing FILE, and
// leaves it and its target alone.
func TestBackupRefusesSymlinkAtDest(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	fillDatabase(t, cfg, 1)
	dir := t.TempDir()
	dest, target := filepath.Join(dir, "copy.db"), filepath.Join(dir, "elsewhere.db")
	is.NoErr(os.Symlink(target, dest))
	_, err := runCmd(t, "backup", dest, "-config", cfg)
	is.True(err != nil)                                                               // refused
	is.True(strings.Contains(err.Error(), dest+" already exists; choose a new file")) // as an existing file
	got, err := os.Readlink(dest)
	is.NoErr(err)
	is.Equal(got, target) // the link is kept
	_, err = os.Lstat(target)
	is.True(os.IsNotExist(err))          // nothing written through it
	is.Equal(len(tempFiles(t, dest)), 0) // and no copy made
}

// TestBackupFailsMidwayLeavesNoDest runs the real binary with a file-size limit
// below the database's size, so the copy fails after writing part of it: DEST
// does not appear, the partial copy is removed, and a later backup succeeds.
func TestBackupFailsMidwayLeavesNoDest(t *testing.T) {
	is := is.New(t)
	bin := hookdBinary(t)
	cfg := testConfig(t, "")
	fillDatabase(t, cfg, 4)
	dest := filepath.Join(t.TempDir(), "copy.db")

	// 1024 blocks of 512 bytes (dash) or 1 KiB (bash): at most 1 MiB, a quarter of it.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -f 1024 && exec "$0" "$@"`, bin, "backup", dest, "-config", cfg)
	out, err := cmd.CombinedOutput()
	is.True(err != nil) // the copy failed
	t.Logf("hookd backup under ulimit -f: %v: %s", err, out)
	is.True(strings.Contains(string(out), "backup to")) // saying what it was doing
	_, err = os.Stat(dest)
	is.True(os.IsNotExist(err))          // no DEST, not even an empty database
	is.Equal(len(tempFiles(t, dest)), 0) // and the partial copy is gone

	out, err = exec.Command(bin, "backup", dest, "-config", cfg).CombinedOutput()
	is.NoErr(err) // without the limit it succeeds
	t.Logf("%s", out)
	checkCopy(t, dest, 4)
}

// TestBackupNeverOverwritesWhatAppeared: a file that appears at FILE at the last
// moment, after any look at whether FILE is free, is kept, and the backup fails
// saying so, leaving no temporary file behind.
func TestBackupNeverOverwritesWhatAppeared(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	fillDatabase(t, cfg, 1)
	dest := filepath.Join(t.TempDir(), "copy.db")
	defer func(f func(string)) { backupTakesName = f }(backupTakesName)
	backupTakesName = func(d string) { os.WriteFile(d, []byte("someone else's"), 0o600) }
	_, err := runCmd(t, "backup", dest, "-config", cfg)
	is.True(err != nil) // refused
	is.True(strings.Contains(err.Error(), "appeared while copying; choose a new file"))
	b, err := os.ReadFile(dest)
	is.NoErr(err)
	is.Equal(string(b), "someone else's") // kept
	is.Equal(len(tempFiles(t, dest)), 0)  // and the copy removed
}

// TestBackupKilledLeavesNoPartialDest kills "hookd backup" with SIGKILL once its
// copy is being written: afterwards DEST is absent (only the temporary file is
// left), or, had the copy finished first, whole. It is never a partial database.
func TestBackupKilledLeavesNoPartialDest(t *testing.T) {
	is := is.New(t)
	bin := hookdBinary(t)
	cfg := testConfig(t, "")
	const mib = 32
	fillDatabase(t, cfg, mib)
	dest := filepath.Join(t.TempDir(), "copy.db")

	cmd := exec.Command(bin, "backup", dest, "-config", cfg)
	is.NoErr(cmd.Start())
	// Wait (bounded) until the temporary copy has data, then kill.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tmps := tempFiles(t, dest); len(tmps) == 1 {
			if fi, err := os.Stat(tmps[0]); err == nil && fi.Size() > 0 {
				break
			}
		}
		if _, err := os.Stat(dest); err == nil || time.Now().After(deadline) {
			break // finished before we saw it write, or never started
		}
		time.Sleep(time.Millisecond)
	}
	is.NoErr(cmd.Process.Signal(syscall.SIGKILL))
	err := cmd.Wait()
	killed := err != nil && cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL

	if _, err := os.Stat(dest); err == nil {
		t.Logf("the copy finished before the kill (killed=%v)", killed)
		checkCopy(t, dest, mib) // then it is whole
		return
	}
	is.True(killed) // killed mid-copy
	left := tempFiles(t, dest)
	is.True(len(left) >= 1) // leaving only the temporary file (and maybe its journal) beside DEST
	for _, f := range left {
		fi, err := os.Stat(f)
		is.NoErr(err)
		t.Logf("left %s, %d bytes", filepath.Base(f), fi.Size())
	}
}

// TestCheckConfigSchema: check-config reads the database's schema version without
// writing to it, says what serve will migrate, and refuses a database newer than
// the binary, which serve would refuse too.
func TestCheckConfigSchema(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd.db")
	cfg := writeConfig(t, "[store]\npath = \""+db+"\"\n")
	_, err := runCmd(t, "init", "-config", cfg)
	is.NoErr(err) // creates and migrates the database
	known := store.SchemaVersion()
	before := files(t, dir)
	out, err := runCmd(t, "check-config", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, fmt.Sprintf("schema version %d)", known))) // the database is this binary's
	is.Equal(files(t, dir), before)                                          // read, not written

	raw, err := sql.Open("sqlite", db)
	is.NoErr(err)
	defer raw.Close()
	_, err = raw.Exec("DELETE FROM schema_migrations WHERE version = ?", known)
	is.NoErr(err)
	out, err = runCmd(t, "check-config", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, fmt.Sprintf("schema version %d: hookd serve will migrate it to %d", known-1, known))) // an older database

	_, err = raw.Exec("INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0), (?, 0)", known, known+1)
	is.NoErr(err)
	_, err = runCmd(t, "check-config", "-config", cfg)
	is.True(err != nil) // a newer database is refused
	is.True(strings.Contains(err.Error(), fmt.Sprintf("schema version %d, newer than this hookd binary knows (%d)", known+1, known)))
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.True(err != nil) // as the daemon and every command refuse it
	is.True(strings.Contains(err.Error(), "newer than this hookd binary knows"))
}

// TestCheckConfigOtherDatabases: check-config says an empty file will be made
// hookd's, refuses another application's database (as every command does,
// which would otherwise add hookd's tables to it), and leaves a WAL without its
// -shm index to serve, which alone may read it.
func TestCheckConfigOtherDatabases(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd.db")
	cfg := writeConfig(t, "[store]\npath = \""+db+"\"\n")
	_, err := runCmd(t, "init", "-config", cfg)
	is.NoErr(err)                          // a key, beside a database
	is.NoErr(os.WriteFile(db, nil, 0o600)) // which is then an empty file
	out, err := runCmd(t, "check-config", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, fmt.Sprintf("empty: hookd serve will make its tables (schema version %d)", store.SchemaVersion())))

	raw, err := sql.Open("sqlite", db)
	is.NoErr(err)
	_, err = raw.Exec("CREATE TABLE orders(id INTEGER PRIMARY KEY)")
	is.NoErr(err)
	is.NoErr(raw.Close())
	_, err = runCmd(t, "check-config", "-config", cfg)
	is.True(err != nil) // another application's database
	is.True(strings.Contains(err.Error(), "not a hookd database"))
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.True(err != nil) // no command migrates it
	is.True(strings.Contains(err.Error(), "not a hookd database"))
	raw, err = sql.Open("sqlite", db)
	is.NoErr(err)
	var tables int
	is.NoErr(raw.QueryRow("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").Scan(&tables))
	is.Equal(tables, 1) // nothing of hookd's added
	is.NoErr(raw.Close())

	os.Remove(db + "-shm")
	is.NoErr(os.WriteFile(db+"-wal", []byte("commits of a crashed process"), 0o600))
	before := files(t, dir)
	out, err = runCmd(t, "check-config", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(out, "schema version not checked: the database has a WAL with commits and no -shm index"))
	is.Equal(files(t, dir), before) // and no index made
}

// TestCheckConfigNotADatabaseWithoutKey: store.path naming a file that is no
// hookd database, with no key beside it (a wrong path: another application's
// database, or no database at all), is named as such by check-config, as serve
// and every command name it, not taken for a database whose key is to be restored.
func TestCheckConfigNotADatabaseWithoutKey(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "orders.db")
	raw, err := sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE TABLE orders(id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a database at all, but long enough to be read as one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ db, want string }{
		{foreign, "not a hookd database"},
		{text, "cannot be read as a database"},
	} {
		cfg := writeConfig(t, "[store]\npath = \""+tt.db+"\"\n")
		_, err := runCmd(t, "client", "list", "-config", cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("client list on %s: %v, want %q", filepath.Base(tt.db), err, tt.want)
		}
		_, err = runCmd(t, "check-config", "-config", cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "restore the key") {
			t.Errorf("check-config on %s: %v, want %q, as the commands say, and nothing of a key to restore", filepath.Base(tt.db), err, tt.want)
		}
	}
}

// TestBackupTriesTheKey: the backup says to keep the key beside the database only
// when that key opens the copy's sealed secrets; a key of another database, or a
// file that holds no key, is named as such, and the copy is made all the same.
func TestBackupTriesTheKey(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "sealed")
	is.NoErr(err) // a client, whose signing secret is sealed under the key
	key := filepath.Join(filepath.Dir(cfg), "hookd.key")
	own, err := os.ReadFile(key)
	is.NoErr(err)
	dir := t.TempDir()

	out, err := runCmd(t, "backup", "-config", cfg, filepath.Join(dir, "own.db"))
	is.NoErr(err)
	is.True(strings.Contains(out, "(keep "+key+" too: it opens the sealed secrets)")) // the database's own key

	other := hex.EncodeToString(secret.Random(secret.KeySize)) + "\n"
	for name, body := range map[string]string{"other": other, "garbage": "not a key\n"} {
		is.NoErr(os.WriteFile(key, []byte(body), 0o600))
		dest := filepath.Join(dir, name+".db")
		out, err := runCmd(t, "backup", "-config", cfg, dest)
		is.NoErr(err) // the copy is made
		checkIntegrity(t, dest)
		is.True(strings.Contains(out, "but "+key+" does not open its sealed secrets")) // and the key named as not the database's
		is.True(!strings.Contains(out, "it opens the sealed secrets"))
	}

	is.NoErr(os.WriteFile(key, own, 0o600))
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err) // the database's own key opens it still
}

// TestBackupCopiesNewerSchema: a database a newer hookd migrated, which this one
// refuses to open (after a downgrade), is still copied, as it is, so that what it
// holds is kept before an older backup is restored over it; the backup says that
// only a hookd that knows its version opens the copy, and leaves the file as it was.
func TestBackupCopiesNewerSchema(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "kept")
	is.NoErr(err) // something to keep
	db := filepath.Join(filepath.Dir(cfg), "hookd.db")
	known := store.SchemaVersion()
	raw, err := sql.Open("sqlite", db)
	is.NoErr(err)
	_, err = raw.Exec("INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)", known+1)
	is.NoErr(err)
	is.NoErr(raw.Close())
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.True(err != nil) // this hookd opens it no more

	dest := filepath.Join(t.TempDir(), "newer.db")
	out, err := runCmd(t, "backup", dest, "-config", cfg)
	is.NoErr(err)                                                                                                        // copied all the same
	is.True(strings.Contains(out, fmt.Sprintf("at its schema version %d, newer than this hookd's (%d", known+1, known))) // saying so
	checkIntegrity(t, dest)
	v, err := store.FileCheck(context.Background(), dest, nil)
	is.NoErr(err)
	is.Equal(v, known+1) // at its own version
	copied, err := sql.Open("sqlite", "file:"+dest+"?mode=ro")
	is.NoErr(err)
	defer copied.Close()
	var n int
	is.NoErr(copied.QueryRow("SELECT count(*) FROM clients WHERE name = 'kept'").Scan(&n))
	is.Equal(n, 1) // with what the database held
	v, err = store.FileCheck(context.Background(), db, nil)
	is.NoErr(err)
	is.Equal(v, known+1) // and the database as it was
}

// TestBackupRefusesTheDatabaseFiles: a FILE that is the database or one of the
// files kept beside it (SQLite's -wal, -shm and -journal, hookd's .lock and
// .yield), however it is spelt (relative, absolute, through a symbolic link to
// the folder, or with the database named through a link), is refused before
// anything is copied, saying which file it is: a copy named as the journal was
// deleted by SQLite at the next open, taken for a journal a crash left.
func TestBackupRefusesTheDatabaseFiles(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	dir := filepath.Dir(cfg)
	db := filepath.Join(dir, "hookd.db")
	link := filepath.Join(t.TempDir(), "data")
	is.NoErr(os.Symlink(dir, link))
	// A second configuration that names the database through a symbolic link.
	other := t.TempDir()
	is.NoErr(os.Symlink(db, filepath.Join(other, "alias.db")))
	aliasCfg := filepath.Join(other, "hookd.toml")
	is.NoErr(os.WriteFile(aliasCfg, []byte("[store]\npath = \"alias.db\"\n"), 0o600))
	t.Chdir(dir)
	before, err := os.ReadDir(dir)
	is.NoErr(err)

	for _, c := range []struct{ cfg, dest, says string }{
		{cfg, "hookd.db", "is the database being backed up (" + db + ")"},
		{cfg, "./hookd.db-wal", "is the name of SQLite's write-ahead log beside the database " + db},
		{cfg, "hookd.db-wal", "write-ahead log"},
		{cfg, filepath.Join(dir, "hookd.db-wal"), "write-ahead log"},
		{cfg, filepath.Join(link, "hookd.db-wal"), "write-ahead log"},
		{cfg, filepath.Join(dir, "missing", "..", "hookd.db-shm"), "shared-memory index"},
		{cfg, "hookd.db-journal", "rollback journal"},
		{cfg, filepath.Join(link, "hookd.db-journal"), "rollback journal"},
		{cfg, "hookd.db.lock", "hookd's lock file"},
		{cfg, "hookd.db.yield", "hookd's yield file"},
		{aliasCfg, filepath.Join(dir, "hookd.db-journal"), "rollback journal"},
		{aliasCfg, filepath.Join(other, "alias.db-wal"), "write-ahead log"},
	} {
		_, err := runCmd(t, "backup", "-config", c.cfg, c.dest)
		is.True(err != nil)                                           // refused
		is.True(strings.Contains(err.Error(), "backup: "+c.dest+" ")) // naming FILE as given
		is.True(strings.Contains(err.Error(), c.says))                // and which file it is
		is.True(strings.Contains(err.Error(), "nothing was written"))
		after, err := os.ReadDir(dir)
		is.NoErr(err)
		is.Equal(len(after), len(before)) // nothing made beside the database
	}

	// Names that are no file of the database's are copied to.
	elsewhere := filepath.Join(t.TempDir(), "hookd.db-wal")
	_, err = runCmd(t, "backup", "-config", cfg, elsewhere)
	is.NoErr(err) // another folder's hookd.db-wal
	_, err = runCmd(t, "backup", "-config", cfg, "hookd.db-2026-11-23")
	is.NoErr(err) // a name that only begins as the database's
	_, err = os.Stat("hookd.db-journal")
	is.True(os.IsNotExist(err))
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err) // the database opens as before
	_, err = os.Stat("hookd.db-2026-11-23")
	is.NoErr(err) // and the copy beside it is kept
}
