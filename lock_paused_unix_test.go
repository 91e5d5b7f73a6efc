//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestCommandsSayAPausedDaemonSendsNothing: hookd notify and hookd deliveries
// replay beside a daemon started with delivery.paused say that it sends nothing
// until it is restarted without it, as its lock file says: they said "a running
// hookd sends it on its next tick", which it never did. A lock file an older
// hookd's daemon wrote, which says nothing of pausing, still reads as a daemon
// that sends.
func TestCommandsSayAPausedDaemonSendsNothing(t *testing.T) {
	is := is.New(t)
	cfg := testConfig(t, "[delivery]\npaused = true\ncoalesce_window = \"0s\"\nallow_private_targets = true\n")
	_, err := runCmd(t, "client", "add", "-config", cfg, "-name", "app", "-id", "app", "-secret", "app-secret")
	is.NoErr(err)
	st := openTestStore(t, cfg)
	reg, _, err := st.PutOrcidWebhook(context.Background(), "app", "0000-0002-7253-3645", "http://127.0.0.1:1/cb")
	is.NoErr(err)
	st.Close()
	// dead makes the waiting delivery dead, and so one to replay: its webhook
	// deactivated and activated again.
	dead := func() {
		t.Helper()
		_, err := runCmd(t, "webhooks", "deactivate", "-config", cfg, reg.UID)
		is.NoErr(err)
		_, err = runCmd(t, "webhooks", "activate", "-config", cfg, reg.UID)
		is.NoErr(err)
	}
	const paused = "the hookd running on this database has delivery paused (delivery.paused): it sends nothing, "
	d := startDaemon(t, cfg)
	out, err := runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.Equal(out, "recorded 1 event: 1 delivery queued or merged; "+paused+"this delivery included, until it is restarted without it\n")
	dead()
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "1h")
	is.NoErr(err)
	is.Equal(out, "1 delivery due again now; "+paused+"this delivery included, until it is restarted without it\n") // so for a replay
	is.True(!strings.Contains(out, "next tick"))
	is.NoErr(d.stop())
	out, err = runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.True(strings.HasSuffix(out, "; no hookd runs on this database to send it: start hookd serve (or hookd dev) on it\n")) // stopped: none runs

	// An older hookd's daemon: its lock file has no "paused".
	db := filepath.Join(filepath.Dir(cfg), "hookd.db")
	lock, _, err := acquireServeLock(db, "127.0.0.1:8080", false)
	is.NoErr(err)
	defer lock.release()
	is.NoErr(os.WriteFile(lockPath(db), []byte(`{"pid":`+strconv.Itoa(os.Getpid())+`,"listen":"127.0.0.1:8080","started":"2026-01-02T03:04:05Z","previous_mark":"x"}`+"\n"), 0o600))
	out, err = runCmd(t, "notify", "-config", cfg, "0000-0002-7253-3645")
	is.NoErr(err)
	is.True(strings.HasSuffix(out, "; a running hookd sends it on its next tick\n")) // read as before
	dead()
	out, err = runCmd(t, "deliveries", "replay", "-config", cfg, "-since", "1h")
	is.NoErr(err)
	is.Equal(out, "1 delivery due again now; a running hookd sends it on its next tick\n")
}
