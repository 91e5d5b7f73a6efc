package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/orcid"
)

// litestreamVersion is the Litestream release the recipe in README.md and this
// test use, built from the Go module proxy.
const litestreamVersion = "v0.5.18"

// buildLitestream builds Litestream into a temporary folder. Where it cannot be
// built (no module proxy, say) the test is skipped, except in CI, where it fails.
func buildLitestream(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	cmd := exec.Command("go", "install", "github.com/benbjohnson/litestream/cmd/litestream@"+litestreamVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable(tb, "cannot build Litestream %s with the go command (go install github.com/benbjohnson/litestream/cmd/litestream@%s): %v\n%s",
			litestreamVersion, litestreamVersion, err, out)
	}
	return filepath.Join(dir, "litestream")
}

// program is a process the test runs and may kill.
type program struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProgram runs name with args, its output into out, killed at the end of the test.
func startProgram(tb testing.TB, out io.Writer, name string, args ...string) *program {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &program{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() { p.kill(tb) })
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *program) kill(tb testing.TB) {
	tb.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s did not end within 10s of SIGKILL", p.cmd.Path)
	}
}

// stop sends SIGTERM and waits (bounded) until the process has exited.
func (p *program) stop(tb testing.TB) {
	tb.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		tb.Fatalf("%s did not stop within 20s of SIGTERM", p.cmd.Path)
	}
}

// startHookd runs the binary's "hookd serve" and returns its base URL.
func startHookd(tb testing.TB, bin, cfg string) (*program, *logWatcher, string) {
	tb.Helper()
	log := newLogWatcher()
	p := startProgram(tb, log, bin, "serve", "-config", cfg)
	select {
	case u := <-log.listening:
		return p, log, u
	case <-p.done:
		tb.Fatalf("hookd serve ended before listening; log:\n%s", log)
	case <-time.After(20 * time.Second):
		tb.Fatalf("hookd serve did not listen within 20s; log:\n%s", log)
	}
	return nil, nil, ""
}

// testOrcid is the n-th of a series of valid iDs.
func testOrcid(n int) string {
	base := fmt.Sprintf("000000021%06d", n)
	d := base + string(orcid.CheckDigit(base))
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// waitFile waits (bounded) until a file or folder exists.
func waitFile(tb testing.TB, path, what string, logs func() string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear within 30s; logs:\n%s", what, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLitestreamDisasterRecovery runs the README's recipe: hookd with
// store.checkpoints = "external" takes events over HTTP while Litestream, with
// packaging/litestream/litestream.yml, replicates its database to a folder. Both
// are killed with SIGKILL (the machine is lost), the database, its WAL and
// Litestream's own folder are deleted, "litestream restore" brings the database
// back, and hookd, restarted on it, delivers every event acknowledged more than
// monitor-interval + sync-interval (+1 s) before the kill. On the way, Litestream
// is restarted while hookd takes events, and needs no second full copy.
func TestLitestreamDisasterRecovery(t *testing.T) {
	is := is.New(t)
	litestream := buildLitestream(t)
	bin := hookdBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd.db")
	replica := filepath.Join(dir, "replica")

	// The shipped Litestream configuration, pointed at this folder.
	example, err := os.ReadFile("packaging/litestream/litestream.yml")
	is.NoErr(err) // the example configuration
	lsConfig := filepath.Join(dir, "litestream.yml")
	body := strings.ReplaceAll(string(example), "/var/lib/hookd/hookd.db", db)
	body = strings.ReplaceAll(body, "/var/backups/hookd/litestream", replica)
	is.True(body != string(example)) // both paths replaced
	is.NoErr(os.WriteFile(lsConfig, []byte(body), 0o600))
	// The recovery point the configuration gives: a commit waits up to
	// monitor-interval to be read from the WAL, then up to sync-interval to be
	// shipped. The test allows Litestream one more second for its own work, on a
	// machine that other jobs share.
	promised := yamlDuration(t, body, "monitor-interval") + yamlDuration(t, body, "sync-interval")
	window := promised + time.Second

	// The receiver records the iD of every delivery.
	var mu sync.Mutex
	got := map[string]bool{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Data struct{ Orcid string }
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		mu.Lock()
		got[msg.Data.Orcid] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	// Phase 1: hookd takes events but sends nothing, so every delivery after the
	// restore comes from the restored database.
	cfgBody := func(paused bool) string {
		return "[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = " + strconv.Quote(db) + "\ncheckpoints = \"external\"\n" +
			"[delivery]\ncoalesce_window = \"0s\"\ntick = \"100ms\"\nallow_private_targets = true\npaused = " + strconv.FormatBool(paused) +
			"\n[log]\nformat = \"json\"\n"
	}
	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte(cfgBody(true)), 0o600))
	_, err = runCmd(t, "init", "-config", cfg)
	is.NoErr(err) // create the database
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "dr", "-scopes", "/webhook,/notify", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c))

	// Debug logging shows each sync; "snap=true" marks one that copies the whole
	// database because Litestream lost its place in the WAL.
	var lsLog safeBuffer
	ls := startProgram(t, &lsLog, litestream, "replicate", "-log-level", "debug", "-config", lsConfig)
	hookd, hookdLog, base := startHookd(t, bin, cfg)
	logs := func() string { return "hookd:\n" + hookdLog.String() + "\nlitestream:\n" + lsLog.String() }

	tok := scopedToken(t, base, c.ClientID, c.ClientSecret, "/webhook /notify")
	status, _ := adminCall(t, http.MethodPost, base+"/api/notifications/v1/webhooks", tok, `{"targetURL":`+strconv.Quote(recv.URL+"/hook")+`}`)
	is.Equal(status, http.StatusOK) // platform webhook for every record

	// Events, one request each, until hookd is killed; each acknowledgement's time.
	// The feeder ends by itself only at its bound, which the test never reaches.
	type ack struct {
		orcid string
		at    time.Time
	}
	var acks []ack
	var acksMu sync.Mutex
	feederDone := make(chan struct{})
	var feederEnd string
	go func() {
		defer close(feederDone)
		client := &http.Client{Timeout: 10 * time.Second}
		pace := time.NewTicker(2 * time.Millisecond) // at most 500 a second, 50000 in all
		defer pace.Stop()
		for i := 0; i < 50000; i++ {
			<-pace.C
			id := testOrcid(i)
			req, _ := http.NewRequest(http.MethodPost, base+"/api/notifications/v1/events",
				strings.NewReader(`{"orcid":"`+id+`","id":"dr-`+strconv.Itoa(i)+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				feederEnd = err.Error()
				return // hookd was killed
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				feederEnd = fmt.Sprintf("%s: %s", res.Status, b)
				return
			}
			acksMu.Lock()
			acks = append(acks, ack{id, time.Now()})
			acksMu.Unlock()
		}
	}()

	acked := func() int {
		acksMu.Lock()
		defer acksMu.Unlock()
		return len(acks)
	}
	// Let intake run for two recovery windows, and Litestream ship some of it.
	waitFile(t, replica, "the replica folder", logs)
	select {
	case <-feederDone:
		t.Fatalf("the event feeder stopped early: %s; logs:\n%s", feederEnd, logs())
	case <-time.After(2 * window):
	}

	// Litestream restarts (an upgrade, say) while hookd goes on taking events: with
	// checkpoints = "external" nothing moves the WAL meanwhile, so Litestream goes
	// on where it stopped instead of copying the whole database again.
	ls.stop(t)
	for n, deadline := acked(), time.Now().Add(30*time.Second); acked() < n+1000; {
		if time.Now().After(deadline) {
			t.Fatalf("hookd acknowledged fewer than 1000 events in 30s; logs:\n%s", logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ls = startProgram(t, &lsLog, litestream, "replicate", "-log-level", "debug", "-config", lsConfig)
	select {
	case <-feederDone:
		t.Fatalf("the event feeder stopped early: %s; logs:\n%s", feederEnd, logs())
	case <-time.After(3 * window):
	}

	// The machine is lost: both processes die at once, mid-intake.
	killedAt := time.Now()
	hookd.kill(t)
	ls.kill(t)
	<-feederDone
	acksMu.Lock()
	all := acks
	acksMu.Unlock()
	var must []string
	for _, a := range all {
		if killedAt.Sub(a.at) > window {
			must = append(must, a.orcid)
		}
	}
	is.True(len(must) > 0) // events old enough to be in the replica

	// A new machine: no database, no WAL, no Litestream state; the key file is
	// kept (it is backed up apart from the database, README).
	for _, f := range []string{db, db + "-wal", db + "-shm", filepath.Join(dir, ".hookd.db-litestream")} {
		is.NoErr(os.RemoveAll(f))
	}
	restoreStart := time.Now()
	restoreOut, err := exec.Command(litestream, "restore", "-config", lsConfig, db).CombinedOutput()
	restoreTook := time.Since(restoreStart)
	if err != nil {
		t.Fatalf("litestream restore: %v\n%s", err, restoreOut)
	}
	checkIntegrity(t, db)

	// Phase 2: hookd on the restored database, delivering.
	is.NoErr(os.WriteFile(cfg, []byte(cfgBody(false)), 0o600))
	hookd2, hookd2Log, _ := startHookd(t, bin, cfg)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, id := range must {
			if !got[id] {
				missing++
			}
		}
		delivered := len(got)
		mu.Unlock()
		if missing == 0 {
			var oldestLost time.Duration
			for _, a := range all {
				if !got[a.orcid] {
					oldestLost = max(oldestLost, killedAt.Sub(a.at))
				}
			}
			t.Logf("the oldest event lost was acknowledged %s before the kill (monitor-interval + sync-interval: %s)", oldestLost.Round(time.Millisecond), promised)
			t.Logf("%d events acknowledged, %d more than %s before the kill; %d delivered after the restore (lost: %d, all acknowledged within the last %s)",
				len(all), len(must), window, delivered, len(all)-delivered, window)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events acknowledged more than %s before the kill were not delivered within 60s; hookd:\n%s\nlitestream:\n%s",
				missing, len(must), window, hookd2Log, lsLog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every event delivered after the restore had been acknowledged before the kill.
	mu.Lock()
	sent := map[string]bool{}
	for _, a := range all {
		sent[a.orcid] = true
	}
	for id := range got {
		is.True(sent[id]) // nothing invented
	}
	mu.Unlock()
	fi, err := os.Stat(db)
	is.NoErr(err)
	t.Logf("litestream restore of a %d-byte database took %s", fi.Size(), restoreTook.Round(time.Millisecond))
	hookd2.stop(t)

	// One full copy in all: the first one. Litestream's restart did not need another.
	snapshots := 0
	for _, line := range strings.Split(lsLog.String(), "\n") {
		if strings.Contains(line, "msg=sync ") && strings.Contains(line, "snap=true") {
			snapshots++
			t.Logf("litestream: %s", line)
		}
	}
	is.Equal(snapshots, 1) // only the initial snapshot
}

// yamlDuration reads "key: 1s" from a YAML text (the first such line).
func yamlDuration(tb testing.TB, text, key string) time.Duration {
	tb.Helper()
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				tb.Fatalf("%s: %v", key, err)
			}
			return d
		}
	}
	tb.Fatalf("no %s in the Litestream configuration", key)
	return 0
}

// checkIntegrity runs SQLite's integrity_check on a database file.
func checkIntegrity(tb testing.TB, path string) {
	tb.Helper()
	is := is.New(tb)
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	is.NoErr(err)
	defer db.Close()
	var ok string
	is.NoErr(db.QueryRow("PRAGMA integrity_check").Scan(&ok))
	is.Equal(ok, "ok") // the restored database is sound
}

// TestLitestreamUnitRestoresAMissingDatabase runs the shipped litestream.service's
// ExecStartPre, as systemd would before replicating (and hookd's drop-in before
// hookd starts: the same command): a database that is missing is restored from
// the replica, the old machine's clients with it; one that exists is left alone. The unit is also
// PartOf hookd.service, so a restore of a backup under a stopped hookd does not
// happen beside a running Litestream.
func TestLitestreamUnitRestoresAMissingDatabase(t *testing.T) {
	is := is.New(t)
	unit, err := os.ReadFile("packaging/litestream/litestream.service")
	is.NoErr(err)
	dropIn, err := os.ReadFile("packaging/litestream/hookd-litestream.conf")
	is.NoErr(err)
	var pre, hookdPre []string
	partOf := false
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStartPre="); ok {
			pre = strings.Fields(v)
		}
		partOf = partOf || line == "PartOf=hookd.service"
	}
	for _, line := range strings.Split(string(dropIn), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStartPre="); ok {
			hookdPre = strings.Fields(v)
		}
	}
	is.True(partOf)         // stopped with hookd
	is.True(len(pre) > 2)   // a restore before replicating
	is.Equal(hookdPre, pre) // and the same before hookd starts, whatever became of Litestream's start
	for _, line := range strings.Split(string(unit), "\n") {
		if l := strings.TrimPrefix(line, "#"); strings.HasPrefix(l, "EnvironmentFile=") {
			is.True(strings.Contains(string(dropIn), line)) // the same replica credentials for both restores
		}
	}
	litestream := buildLitestream(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hookd.db")
	example, err := os.ReadFile("packaging/litestream/litestream.yml")
	is.NoErr(err)
	lsConfig := filepath.Join(dir, "litestream.yml")
	body := strings.ReplaceAll(string(example), "/var/lib/hookd/hookd.db", db)
	body = strings.ReplaceAll(body, "/var/backups/hookd/litestream", filepath.Join(dir, "replica"))
	is.NoErr(os.WriteFile(lsConfig, []byte(body), 0o600))
	args := make([]string, 0, len(pre)-1)
	for _, a := range pre[1:] { // the unit's arguments, its paths pointed here
		args = append(args, strings.NewReplacer("/etc/hookd/litestream.yml", lsConfig, "/var/lib/hookd/hookd.db", db).Replace(a))
	}
	is.Equal(filepath.Base(pre[0]), "litestream")
	restore := func() {
		t.Helper()
		if out, err := exec.Command(litestream, args...).CombinedOutput(); err != nil {
			t.Fatalf("litestream %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	restore() // no replica yet: nothing to do, and no error

	cfg := filepath.Join(dir, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = "+strconv.Quote(db)+
		"\ncheckpoints = \"external\"\n[log]\nformat = \"json\"\n"), 0o600))
	_, err = runCmd(t, "init", "-config", cfg)
	is.NoErr(err)
	_, err = runCmd(t, "client", "add", "-config", cfg, "-name", "precious")
	is.NoErr(err)
	var lsLog safeBuffer
	ls := startProgram(t, &lsLog, litestream, "replicate", "-config", lsConfig)
	waitFile(t, filepath.Join(dir, "replica"), "the replica", lsLog.String)
	time.Sleep(3 * time.Second) // a few sync intervals
	ls.stop(t)                  // a clean stop ships the rest

	restore() // the database exists: left alone
	list, err := runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err)
	is.True(strings.Contains(list, "precious"))

	for _, f := range []string{db, db + "-wal", db + "-shm", filepath.Join(dir, ".hookd.db-litestream")} {
		is.NoErr(os.RemoveAll(f)) // the disk is lost
	}
	restore()
	list, err = runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err) // restored, and it opens with its key
	is.True(strings.Contains(list, "precious"))
}
