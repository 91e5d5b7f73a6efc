package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestCommandLineWritesUnderIntake: while the daemon takes events over HTTP as fast
// as 16 senders can post them, every "hookd notify" on the same database succeeds,
// without waiting out SQLite's busy timeout.
func TestCommandLineWritesUnderIntake(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the daemon for a few seconds: skipped with -short")
	}
	is := is.New(t)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	cfg := testConfig(t, fastDelivery)
	d := startDaemon(t, cfg)
	out, err := runCmd(t, "client", "add", "-config", cfg, "-name", "load", "-scopes", "/notify,/webhook", "-json")
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c)) // client add -json
	tok := scopedToken(t, d.url, c.ClientID, c.ClientSecret, "/webhook /notify")
	// A webhook for every record: each event is a delivery, so the dispatch loop
	// writes too.
	status, _ := adminCall(t, http.MethodPost, d.url+"/api/notifications/v1/webhooks", tok, `{"targetURL":"`+recv.URL+`/all"}`)
	is.Equal(status, http.StatusOK) // webhook for every record

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"orcid":%q}`, nthOrcid(w*100000+i))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.url+"/api/notifications/v1/events", bytes.NewBufferString(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				sent.Add(1)
			}
		}()
	}

	bin := hookdBinary(t)
	var took []time.Duration
	for i := range 30 {
		start := time.Now()
		out, err := exec.Command(bin, "notify", "-config", cfg, nthOrcid(900000+i)).CombinedOutput()
		took = append(took, time.Since(start))
		if err != nil {
			t.Errorf("hookd notify under load: %v\n%s", err, out)
		}
	}
	cancel()
	wg.Wait()
	slices.Sort(took)
	t.Logf("%d events posted meanwhile; hookd notify p50 %v, max %v", sent.Load(), took[len(took)/2], took[len(took)-1])
	is.True(sent.Load() > 0) // the daemon was under load
}

// TestNotifyLockedSaysWhatToDo: hookd notify on a database whose write lock is
// held past the busy timeout says, in its own name, that it recorded nothing and
// what to do: run it again, or, beside a running daemon (named), send the events
// to that daemon over HTTP. It named the store's step ("intake: the database is
// locked …") and no way on.
func TestNotifyLockedSaysWhatToDo(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's busy timeout (10 s): skipped with -short")
	}
	lock := func(t *testing.T, cfg string) {
		t.Helper()
		is := is.New(t)
		c, err := LoadConfig(cfg)
		is.NoErr(err)
		holder, err := sql.Open("sqlite", "file:"+c.Store.Path+"?_txlock=immediate")
		is.NoErr(err)
		tx, err := holder.BeginTx(context.Background(), nil)
		is.NoErr(err) // another process holds the write lock
		t.Cleanup(func() {
			tx.Rollback()
			holder.Close()
		})
	}
	beside := testConfig(t, "")
	d := startDaemon(t, beside)
	alone := testConfig(t, "")
	lock(t, beside)
	lock(t, alone)
	errs := make(chan error, 2)
	for _, cfg := range []string{beside, alone} {
		go func() {
			_, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
			errs <- err
		}()
	}
	for range 2 {
		err := <-errs
		if err == nil {
			t.Fatal("hookd notify on a locked database succeeded")
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "notify: the database is locked by another process, for longer than the busy timeout; nothing was recorded") ||
			strings.Contains(msg, "intake") || exitStatus(err) != 1 {
			t.Errorf("hookd notify on a locked database: %q (status %d), want it in notify's name, saying that nothing was recorded", msg, exitStatus(err))
		}
		if strings.Contains(msg, "A hookd daemon (") {
			// Beside the daemon: named, with its events route.
			if !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, "POST "+d.url+"/api/notifications/v1/events") ||
				!strings.Contains(msg, "run hookd notify again") {
				t.Errorf("hookd notify beside a daemon: %q, want the daemon named, and its events route", msg)
			}
		} else if !strings.Contains(msg, "no hookd daemon runs on it") || !strings.Contains(msg, "run hookd notify again") {
			t.Errorf("hookd notify with no daemon: %q, want that none runs, and to run it again", msg)
		}
	}
}

// TestWritesLockedNameTheCommand: deliveries purge, inbox clear and org member
// import, on a database locked past the busy timeout, say so in the command's
// name and what they left undone, as every other command does: they named the
// store's step ("purge: …", "inbox clear: clear inbox: …", "members.csv: import
// members: …").
func TestWritesLockedNameTheCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's busy timeout (10 s): skipped with -short")
	}
	is := is.New(t)
	cfg := testConfig(t, "")
	_, err := runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
	is.NoErr(err)
	file := filepath.Join(t.TempDir(), "members.csv")
	is.NoErr(os.WriteFile(file, []byte("orcid\n0000-0002-7253-3645\n"), 0o600))
	c, err := LoadConfig(cfg)
	is.NoErr(err)
	holder, err := sql.Open("sqlite", "file:"+c.Store.Path+"?_txlock=immediate")
	is.NoErr(err)
	tx, err := holder.BeginTx(context.Background(), nil)
	is.NoErr(err)      // another process holds the write lock
	t.Cleanup(func() { // after the subtests, which run in parallel
		tx.Rollback()
		holder.Close()
	})
	const locked = "the database is locked by another process, for longer than the busy timeout"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"deliveries", "purge", "-before", "1s"}, "deliveries purge: " + locked + "; nothing was purged"},
		{[]string{"inbox", "clear", "demo"}, "inbox clear: " + locked + "; nothing was cleared"},
		{[]string{"org", "member", "import", "-org", "Uni", file}, "org member import: " + file + ": " + locked + "; nothing was imported"},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			t.Parallel()
			_, err := runCmd(t, append(tt.args, "-config", cfg)...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("%v, want %q", err, tt.want)
			}
		})
	}
}
