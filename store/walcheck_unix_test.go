//go:build unix

package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestHelperShmLocked is not a test: run by shmLocked in a process of its own, it
// says whether a process holds a lock on the byte SQLite locks in the -shm index
// of every database it has open (fcntl locks are the process's: this process's
// own are not seen from within it).
func TestHelperShmLocked(t *testing.T) {
	path := os.Getenv("HOOKD_SHM_LOCKED")
	if path == "" {
		t.Skip("run by shmLocked")
	}
	f, err := os.Open(path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Start: 128, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("locked=%v\n", lk.Type != syscall.F_UNLCK)
}

// shmLocked reports whether another process sees that this one has the database
// at path open (SQLite's lock on its -shm index).
func shmLocked(t *testing.T, path string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperShmLocked$", "-test.v")
	cmd.Env = append(os.Environ(), "HOOKD_SHM_LOCKED="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return strings.Contains(string(out), "locked=true")
}

// TestOpenKeepsThisProcessLocks: a second store of a database this process has
// open (a command run in the daemon's process, as the tests run them) leaves the
// first one's SQLite locks alone: the WAL check opened the -shm and the file and
// closed them, and closing a file drops every fcntl lock the process holds on
// it, so another process then took the database for one nobody had open, and
// rebuilt its index under the daemon ("database disk image is malformed").
func TestOpenKeepsThisProcessLocks(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t)})
	is.NoErr(err) // the daemon's
	defer st.Close()
	_, err = st.CreateClient(ctx, store.NewClient{Name: "w", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	is.True(shmLocked(t, path)) // seen open from another process

	second, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t), MustExist: true, SkipKeyCheck: true})
	is.NoErr(err) // a command's
	is.NoErr(second.Close())
	_, err = store.FileSchemaVersion(ctx, path)
	is.NoErr(err)               // check-config's
	is.True(shmLocked(t, path)) // still
}

// TestOpenKeepsThisProcessLocksOfNewFileBehindLink: the same for a database the
// store made, named through a folder that is a symbolic link: the file was noted
// by the name it was opened with, which the WAL check, resolving the link once
// the file was there, no longer matched, and it closed the -shm it opened.
func TestOpenKeepsThisProcessLocksOfNewFileBehindLink(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	link := filepath.Join(t.TempDir(), "link")
	is.NoErr(os.Symlink(t.TempDir(), link))
	path := filepath.Join(link, "hookd.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: newBox(t)})
	is.NoErr(err) // the daemon's, making the database
	defer st.Close()
	_, err = st.CreateClient(ctx, store.NewClient{Name: "w", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	is.True(shmLocked(t, path)) // seen open from another process

	_, err = store.FileSchemaVersion(ctx, path)
	is.NoErr(err)               // check-config's
	is.True(shmLocked(t, path)) // still
}
