//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/secret"
)

// TestCommandLineStoreFault: a command that cannot open the database says so,
// naming the file, instead of SQLite's bare code ("cannot open the database file").
func TestCommandLineStoreFault(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hookd.toml")
	// The database path is a folder: SQLite cannot open it as a file.
	is.NoErr(os.Mkdir(filepath.Join(dir, "db"), 0o700))
	is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = \"db\"\n"), 0o600))
	_, err := secret.LoadKeyFile(filepath.Join(dir, "db.key"), true)
	is.NoErr(err) // the key is there: only the database cannot be opened
	_, err = runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.True(err != nil)                                              // refused
	is.True(strings.Contains(err.Error(), "is not a file"))          // saying what is wrong
	is.True(strings.Contains(err.Error(), filepath.Join(dir, "db"))) // and where
}

// postJSON posts body with a bearer token and returns the status, a header and the body.
func postJSON(tb testing.TB, u, tok, body string) (int, http.Header, []byte) {
	tb.Helper()
	is := is.New(tb)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	is.NoErr(err) // make request
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := noRedirects.Do(req)
	is.NoErr(err) // POST
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	is.NoErr(err) // read the answer
	return res.StatusCode, res.Header, b
}

// TestDiskFullOnTmpfs: hookd serve on a file system that fills up for real (a
// 2 MiB tmpfs, filled by a ballast file to a few hundred KiB once hookd is set up):
// intake answers 503 with Retry-After and says the disk is full, the
// command line says so too, /readyz names it, nothing is acknowledged that was not
// stored, and once space is freed hookd takes and delivers events again without a
// restart. It mounts a file system, so it runs as root in CI only.
func TestDiskFullOnTmpfs(t *testing.T) {
	dir, mnt := smallTmpfs(t)
	is := is.New(t)

	var received atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	cfg := smallConfig(t, dir, mnt)

	_, err := runCmd(t, "init", "-config", cfg)
	is.NoErr(err) // makes the database, on the small file system
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "lab", "-scopes", "/webhook,/notify", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c))
	d := startDaemon(t, cfg)
	res, err := noRedirects.PostForm(d.url+"/oauth/token", url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
		"scope": {"/webhook /notify"}, "grant_type": {"client_credentials"}})
	is.NoErr(err) // token
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	is.NoErr(json.NewDecoder(res.Body).Decode(&tr))
	res.Body.Close()
	tok := tr.AccessToken
	res = put(t, d.url, "/0000-0002-7253-3645/webhook/"+httpapi.EscapeSegment(recv.URL+"/cb"), tok)
	is.Equal(res.StatusCode, http.StatusCreated) // registered

	// The ballast takes all but 256 KiB of what is left (what the set-up needs
	// grows with the schema, so it is measured, not assumed), and will be freed.
	var fs syscall.Statfs_t
	is.NoErr(syscall.Statfs(mnt, &fs))
	free := int64(fs.Bavail) * int64(fs.Bsize)
	is.True(free > 512<<10) // room for the ballast and the events
	ballast := filepath.Join(mnt, "ballast")
	is.NoErr(os.WriteFile(ballast, make([]byte, free-256<<10), 0o600))

	event := func(i int) (int, http.Header, []byte) {
		return postJSON(t, d.url+"/api/notifications/v1/events", tok,
			fmt.Sprintf(`{"orcid":"0000-0002-7253-3645","id":"ev-%06d-%s"}`, i, strings.Repeat("z", 150)))
	}
	acked, i := 0, 0
	var status int
	var header http.Header
	var body []byte
	for ; i < 20000; i++ {
		if status, header, body = event(i); status != http.StatusAccepted {
			break
		}
		acked++
	}
	t.Logf("%d events acknowledged before the disk was full", acked)
	is.Equal(status, http.StatusServiceUnavailable)                             // refused once full
	is.Equal(header.Get("Retry-After"), "10")                                   // with when to try again
	is.True(strings.Contains(string(body), "the database or its disk is full")) // saying why

	// The command line, on the same full disk. Whatever room is left is taken first
	// (filler), since a checkpoint may have let SQLite start the WAL over, and a
	// commit then finds room in the WAL's old frames: each that does is
	// acknowledged, and counted, until the WAL must grow and cannot.
	filler := filepath.Join(mnt, "filler")
	var cliErr error
	cliDeadline := time.Now().Add(60 * time.Second)
	for n := 0; n < 2000 && time.Now().Before(cliDeadline); n++ {
		fillUp(t, filler)
		if _, cliErr = runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645"); cliErr != nil {
			break
		}
		acked++
	}
	t.Logf("%d events acknowledged in all before the command line was refused", acked)
	is.True(cliErr != nil)                                                        // refused
	is.True(strings.Contains(cliErr.Error(), "the database or its disk is full")) // saying why

	ready, err := noRedirects.Get(d.url + "/readyz")
	is.NoErr(err) // readyz
	rb, _ := io.ReadAll(ready.Body)
	ready.Body.Close()
	is.Equal(ready.StatusCode, http.StatusServiceUnavailable)                 // not ready
	is.True(strings.Contains(string(rb), "the database or its disk is full")) // naming the cause

	is.NoErr(os.Remove(ballast)) // space is freed
	is.NoErr(os.Remove(filler))
	deadline := time.Now().Add(30 * time.Second)
	for {
		i++
		if status, _, _ = event(i); status == http.StatusAccepted {
			acked++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event taken within 30s of freeing space; daemon log:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		r, err := noRedirects.Get(d.url + "/readyz")
		is.NoErr(err)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 30s of freeing space; daemon log:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rows []struct {
		State  string `json:"state"`
		Events int    `json:"events"`
	}
	for {
		out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-json", "-limit", "100000")
		is.NoErr(err) // deliveries list
		rows = nil
		is.NoErr(json.Unmarshal([]byte(out), &rows))
		pending := 0
		for _, r := range rows {
			if r.State != "delivered" {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries not delivered within 30s of freeing space; daemon log:\n%s", pending, d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stored := 0
	for _, r := range rows {
		stored += r.Events
	}
	is.Equal(stored, acked)       // every acknowledged event was stored, and delivered
	is.True(received.Load() >= 2) // calls reached the receiver after the disk was full
	is.NoErr(d.stop())            // a clean stop
}

// fillUp appends to path until the file system has no room left.
func fillUp(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("filler: %v", err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for range 1 << 10 { // 4 MiB at most: more than the whole file system
		if _, err := f.Write(chunk); err != nil {
			return // full
		}
	}
	tb.Fatalf("filler: %s took 4 MiB without filling the file system", path)
}

// smallConfig writes dir/hookd.toml, for a daemon on a free loopback port with
// fast delivery and its database in mnt, and returns its path.
func smallConfig(t *testing.T, dir, mnt string) string {
	t.Helper()
	cfg := filepath.Join(dir, "hookd.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = %q\n[log]\nformat = \"json\"\n%s",
		filepath.Join(mnt, "hookd.db"), fastDelivery)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// smallTmpfs mounts a 2 MiB tmpfs at dir/small, unmounted when the test ends (after
// a daemon it runs has stopped), and returns both. It needs root, so it runs with
// CI=true only.
func smallTmpfs(t *testing.T) (dir, mnt string) {
	t.Helper()
	if os.Getenv("CI") != "true" || os.Geteuid() != 0 {
		t.Skip("mounts a 2 MiB tmpfs: runs as root with CI=true only")
	}
	dir = t.TempDir()
	mnt = filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		// A container may refuse mounts even to root. The same behaviour is shown on
		// every machine with a database capped by max_page_count (TestDiskFull).
		t.Skipf("cannot mount a tmpfs here (%v: %s): the full disk is shown by TestDiskFull instead", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return dir, mnt
}

// TestStartOnFullDiskSaysSo: a database stopped cleanly (its -wal and -shm files
// removed) on a disk that has filled up since cannot be opened, by serve or by a
// command: the error says the disk is full, not that the disk failed.
func TestStartOnFullDiskSaysSo(t *testing.T) {
	dir, mnt := smallTmpfs(t)
	is := is.New(t)
	cfg := smallConfig(t, dir, mnt)
	_, err := runCmd(t, "init", "-config", cfg)
	is.NoErr(err)
	d := startDaemon(t, cfg)
	is.NoErr(d.stop())                       // a clean stop
	fillUp(t, filepath.Join(mnt, "ballast")) // then the disk fills up
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr safeBuffer
	err = run(ctx, []string{"hookd", "serve", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "the disk that holds the database is full")) // the cause
	is.True(strings.Contains(err.Error(), "free disk space"))                          // and what to do
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.True(err != nil && strings.Contains(err.Error(), "the disk that holds the database is full")) // a command says the same
}

// TestReadOnlyDatabaseFolderNamesReadWritePaths: a database on a file system that
// is read-only to hookd, as a folder outside /var/lib/hookd is to hookd.service
// (ProtectSystem=strict), is refused by check-config (the unit's ExecStartPre),
// serve and a command with the ReadWritePaths= line that makes its folder
// writable to the service, not "read-only file system" alone (nor serve's advice
// to run hookd as the file's owner, who it runs as); and so is a database yet to
// be made in a folder there.
func TestReadOnlyDatabaseFolderNamesReadWritePaths(t *testing.T) {
	dir, mnt := smallTmpfs(t)
	is := is.New(t)
	cfg := smallConfig(t, dir, mnt)
	_, err := runCmd(t, "init", "-config", cfg)
	is.NoErr(err)
	fresh := filepath.Join(dir, "fresh.toml") // a database yet to be made on that disk
	is.NoErr(os.WriteFile(fresh, []byte(fmt.Sprintf("[store]\npath = %q\n", filepath.Join(mnt, "data", "hookd.db"))), 0o600))
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", mnt, err, out)
	}
	says := func(err error, folder string) {
		t.Helper()
		is := is.New(t)
		is.True(err != nil)                                                                 // refused
		is.True(strings.Contains(err.Error(), "read-only file system"))                     // the cause
		is.True(strings.Contains(err.Error(), "ProtectSystem=strict"))                      // where it comes from under systemd
		is.True(strings.Contains(err.Error(), "ReadWritePaths="+folder+" under [Service]")) // and what to add
		is.True(!strings.Contains(err.Error(), "chmod u+w"))                                // not a permission to give
	}
	_, err = runCmd(t, "check-config", "-config", cfg)
	says(err, mnt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr safeBuffer
	err = run(ctx, []string{"hookd", "serve", "-config", cfg}, noenv, strings.NewReader(""), &stdout, &stderr)
	says(err, mnt)
	_, err = runCmd(t, "client", "list", "-config", cfg)
	says(err, mnt)
	_, err = runCmd(t, "check-config", "-config", fresh)
	says(err, filepath.Join(mnt, "data"))
}

// TestReadyzOnIdleFullDisk: a disk that fills up while hookd writes nothing (no
// event, no delivery) makes /readyz answer 503 naming it at once, before a write
// meets the full disk; once space is freed, /readyz answers 200 again.
func TestReadyzOnIdleFullDisk(t *testing.T) {
	dir, mnt := smallTmpfs(t)
	is := is.New(t)
	cfg := smallConfig(t, dir, mnt)
	_, err := runCmd(t, "init", "-config", cfg)
	is.NoErr(err) // makes the database, on the small file system
	d := startDaemon(t, cfg)
	readyz := func() (int, string) {
		res, err := noRedirects.Get(d.url + "/readyz")
		is.NoErr(err) // readyz
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b)
	}
	status, _ := readyz()
	is.Equal(status, http.StatusOK) // ready

	ballast := filepath.Join(mnt, "ballast")
	fillUp(t, ballast) // the disk fills up, while hookd is idle
	status, body := readyz()
	is.Equal(status, http.StatusServiceUnavailable)                     // not ready
	is.True(strings.Contains(body, "the database or its disk is full")) // naming the cause

	is.NoErr(os.Remove(ballast)) // space is freed
	deadline := time.Now().Add(30 * time.Second)
	for status, _ = readyz(); status != http.StatusOK; status, _ = readyz() {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 30s of freeing space; daemon log:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	is.NoErr(d.stop()) // a clean stop
}

// TestBackupToFullDiskSaysWhatIsFree: the bytes free that a backup's full disk
// is named with are what the disk has for a copy, as df shows them after: not
// what was left beside the part of the copy written before it filled the disk
// ("0 bytes free" of a disk that had 2 MiB).
func TestBackupToFullDiskSaysWhatIsFree(t *testing.T) {
	_, mnt := smallTmpfs(t) // 2 MiB, empty
	is := is.New(t)
	cfg := testConfig(t, "")
	fillDatabase(t, cfg, 4)

	_, err := runCmd(t, "backup", filepath.Join(mnt, "copy.db"), "-config", cfg)
	is.True(err != nil) // the copy does not fit
	m := regexp.MustCompile(`is full: (\d+) bytes free`).FindStringSubmatch(err.Error())
	is.True(m != nil) // names the disk, with what is free
	said, perr := strconv.ParseUint(m[1], 10, 64)
	is.NoErr(perr)
	var fs syscall.Statfs_t
	is.NoErr(syscall.Statfs(mnt, &fs))
	free := uint64(fs.Bavail) * uint64(fs.Bsize)
	if said+64<<10 < free || said > free {
		t.Errorf("said %d bytes free; the disk has %d", said, free)
	}
}

// TestBackupToFullOrReadOnlyDisk: a backup into a folder whose disk is too small
// for the copy says that disk is full, naming the folder and what is free, not
// "database or disk is full" of a temporary file, which read as the database's own
// disk; into a read-only one, it names the folder it cannot write in. Neither
// leaves a file there, and the database goes on as it was.
func TestBackupToFullOrReadOnlyDisk(t *testing.T) {
	_, mnt := smallTmpfs(t) // 2 MiB
	is := is.New(t)
	cfg := testConfig(t, "")
	fillDatabase(t, cfg, 4)
	dest := filepath.Join(mnt, "copy.db")

	_, err := runCmd(t, "backup", dest, "-config", cfg)
	is.True(err != nil) // the copy does not fit
	msg := err.Error()
	is.True(strings.Contains(msg, "backup: the disk that holds "+mnt+" is full: ")) // names the backup's disk
	is.True(strings.Contains(msg, "or back up to a folder on another disk"))        // and what to do
	is.True(!strings.Contains(msg, ".tmp-"))                                        // not the temporary file
	entries, err := os.ReadDir(mnt)
	is.NoErr(err)
	is.Equal(len(entries), 0) // nothing left there

	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", mnt, err, out)
	}
	_, err = runCmd(t, "backup", dest, "-config", cfg)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "backup: cannot write a file in the folder "+mnt+": read-only file system; nothing was written")) // names the folder
	_, err = runCmd(t, "client", "list", "-config", cfg)
	is.NoErr(err) // the database as it was
}
