package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hookd/store"

	"github.com/matryer/is"
)

func TestSecondServeRefused(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	d := startDaemon(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr safeBuffer
	err := run(ctx, []string{"hookd", "serve", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil) // a second daemon on the same file does not start
	msg := err.Error()
	is.True(strings.Contains(msg, "in use by another hookd daemon"))     // says why
	is.True(strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())))   // names the running one
	is.True(strings.Contains(msg, strings.TrimPrefix(d.url, "http://"))) // and where it listens

	// The same file on the running daemon's own port: still named, not "address in use".
	same := filepath.Join(filepath.Dir(cfg), "same-port.toml")
	body, err := os.ReadFile(cfg)
	is.NoErr(err)
	is.NoErr(os.WriteFile(same, []byte(strings.Replace(string(body), "127.0.0.1:0", strings.TrimPrefix(d.url, "http://"), 1)), 0o600))
	err = run(ctx, []string{"hookd", "serve", "-config", same}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), fmt.Sprintf("in use by another hookd daemon (serve or dev): pid %d", os.Getpid()))) // names it
	is.NoErr(d.stop())                                                                                                        // the first stops cleanly

	d = startDaemon(t, cfg) // once the first has stopped, a new one starts
	is.NoErr(d.stop())
}

// TestRestoredBackupTakesNewDeliveryIDs: a backup restored over the database, as
// the README restores one, gives its new deliveries ids (and so webhook-ids) past
// any the daemon gave after the backup; a plain restart counts on.
func TestRestoredBackupTakesNewDeliveryIDs(t *testing.T) {
	is := is.New(t)
	w := newRestoreWorld(t, "0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700", "0000-0002-9079-593X")
	d := startDaemon(t, w.cfg)
	is.Equal(w.event(t, w.records[0]), int64(1))
	backup := w.backup(t)
	is.Equal(w.event(t, w.records[1]), int64(2)) // after the backup: msg_2
	is.NoErr(d.stop())

	d = startDaemon(t, w.cfg) // a restart
	is.Equal(w.event(t, w.records[2]), int64(3))
	is.NoErr(d.stop())
	is.True(!strings.Contains(d.stderr.String(), "not the state")) // said nothing

	w.restore(t, backup)
	d = startDaemon(t, w.cfg)
	id := w.event(t, w.records[3])
	is.True(id > 3) // none the original gave: not msg_2 or msg_3 again
	is.NoErr(d.stop())
	is.True(strings.Contains(d.stderr.String(), "this database is not the state this daemon's file last ran on")) // said why
	is.True(strings.Contains(d.stderr.String(), fmt.Sprintf(`"first_delivery_id":%d`, id)))
}

// TestCompactedCopyCountsOn: the README's copy that gives the space back, made
// with hookd backup while the daemon is stopped and put in the database's place,
// gives deliveries ids that go on from the original's: the copy is the state the
// daemon last ran on, not a restored backup.
func TestCompactedCopyCountsOn(t *testing.T) {
	is := is.New(t)
	w := newRestoreWorld(t, "0000-0002-7253-3645", "0000-0002-1825-0097")
	d := startDaemon(t, w.cfg)
	is.Equal(w.event(t, w.records[0]), int64(1))
	is.NoErr(d.stop())

	copyPath := filepath.Join(filepath.Dir(w.db), "hookd-compact.db")
	_, err := runCmd(t, "backup", "-config", w.cfg, copyPath)
	is.NoErr(err)
	for _, f := range []string{w.db + "-wal", w.db + "-shm"} {
		os.Remove(f)
	}
	is.NoErr(os.Rename(copyPath, w.db))

	d = startDaemon(t, w.cfg)
	is.Equal(w.event(t, w.records[1]), int64(2)) // counts on
	is.NoErr(d.stop())
	is.True(!strings.Contains(d.stderr.String(), "not the state")) // its own database
}

// restoreWorld is a configuration with a database that has a client and a webhook
// for each of its records, for the tests of a restored database.
type restoreWorld struct {
	cfg, db string
	records []string
}

func newRestoreWorld(t *testing.T, records ...string) restoreWorld {
	t.Helper()
	is := is.New(t)
	w := restoreWorld{cfg: testConfig(t, fastDelivery+"paused = true\n"), records: records}
	w.db = filepath.Join(filepath.Dir(w.cfg), "hookd.db")
	st := openTestStore(t, w.cfg)
	defer st.Close()
	c, err := st.CreateClient(context.Background(), store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	for _, r := range records {
		_, _, err = st.PutOrcidWebhook(context.Background(), c.ID, r, "https://receiver.example/"+r)
		is.NoErr(err)
	}
	return w
}

// event takes an event for record r beside the daemon, and returns its delivery's id.
func (w restoreWorld) event(t *testing.T, r string) int64 {
	t.Helper()
	is := is.New(t)
	st := openTestStore(t, w.cfg)
	defer st.Close()
	_, err := st.Intake(context.Background(), "", "", []store.Event{{Orcid: r}}, 0)
	is.NoErr(err)
	ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{Orcid: r, Limit: 1})
	is.NoErr(err)
	is.Equal(len(ds), 1)
	return ds[0].ID
}

// backup copies the database beside the daemon, as hookd backup does.
func (w restoreWorld) backup(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	st := openTestStore(t, w.cfg)
	defer st.Close()
	if err := st.Backup(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// restore puts the copy at path in the database's place, as the README restores one.
func (w restoreWorld) restore(t *testing.T, path string) {
	t.Helper()
	for _, f := range []string{w.db, w.db + "-wal", w.db + "-shm"} {
		os.Remove(f)
	}
	b, err := os.ReadFile(path)
	if err == nil {
		err = os.WriteFile(w.db, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecondServeThroughSymlinkRefused: a database named through a symbolic link is
// the file it links to: a daemon on each name takes one lock, and the second is
// refused.
func TestSecondServeThroughSymlinkRefused(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd.db")
	is.NoErr(os.WriteFile(db, nil, 0o600))
	link := filepath.Join(t.TempDir(), "linked.db")
	is.NoErr(os.Symlink(db, link))
	first, _, err := acquireServeLock(db, "127.0.0.1:1", false)
	is.NoErr(err)
	defer first.release()
	_, _, err = acquireServeLock(link, "127.0.0.1:2", false)
	is.True(err != nil && strings.Contains(err.Error(), "in use by another hookd daemon")) // one lock for one file
	is.True(strings.Contains(err.Error(), "listening on 127.0.0.1:1"))
}

// TestFailedStartKeepsTheMark: a start that fails before it has checked the
// database (here: the wrong key) leaves what the lock file saw of it, so that the
// next start does not take the database for a copy.
func TestFailedStartKeepsTheMark(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, fastDelivery+"paused = true\n")
	dir := filepath.Dir(cfg)
	key := filepath.Join(dir, "hookd.key")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "lab") // a sealed secret: the key is checked
	is.NoErr(err)
	d := startDaemon(t, cfg)
	is.NoErr(d.stop())

	good, err := os.ReadFile(key)
	is.NoErr(err)
	is.NoErr(os.WriteFile(key, []byte(strings.Repeat("00", 32)+"\n"), 0o600)) // the wrong key
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr safeBuffer
	is.True(run(ctx, []string{"hookd", "serve", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr) != nil) // refused
	b, err := os.ReadFile(filepath.Join(dir, "hookd.db.lock"))
	is.NoErr(err)
	is.True(strings.Contains(string(b), `"mark":"`)) // kept
	is.NoErr(os.WriteFile(key, good, 0o600))         // put right

	d = startDaemon(t, cfg)
	is.NoErr(d.stop())
	is.True(!strings.Contains(d.stderr.String(), "this database is not the state")) // its own database
}

// TestRestartThroughSymlinkKeepsTheMark: a database made through a symbolic link to
// where it will be has one lock file from its first start on.
func TestRestartThroughSymlinkKeepsTheMark(t *testing.T) {
	is := is.New(t)
	dir, data := t.TempDir(), t.TempDir()
	is.NoErr(os.Symlink(filepath.Join(data, "hookd.db"), filepath.Join(dir, "hookd.db"))) // the file is not there yet
	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n"+fastDelivery+"paused = true\n[store]\npath = \"hookd.db\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n"), 0o600))
	d := startDaemon(t, cfg) // creates the database through the link
	is.NoErr(d.stop())
	d = startDaemon(t, cfg)
	is.NoErr(d.stop())
	is.True(!strings.Contains(d.stderr.String(), "this database is not the state")) // the same database
	_, err := os.Stat(filepath.Join(dir, "hookd.db.lock"))
	is.True(os.IsNotExist(err)) // the lock is beside the file itself
	_, err = os.Stat(filepath.Join(data, "hookd.db.lock"))
	is.NoErr(err)
}

// TestRestoredReplicaAfterCrashTakesNewDeliveryIDs: a replica a little behind the
// database (as Litestream's is), restored after the daemon was killed, carries the
// daemon's last mark; its delivery id counter is behind what the lock file saw
// given, so its new deliveries take ids past the original's.
func TestRestoredReplicaAfterCrashTakesNewDeliveryIDs(t *testing.T) {
	is := is.New(t)
	w := newRestoreWorld(t, "0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700")
	p := startProcess(t, "serve", "-config", w.cfg)
	is.Equal(w.event(t, w.records[0]), int64(1))
	replica := w.backup(t)           // the replica, behind the database
	lost := w.event(t, w.records[1]) // made in the daemon's last second: msg_2
	// The daemon writes the highest id given beside the database within issuedEvery.
	var seen lockHolder
	for deadline := time.Now().Add(10 * time.Second); seen.Issued < lost && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(w.db + ".lock"); err == nil {
			json.Unmarshal(b, &seen)
		}
	}
	is.Equal(seen.Issued, lost)
	p.kill() // the machine dies

	w.restore(t, replica)
	d := startDaemon(t, w.cfg)
	id := w.event(t, w.records[2])
	is.NoErr(d.stop())
	is.True(id > lost) // not msg_2 again, for another message
}

// TestLockFileNeverEmpty: the daemon rewrites its lock file while deliveries are
// made (the highest id given) without ever truncating it, so a process killed at
// any moment leaves a file that still holds the database's mark.
func TestLockFileNeverEmpty(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	cfg := testConfig(t, fastDelivery+"paused = true\n")
	db := filepath.Join(filepath.Dir(cfg), "hookd.db")
	st := openTestStore(t, cfg)
	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(ctx, c.ID, "0000-0002-7253-3645", "https://receiver.example/x")
	is.NoErr(err)
	is.NoErr(st.Close())

	p := startProcess(t, "serve", "-config", cfg)
	defer p.kill()
	st = openTestStore(t, cfg)
	defer st.Close()
	done := make(chan struct{})
	go func() { // a delivery every 20 ms, for as long as the file is read
		defer close(done)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			st.Intake(ctx, "", "", []store.Event{{Orcid: "0000-0002-7253-3645"}}, 0)
		}
	}()
	reads, empty := 0, 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && reads < 1_000_000; {
		if b, err := os.ReadFile(db + ".lock"); err == nil {
			reads++
			if len(strings.TrimSpace(string(b))) == 0 {
				empty++
			}
		}
	}
	<-done
	is.True(reads > 0)
	is.Equal(empty, 0) // never without its content
	var h lockHolder
	b, err := os.ReadFile(db + ".lock")
	is.NoErr(err)
	is.NoErr(json.Unmarshal(b, &h))
	is.True(h.Mark != "" && h.Issued > 1) // the mark, and the ids given meanwhile
}

// TestBackupSinceTheLastMarkIsACopy: a backup taken after the daemon's last mark (at
// its start here), restored after the daemon revised a delivery it holds, is taken
// for a copy: the mark before is forgotten once the database holds the new one.
func TestBackupSinceTheLastMarkIsACopy(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	w := newRestoreWorld(t, "0000-0002-7253-3645")
	w.event(t, w.records[0]) // delivery 1 waits (delivery is paused)
	d := startDaemon(t, w.cfg)
	backup := w.backup(t) // holds the mark the daemon gave at its start
	// The original sent delivery 1 and revised it since: msg_1_1 went out.
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: w.db}).EscapedPath())
	is.NoErr(err)
	_, err = raw.Exec("UPDATE deliveries SET attempts = 1, msg_rev = 1 WHERE id = 1")
	is.NoErr(err)
	is.NoErr(raw.Close())
	is.NoErr(d.stop())

	w.restore(t, backup)
	d = startDaemon(t, w.cfg)
	is.NoErr(d.stop())
	st := openTestStore(t, w.cfg)
	defer st.Close()
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Orcid: w.records[0], Limit: 1})
	is.NoErr(err)
	is.Equal(len(ds), 1)
	is.True(strings.Contains(d.stderr.String(), "this database is not the state this daemon's file last ran on")) // taken for a copy
	is.True(ds[0].MsgRev > 1)                                                                                     // past msg_1_1, which the original sent
}

// TestCommandDoesNotMigrateUnderDaemon: a command of a newer binary does not
// migrate a database that a daemon (of the older binary: it would have migrated
// the file itself) holds; it says what to do and changes nothing. Once no daemon
// holds it, the same command migrates it.
func TestCommandDoesNotMigrateUnderDaemon(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	dbPath := filepath.Join(filepath.Dir(cfg), "hookd.db")
	// The database as the version before made it: without the newest migration.
	newest := store.SchemaVersion()
	is.Equal(newest, 38) // (the undoing below is of migration 38; a newer one needs its own)
	undo := func(db *sql.DB) {
		_, err := db.Exec(`ALTER TABLE clients DROP COLUMN removing_at;
			ALTER TABLE organisations DROP COLUMN removing_at;
			DELETE FROM schema_migrations WHERE version = 38`)
		is.NoErr(err)
	}
	version := func() int {
		db, err := sql.Open("sqlite", dbPath)
		is.NoErr(err)
		defer db.Close()
		var v int
		is.NoErr(db.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v))
		return v
	}
	db, err := sql.Open("sqlite", dbPath)
	is.NoErr(err)
	undo(db)
	is.NoErr(db.Close())
	is.Equal(version(), 37)

	lock, _, err := acquireServeLock(dbPath, "127.0.0.1:8080", false) // the older daemon, running
	is.NoErr(err)
	var stdout, stderr safeBuffer
	err = run(context.Background(), []string{"hookd", "client", "list", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil) // refused
	msg := err.Error()
	is.True(strings.Contains(msg, "is at schema version 37, which this hookd would migrate to 38"))                 // says why
	is.True(strings.Contains(msg, fmt.Sprintf("a hookd daemon (pid %d, listening on 127.0.0.1:8080", os.Getpid()))) // names the daemon
	is.True(strings.Contains(msg, "restart it with this binary"))                                                   // and what to do
	is.Equal(version(), 37)                                                                                         // nothing changed
	lock.release()

	// A backup, under the daemon or not, copies the file as it is: the copy is one
	// that the older hookd opens.
	for _, daemon := range []bool{true, false} {
		if daemon {
			lock, _, err = acquireServeLock(dbPath, "127.0.0.1:8080", false)
			is.NoErr(err)
		}
		dest := filepath.Join(t.TempDir(), "before-upgrade.db")
		out, err := runCmd(t, "backup", dest, "-config", cfg)
		is.NoErr(err)                                                                              // backed up
		is.True(strings.Contains(out, "at its schema version 37, unmigrated (this hookd's is 38")) // and says how
		is.Equal(version(), 37)                                                                    // the file as it was
		v, err := store.FileCheck(context.Background(), dest, nil)
		is.NoErr(err)
		is.Equal(v, 37) // and its copy too
		if daemon {
			lock.release()
		}
	}

	var migrated safeBuffer
	err = run(context.Background(), []string{"hookd", "client", "list", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &migrated)
	is.NoErr(err)                                                                                 // no daemon: the command migrates the file
	is.True(strings.Contains(migrated.String(), "applying database migration 0038_removing.sql")) // and says so
	is.Equal(version(), 38)                                                                       // to this binary's schema
}

// TestRestoreUnderRunningDaemonIsRefused: a backup restored in the database's
// place while the daemon runs (the README's restore without its "systemctl stop")
// leaves the daemon with the old file open, which nobody opens again. The daemon
// acknowledges no event into it, since that event would be lost at its next start:
// the events API answers 503 saying why, /readyz says so too, and what the
// restored file holds after a restart is the copy, whole.
func TestRestoreUnderRunningDaemonIsRefused(t *testing.T) {
	is := is.New(t)
	w := newRestoreWorld(t, "0000-0002-7253-3645")
	out, err := runCmd(t, "client", "add", "-config", w.cfg, "-name", "notifier", "-scopes", "/notify", "-json")
	is.NoErr(err) // a client that sends events
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c))
	d := startDaemon(t, w.cfg)
	tok := scopedToken(t, d.url, c.ClientID, c.ClientSecret, "/notify")
	event := func(id string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, d.url+"/api/notifications/v1/events",
			strings.NewReader(`{"orcid": "0000-0002-7253-3645", "id": "`+id+`"}`))
		is.NoErr(err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := noRedirects.Do(req)
		is.NoErr(err) // the events API answers
		return res
	}
	res := event("before")
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusAccepted) // taken, before the restore

	w.restore(t, w.backup(t)) // the daemon still runs
	res = event("after")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusServiceUnavailable)                    // not acknowledged
	is.True(strings.Contains(string(body), "no longer the file hookd opened")) // says why
	res, err = noRedirects.Get(d.url + "/readyz")
	is.NoErr(err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusServiceUnavailable)                    // not ready
	is.True(strings.Contains(string(body), "no longer the file hookd opened")) // for that reason
	is.True(strings.Contains(string(body), "restart hookd"))                   // and what to do
	d.stop()

	d = startDaemon(t, w.cfg) // the restart the operator was told of
	res = event("after")
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusAccepted) // taken now, into the restored file
	is.NoErr(d.stop())
	st := openTestStore(t, w.cfg)
	defer st.Close()
	ds, err := st.Deliveries(context.Background(), store.DeliveryFilter{Orcid: "0000-0002-7253-3645"})
	is.NoErr(err)
	is.Equal(len(ds), 1)          // one delivery waits
	is.Equal(ds[0].EventCount, 2) // with the event of before the backup and the one taken since
}

// TestSecondServeThroughHardLinkRefused: a second name of the database file (a
// hard link, as cp -l or a hard-link snapshot of its folder makes one) has a lock
// file of its own, and SQLite would keep a WAL of its own beside it: a second
// daemon (or a command) through it would corrupt the file under the first. Both
// names are refused, by check-config (the unit's ExecStartPre) too, saying why;
// the running daemon goes on.
func TestSecondServeThroughHardLinkRefused(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "")
	d := startDaemon(t, cfg)
	db := filepath.Join(filepath.Dir(cfg), "hookd.db")
	snap := t.TempDir()
	if err := os.Link(db, filepath.Join(snap, "hookd.db")); err != nil {
		unavailable(t, "no hard links here: %v", err)
	}
	is.NoErr(os.Link(filepath.Join(filepath.Dir(cfg), "hookd.key"), filepath.Join(snap, "hookd.key")))
	other := filepath.Join(snap, "hookd.toml")
	is.NoErr(os.WriteFile(other, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"hookd.db\"\n"), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr, done := serveIn(ctx, other, noenv)
	var err error
	select {
	case err = <-done:
	case <-stderr.listening:
		cancel()
		<-done
		t.Fatal("a second daemon started through the other name")
	}
	is.True(err != nil)                                                // a second daemon through the other name is refused
	is.True(strings.Contains(err.Error(), "has 2 names (hard links)")) // says why
	is.True(strings.Contains(err.Error(), "hookd backup"))             // and how to copy a database instead
	_, err = runCmd(t, "check-config", "-config", other)
	is.True(err != nil && strings.Contains(err.Error(), "hard links")) // check-config says so first
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.True(err != nil && strings.Contains(err.Error(), "hard links")) // a command by the first name too
	_, err = os.Stat(filepath.Join(snap, "hookd.db-wal"))
	is.True(errors.Is(err, os.ErrNotExist)) // nothing opened the other name
	res, err := noRedirects.Get(d.url + "/readyz")
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // the daemon goes on
	is.NoErr(d.stop())
}

// TestRestoredBackupWarnsOfRepeats: a restored backup's start says that the
// deliveries waiting in it are sent, and that those the original sent after the
// backup reach their receivers a second time, and how many wait.
func TestRestoredBackupWarnsOfRepeats(t *testing.T) {
	is := is.New(t)
	w := newRestoreWorld(t, "0000-0002-7253-3645", "0000-0002-1825-0097", "0000-0001-5109-3700")
	d := startDaemon(t, w.cfg)
	w.event(t, w.records[0])
	w.event(t, w.records[1])
	backup := w.backup(t) // two deliveries wait in it
	w.event(t, w.records[2])
	is.NoErr(d.stop())

	w.restore(t, backup)
	d = startDaemon(t, w.cfg)
	is.NoErr(d.stop())
	logs := d.stderr.String()
	is.True(strings.Contains(logs, "this database is not the state this daemon's file last ran on"))                                           // taken for a copy
	is.True(strings.Contains(logs, "those the original sent after it was copied reach their receivers a second time, under a new webhook-id")) // says deliveries may repeat
	is.True(strings.Contains(logs, `"waiting":2`))                                                                                             // and how many wait
}
