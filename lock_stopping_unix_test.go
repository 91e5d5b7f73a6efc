//go:build unix

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestCommandsSayAStoppingDaemonMayNotSend: hookd notify run while the daemon's
// stop is under way (here it waits for a call in flight) does not say that the
// daemon sends the event on its next tick, which it may not have: it says that
// the daemon is stopping, and that what it does not send goes out at its next
// start, as its lock file tells. The next daemon's start clears that: a notify
// beside it says "next tick" again.
func TestCommandsSayAStoppingDaemonMayNotSend(t *testing.T) {
	is := is.New(t)
	called, release := make(chan struct{}, 1), make(chan struct{})
	rv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held" {
			called <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.Close)
	cfg := testConfig(t, "[delivery]\ncoalesce_window = \"0s\"\nallow_private_targets = true\n")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "app", "-id", "app", "-secret", "app-secret")
	is.NoErr(err)
	st := openTestStore(t, cfg)
	_, _, err = st.PutOrcidWebhook(context.Background(), "app", "0000-0002-7253-3645", rv.URL+"/held")
	is.NoErr(err)
	_, _, err = st.PutOrcidWebhook(context.Background(), "app", "0000-0001-5109-3700", rv.URL+"/other")
	is.NoErr(err)
	st.Close()

	d := startDaemon(t, cfg)
	out, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.True(strings.HasSuffix(out, "; a running hookd sends it on its next tick\n")) // it runs
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery was not sent within 10s")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }() // the stop waits for the call in flight
	db := filepath.Join(filepath.Dir(cfg), "hookd.db")
	deadline := time.Now().Add(10 * time.Second)
	for !daemonStopping(db) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the lock file did not say within 10s that the daemon stops")
		}
		time.Sleep(5 * time.Millisecond)
	}
	out, err = runCmd(t, "notify", "-config", cfg, "0000-0001-5109-3700")
	close(release)
	is.NoErr(err)
	is.Equal(out, "recorded 1 event: 1 delivery queued or merged; the hookd running on this database is stopping: "+
		"it may send it before it stops; what it does not send goes out once hookd serve (or hookd dev) is started on this database again\n")
	is.NoErr(<-stopped)

	startDaemon(t, cfg) // the next start: its lock file no longer says it stops
	out, err = runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.True(strings.HasSuffix(out, "; a running hookd sends it on its next tick\n"))
}

// TestStoppingMarkBesideTheMarksWrites: the stop's mark goes into the lock file
// from the stop (at the SIGTERM) while the daemon's own writes of what it saw of
// the database (a delivery id given, every 250 ms on a busy daemon) go on: the
// two never interleave, so the file stays one JSON object, with the database's
// mark (which the next start checks the database against) and the stop's. A
// write of the shorter content over the longer could leave its tail after it,
// and the next start read no mark at all (a "restored backup": new delivery ids
// and webhook-ids for everything waiting).
func TestStoppingMarkBesideTheMarksWrites(t *testing.T) {
	is := is.New(t)
	for i := range 200 {
		db := filepath.Join(t.TempDir(), "hookd.db")
		lock, _, err := acquireServeLock(db, "127.0.0.1:1", false)
		is.NoErr(err)
		h := lock.seen()
		h.Mark = "mark-" + strings.Repeat("x", i%7)
		is.NoErr(lock.keep(h, false))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for n := range 20 {
				h := lock.seen()
				h.Issued = int64(n)
				lock.keep(h, false)
			}
		}()
		is.NoErr(lock.stopping())
		<-done
		got, ok := holderOf(lockPath(db))
		is.True(ok)                                          // one JSON object
		is.Equal(got.Mark, "mark-"+strings.Repeat("x", i%7)) // the database's mark
		is.True(got.Stopping)                                // and the stop's
		lock.release()
	}
}
