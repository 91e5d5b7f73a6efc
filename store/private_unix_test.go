//go:build unix

package store_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// TestNewDatabaseIsPrivate: a new database and its -wal and -shm are readable by
// their owner only, as the key and a backup are, whatever the umask lets others
// read; an existing file keeps the mode it has.
func TestNewDatabaseIsPrivate(t *testing.T) {
	is := is.New(t)
	old := syscall.Umask(0o022) // a usual shell's
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "hookd.db")
	st := openAt(t, path, newBox(t))
	_, err := st.CreateClient(context.Background(), store.NewClient{Name: "c", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err) // a write: the -wal and -shm exist
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		is.NoErr(err)
		is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // the owner's only
	}
	st.Close()

	shared := filepath.Join(t.TempDir(), "shared.db")
	is.NoErr(os.WriteFile(shared, nil, 0o640))
	is.NoErr(os.Chmod(shared, 0o640))
	openAt(t, shared, newBox(t)).Close()
	fi, err := os.Stat(shared)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o640)) // an existing file as it was
}
