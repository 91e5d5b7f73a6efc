//go:build unix

package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestNoConfigFolderClosed: a command given no configuration file, run by a user
// who may not enter the working folder (as "sudo -u hookd hookd client list" from
// an administrator's home, sudo having left HOOKD_CONFIG behind), says that no
// configuration was given, that the built-in ./hookd.db is in a folder it may not
// enter, and to give -config (under sudo, that sudo does not pass HOOKD_CONFIG on);
// not to run hookd as the user the database belongs to, which it may well be
// already. It changes nothing. The command runs in a process of its own, in a
// folder closed to it: as root, as the user nobody (uid 65534), which setpriv
// becomes once in the folder; as any other user, after closing its own folder.
func TestNoConfigFolderClosed(t *testing.T) {
	is := is.New(t)
	bin := hookdBinary(t)
	dir := t.TempDir()
	closed := filepath.Join(dir, "home")
	is.NoErr(os.Mkdir(closed, 0o700))
	t.Cleanup(func() { os.Chmod(closed, 0o700) })
	var prefix []string
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			unavailable(t, "as root, needs setpriv (util-linux) to run hookd as another user")
		}
		// A copy of the binary that user may run, in a folder it may enter.
		open, err := os.MkdirTemp("", "hookd-nobody-")
		is.NoErr(err)
		t.Cleanup(func() { os.RemoveAll(open) })
		is.NoErr(os.Chmod(open, 0o755))
		copied := filepath.Join(open, "hookd")
		src, err := os.Open(bin)
		is.NoErr(err)
		defer src.Close()
		dst, err := os.OpenFile(copied, os.O_CREATE|os.O_WRONLY, 0o755)
		is.NoErr(err)
		_, err = io.Copy(dst, src)
		is.NoErr(err)
		is.NoErr(dst.Close())
		bin = copied
		prefix = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	}
	for _, tt := range []struct {
		name string
		args []string
		sudo bool
	}{
		{"client list under sudo", []string{"client", "list"}, true},
		{"notify", []string{"notify", "0000-0002-7253-3645"}, false},
		{"init under sudo", []string{"init"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			var cmd *exec.Cmd
			if prefix != nil {
				cmd = exec.Command(prefix[0], append(append(prefix[1:], bin), tt.args...)...)
				cmd.Dir = closed // root enters it; setpriv then becomes nobody, who may not
			} else {
				// The user enters its folder, closes it, and runs hookd there.
				cmd = exec.Command("sh", append([]string{"-c", `cd "$1" && chmod 000 . && shift && exec "$@"`, "sh", closed, bin}, tt.args...)...)
			}
			env := []string{"PATH=" + os.Getenv("PATH")} // no HOOKD_CONFIG
			if tt.sudo {
				env = append(env, "SUDO_USER=admin")
			}
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			os.Chmod(closed, 0o700)
			msg := string(out)
			is.True(err != nil) // refused
			t.Log(msg)
			is.True(strings.Contains(msg, "no -config given and HOOKD_CONFIG not set"))                       // what is missing
			is.True(strings.Contains(msg, "built-in default ./hookd.db, in the working folder, "+closed+",")) // where it looked
			is.True(strings.Contains(msg, "which this user may not enter"))                                   // and why it could not
			is.True(strings.Contains(msg, "-config FILE or HOOKD_CONFIG=FILE"))                               // what to do
			is.Equal(strings.Contains(msg, "sudo does not pass HOOKD_CONFIG on"), tt.sudo)                    // and under sudo, why the variable is not there
			is.True(!strings.Contains(msg, "run hookd as the user the database belongs to"))                  // not to change users
			entries, err := os.ReadDir(closed)
			is.NoErr(err)
			is.Equal(len(entries), 0) // nothing made
		})
	}
}

// TestNoDatabaseUnderSudo: a command given no configuration file that finds no
// database says, under sudo, that sudo does not pass HOOKD_CONFIG on (the shell's
// export does not reach "sudo -u hookd hookd …"), and only there.
func TestNoDatabaseUnderSudo(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, sudo := range []bool{true, false} {
		is := is.New(t)
		env := map[string]string{}
		if sudo {
			env["SUDO_USER"] = "admin"
		}
		_, _, err := runEnv(t, env, "client", "list")
		is.True(err != nil)                                                                 // no database
		is.True(strings.Contains(err.Error(), "no database at"))                            // says so
		is.Equal(strings.Contains(err.Error(), "sudo does not pass HOOKD_CONFIG on"), sudo) // and, under sudo, why HOOKD_CONFIG is not set
	}
}

// TestCheckConfigAsAnotherUser: check-config run by a user who may not write the
// database's folder, which belongs to another user (the service's /var/lib/hookd,
// checked by an administrator as themselves), names that user and says to run
// hookd as it, rather than only that the folder is not writable, which reads as a
// fault of the folder. It runs the built hookd as uid 1 on a folder of uid 65534,
// so only as root.
func TestCheckConfigAsAnotherUser(t *testing.T) {
	is := is.New(t)
	if os.Geteuid() != 0 {
		t.Skip("makes a folder of another user's: only as root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		unavailable(t, "needs setpriv (util-linux) to run hookd as another user")
	}
	open, err := os.MkdirTemp("", "hookd-other-")
	is.NoErr(err)
	t.Cleanup(func() { os.RemoveAll(open) })
	is.NoErr(os.Chmod(open, 0o755))
	bin := filepath.Join(open, "hookd")
	src, err := os.Open(hookdBinary(t))
	is.NoErr(err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	is.NoErr(err)
	_, err = io.Copy(dst, src)
	is.NoErr(err)
	is.NoErr(dst.Close())
	service := filepath.Join(open, "lib")
	is.NoErr(os.Mkdir(service, 0o755))
	is.NoErr(os.Chown(service, 65534, 65534)) // the service's folder
	cfg := filepath.Join(open, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = "+strconv.Quote(filepath.Join(service, "hookd.db"))+"\n"), 0o644))
	out, err := exec.Command(setpriv, "--reuid=1", "--regid=1", "--clear-groups", "--", bin, "check-config", "-config", cfg).CombinedOutput()
	msg := string(out)
	t.Log(msg)
	is.True(err != nil)                                                            // refused
	is.True(strings.Contains(msg, "the database's folder "+service+" belongs to")) // whose folder it is
	is.True(strings.Contains(msg, "is not writable by this user"))                 // what is wrong
	is.True(strings.Contains(msg, "run hookd as "))                                // and what to do
	entries, err := os.ReadDir(service)
	is.NoErr(err)
	is.Equal(len(entries), 0) // nothing made

	out, err = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin, "check-config", "-config", cfg).CombinedOutput()
	is.NoErr(err) // as the folder's user, the check passes
	is.True(strings.Contains(string(out), "ok"))

	// A user with no name (a container's, a removed account's) is named by its
	// number, and sudo is told it the way sudo takes one.
	is.NoErr(os.Chown(service, 54321, 54321))
	out, err = exec.Command(setpriv, "--reuid=1", "--regid=1", "--clear-groups", "--", bin, "check-config", "-config", cfg).CombinedOutput()
	msg = string(out)
	t.Log(msg)
	is.True(err != nil)                                                                      // refused
	is.True(strings.Contains(msg, "the database's folder "+service+" belongs to uid 54321")) // whose folder it is
	is.True(strings.Contains(msg, "(sudo -u '#54321' hookd …)"))                             // a command sudo takes
	is.True(!strings.Contains(msg, "sudo -u uid"))                                           // not one it refuses

	// A folder yet to be made in one this user may not write (config.example.toml's
	// /var/lib/hookd, tried before the package made it): what to do, both ways.
	missing := filepath.Join(open, "root-only", "hookd")
	is.NoErr(os.Mkdir(filepath.Dir(missing), 0o755))
	cfg2 := filepath.Join(open, "hookd2.toml")
	is.NoErr(os.WriteFile(cfg2, []byte("[store]\npath = "+strconv.Quote(filepath.Join(missing, "hookd.db"))+"\n"), 0o644))
	out, err = exec.Command(setpriv, "--reuid=1", "--regid=1", "--clear-groups", "--", bin, "check-config", "-config", cfg2).CombinedOutput()
	msg = string(out)
	t.Log(msg)
	is.True(err != nil)                                                                                   // refused
	is.True(strings.Contains(msg, "the database's folder "+missing+" does not exist and cannot be made")) // what is wrong
	is.True(strings.Contains(msg, "install -d -o USER -m 0700 "+missing))                                 // what to do as root
	is.True(strings.Contains(msg, "or set store.path to a file in a folder this user may write"))         // or as oneself
	_, err = os.Stat(missing)
	is.True(errors.Is(err, fs.ErrNotExist)) // nothing made
}

// TestDatabaseOfAnotherUser: a command or check-config run by a user who may not
// write an existing database that belongs to another user, in a folder open to
// them (a store.path of the service's in a folder others may read), names that
// user and says to run hookd as it, as for a database yet to be made in such a
// user's folder, rather than only that the file cannot be written, or to run it as
// a user "hookd" the database may not belong to. It changes nothing. It runs the
// built hookd as uid 1 on a database of uid 65534, so only as root.
func TestDatabaseOfAnotherUser(t *testing.T) {
	is := is.New(t)
	if os.Geteuid() != 0 {
		t.Skip("makes a database of another user's: only as root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		unavailable(t, "needs setpriv (util-linux) to run hookd as another user")
	}
	open, err := os.MkdirTemp("", "hookd-other-")
	is.NoErr(err)
	t.Cleanup(func() { os.RemoveAll(open) })
	is.NoErr(os.Chmod(open, 0o755))
	bin := filepath.Join(open, "hookd")
	src, err := os.Open(hookdBinary(t))
	is.NoErr(err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	is.NoErr(err)
	_, err = io.Copy(dst, src)
	is.NoErr(err)
	is.NoErr(dst.Close())
	service := filepath.Join(open, "lib")
	is.NoErr(os.Mkdir(service, 0o755)) // open to others
	db := filepath.Join(service, "hookd.db")
	cfg := filepath.Join(open, "hookd.toml")
	is.NoErr(os.WriteFile(cfg, []byte("[store]\npath = "+strconv.Quote(db)+"\n"), 0o644))
	out, err := exec.Command(bin, "init", "-config", cfg).CombinedOutput()
	is.NoErr(err)
	t.Log(string(out))
	entries, err := os.ReadDir(service)
	is.NoErr(err)
	var made []string
	for _, e := range entries {
		made = append(made, e.Name())
		is.NoErr(os.Chown(filepath.Join(service, e.Name()), 65534, 65534))
	}
	is.NoErr(os.Chown(service, 65534, 65534)) // the service's folder and files
	owner, sudoUser := "uid 65534", "'#65534'"
	if u, err := user.LookupId("65534"); err == nil {
		owner, sudoUser = u.Username, u.Username
	}
	for _, args := range [][]string{{"check-config"}, {"client", "list"}} {
		out, err := exec.Command(setpriv, append([]string{"--reuid=1", "--regid=1", "--clear-groups", "--", bin}, append(args, "-config", cfg)...)...).CombinedOutput()
		msg := string(out)
		t.Log(msg)
		is.True(err != nil)                                            // refused
		is.True(strings.Contains(msg, db))                             // naming the database
		is.True(strings.Contains(msg, "sudo -u "+sudoUser+" hookd …")) // and as whom to run hookd
		if args[0] == "check-config" {
			is.True(strings.Contains(msg, db+" belongs to "+owner+" and is not writable by this user")) // whose it is
		}
	}
	entries, err = os.ReadDir(service)
	is.NoErr(err)
	var after []string
	for _, e := range entries {
		after = append(after, e.Name())
	}
	is.Equal(after, made) // nothing made
}

// TestKeyOfAnotherUser: a secret key this user may not read, beside a database
// it may write (the service's key, mode 0600, read by an administrator as
// themselves), is named as a key of another user, with whom to run hookd as, by
// every command and by check-config, and changes nothing; not taken for a key to
// restore from the backups, which would replace the one the database needs. It
// runs the built hookd as uid 65534 on a key of uid 54321, so only as root.
func TestKeyOfAnotherUser(t *testing.T) {
	is := is.New(t)
	if os.Geteuid() != 0 {
		t.Skip("makes a key of another user's: only as root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		unavailable(t, "needs setpriv (util-linux) to run hookd as another user")
	}
	open, err := os.MkdirTemp("", "hookd-key-")
	is.NoErr(err)
	t.Cleanup(func() { os.RemoveAll(open) })
	is.NoErr(os.Chmod(open, 0o755))
	bin := filepath.Join(open, "hookd")
	src, err := os.Open(hookdBinary(t))
	is.NoErr(err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	is.NoErr(err)
	_, err = io.Copy(dst, src)
	is.NoErr(err)
	is.NoErr(dst.Close())
	service := filepath.Join(open, "lib")
	is.NoErr(os.Mkdir(service, 0o755))
	db := filepath.Join(service, "hookd.db")
	cfg := filepath.Join(open, "hookd.toml")
	// A free port: serve listens before it reads the key, and hookd's default,
	// 127.0.0.1:8080, may be a hookd dev's, run beside the tests.
	is.NoErr(os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = "+strconv.Quote(db)+"\n"), 0o644))
	_, err = runCmd(t, "init", "-config", cfg)
	is.NoErr(err)
	entries, err := os.ReadDir(service)
	is.NoErr(err)
	for _, e := range append(entries, nil) {
		name := service
		if e != nil {
			name = filepath.Join(service, e.Name())
		}
		is.NoErr(os.Chown(name, 65534, 65534)) // the database, its folder and files: this user's
	}
	key := filepath.Join(service, "hookd.key")
	is.NoErr(os.Chown(key, 54321, 54321)) // the key: another user's, mode 0600
	before := files(t, service)
	for _, args := range [][]string{{"client", "list"}, {"notify", "0000-0002-7253-3645"}, {"check-config"}, {"serve"}} {
		out, err := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", bin},
			append(args, "-config", cfg)...)...).CombinedOutput()
		msg := string(out)
		t.Log(msg)
		is.True(err != nil)                                                                  // refused
		is.True(strings.Contains(msg, "the secret key "+key+" cannot be read by this user")) // what is wrong
		is.True(strings.Contains(msg, "run hookd as uid 54321, the user it belongs to"))     // and whose key it is
		is.True(strings.Contains(msg, "(sudo -u '#54321' hookd …)"))
		is.True(!strings.Contains(msg, "restore")) // not a key to replace
		is.Equal(files(t, service), before)        // nothing made
	}
}

// TestLockHolderSinceIsLocal: a daemon that holds the database is named with
// when it started in the machine's local time zone, as the command line shows
// every time but in -json.
func TestLockHolderSinceIsLocal(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("JST", 9*3600)
	t.Cleanup(func() { time.Local = local })
	h := lockHolder{PID: 42, Listen: "127.0.0.1:8080", Started: time.Date(2026, 12, 3, 12, 16, 27, 0, time.UTC)}
	if got, want := h.String(), "pid 42, listening on 127.0.0.1:8080 since 2026-12-03T21:16:27+09:00"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
