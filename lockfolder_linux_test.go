package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestDatabaseFolderTakesNoFile: a database in a folder that takes no file,
// though access(2) lets root write it (/proc, /sys), or under a folder that
// cannot be made there, is refused as a folder that is not writable, with what to
// do in the words of the setting given: it was told as the lock file hookd could
// not open ("lock /proc/x.db.lock: open …"), or as a lock file of another user's
// that is not there.
func TestDatabaseFolderTakesNoFile(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("no /proc")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hookd.toml")
	if err := os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"/proc/hookd-test.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want, todo string
		args             []string
	}{
		{"dev -db", "dev: -db /proc/hookd-test.db: the database's folder /proc ", "give -db a file in a folder you may write",
			[]string{"dev", "-listen", "127.0.0.1:0", "-db", "/proc/hookd-test.db"}},
		{"dev -db, a folder to make", "dev: -db /proc/hookd-test/x.db: the database's folder /proc", "give -db a file in a folder you may write",
			[]string{"dev", "-listen", "127.0.0.1:0", "-db", "/proc/hookd-test/x.db"}},
		{"dev -db in /sys", "dev: -db /sys/hookd-test.db: the database's folder /sys ", "give -db a file in a folder you may write",
			[]string{"dev", "-listen", "127.0.0.1:0", "-db", "/sys/hookd-test.db"}},
		{"dev -config", "dev: store.path of -config " + cfg + ": the database's folder /proc ", "give -db FILE, or set [store] path in " + cfg,
			[]string{"dev", "-listen", "127.0.0.1:0", "-config", cfg}},
		{"serve", "store.path: the database's folder /proc ", "a folder this user may write", []string{"serve", "-config", cfg}},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			_, _, err := runEnv(t, nil, c.args...)
			is.True(err != nil) // refused
			msg := err.Error()
			is.True(strings.HasPrefix(msg, c.want))                    // naming the setting given, and the folder
			is.True(strings.Contains(msg, "not"))                      // which is not writable, or cannot be made
			is.True(strings.Contains(msg, c.todo))                     // and what to do
			is.True(!strings.HasPrefix(msg, "lock "))                  // not the lock file alone
			is.True(!strings.Contains(msg, "belongs to another user")) // of no one
			is.Equal(files(t, dir), []string{"hookd.toml"})            // nothing made
		})
	}
}
