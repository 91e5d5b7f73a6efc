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

// TestCheckConfigFolderTakesNoFile: hookd check-config, and hookd init, with
// store.path in a folder of the kernel's file systems (/proc, /sys), or in a
// folder to make there, say what hookd serve says of it: the database's folder
// takes no file, and what to do. check-config said "ok (database /proc/x.db:
// hookd serve or hookd init will create it)", which neither can, and init that
// the file "cannot be read as a database". access(2) refuses these folders to
// any user but root, so the test runs as root (as CI does).
func TestCheckConfigFolderTakesNoFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: access(2) refuses /proc and /sys to other users, which check-config told already")
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("no /proc")
	}
	for _, c := range []struct{ db, want string }{
		{"/proc/hookd-test.db", "the database's folder /proc is not writable"},
		{"/proc/hookd-test/x.db", "the database's folder /proc/hookd-test does not exist and cannot be made"},
		{"/sys/hookd-test.db", "the database's folder /sys is not writable"},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "hookd.toml")
		if err := os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \""+c.db+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []struct{ name, prefix string }{
			{"check-config", "config " + cfg + ": store.path: "},
			{"init", "init: store.path: "},
			{"serve", "store.path: "},
		} {
			t.Run(cmd.name+" "+c.db, func(t *testing.T) {
				is := is.New(t)
				stdout, _, err := runEnv(t, nil, cmd.name, "-config", cfg)
				is.True(err != nil) // refused
				msg := err.Error()
				is.True(strings.HasPrefix(msg, cmd.prefix+c.want))                                            // the folder, as serve says it
				is.True(strings.Contains(msg, "which takes no file"))                                         // why
				is.True(strings.HasSuffix(msg, ": set store.path to a file in a folder this user may write")) // what to do
				is.True(!strings.Contains(stdout, "will create it"))                                          // not ok
				is.Equal(files(t, dir), []string{"hookd.toml"})                                               // nothing made
			})
		}
	}
}
