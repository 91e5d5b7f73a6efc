//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestServeStartsBesideACommandsLook: a command asking whether a daemon runs on
// the database (daemonOn: inbox list, notify, org set…) holds the lock file shared
// for a moment; a daemon starting in that moment waits it out and starts, where it
// said the database was in use by another hookd daemon, though none ran. A daemon
// holding the lock is still refused.
func TestServeStartsBesideACommandsLook(t *testing.T) {
	is := is.New(t)
	db := filepath.Join(t.TempDir(), "hookd.db")
	is.NoErr(os.WriteFile(db, nil, 0o600))
	is.NoErr(os.WriteFile(lockPath(db), nil, 0o600))
	look, err := os.Open(lockPath(db)) // as daemonOn opens it
	is.NoErr(err)
	defer look.Close()
	is.NoErr(syscall.Flock(int(look.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)) // the command's look, under way
	done := time.AfterFunc(100*time.Millisecond, func() { syscall.Flock(int(look.Fd()), syscall.LOCK_UN) })
	defer done.Stop()
	lock, _, err := acquireServeLock(db, "127.0.0.1:1", false)
	is.NoErr(err) // started once the look ended
	defer lock.release()

	// A command's look now sees the daemon, and a second daemon is refused at once.
	name, held := daemonOn(db)
	is.True(held)
	is.True(strings.Contains(name, "listening on 127.0.0.1:1"))
	_, _, err = acquireServeLock(db, "127.0.0.1:2", false)
	is.True(err != nil && strings.Contains(err.Error(), "in use by another hookd daemon"))
}
