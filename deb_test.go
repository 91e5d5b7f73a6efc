//go:build linux

package main

import (
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
)

// TestDebianPackage builds the Debian package with the README's command, installs
// it with dpkg, checks the user, files and permissions, checks the installed
// configuration and unit, runs the installed binary as the hookd user with the
// installed configuration until a webhook is delivered to a receiver on
// 127.0.0.1, upgrades it to a newer version (the database, key and configuration
// stay), then purges the package and checks that only what an operator made is
// left. It changes the machine (a package, a user), so it runs only in CI
// (CI=true), as root.
func TestDebianPackage(t *testing.T) {
	if os.Getenv("CI") != "true" {
		t.Skip("installs a package and adds a system user: runs only with CI=true (as root, on Debian or Ubuntu)")
	}
	is := is.New(t)
	if os.Geteuid() != 0 {
		t.Fatal("the Debian package test must run as root (dpkg -i, runuser)")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "systemd-analyze", "setpriv", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the Debian package test needs %s (.ci/run installs it): %v", tool, err)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "hookd").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("a hookd package is already installed here (%s); remove it first: dpkg --purge hookd", out)
	}
	if _, err := user.Lookup("hookd"); err == nil {
		t.Fatal("a user hookd already exists here; the test would remove it at purge")
	}
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "hookd").Run() }) // whatever happened

	// Build, as README "Install on Debian/Ubuntu" says.
	dist := t.TempDir()
	build := exec.Command("go", "run", "-modfile=packaging/deb/tools.mod", "packaging/deb/mkdeb.go", "-version", "0.1.0", "-o", dist)
	out, err := build.Output()
	if err != nil {
		t.Fatalf("mkdeb: %v\n%s", err, stderrOf(err))
	}
	deb := strings.TrimSpace(string(out))
	is.Equal(filepath.Dir(deb), dist) // the package is where -o said
	t.Logf("dpkg -i %s:\n%s", filepath.Base(deb), mustRun(t, "dpkg", "-i", deb))

	// The user and its state directory.
	u, err := user.Lookup("hookd")
	is.NoErr(err) // the hookd user exists
	uid, _ := strconv.Atoi(u.Uid)
	is.True(uid < 1000)                   // a system user
	is.Equal(u.HomeDir, "/var/lib/hookd") // at home in its state directory
	passwd := mustRun(t, "getent", "passwd", "hookd")
	is.True(strings.HasSuffix(strings.TrimSpace(passwd), ":/usr/sbin/nologin")) // that cannot log in
	g, err := user.LookupGroup("hookd")
	is.NoErr(err) // and its group
	is.Equal(u.Gid, g.Gid)

	// Files, owners and modes.
	checkFile(t, "/usr/bin/hookd", 0o755, "0", "0")
	checkFile(t, "/usr/lib/systemd/system/hookd.service", 0o644, "0", "0")
	checkFile(t, "/etc/hookd/hookd.toml", 0o644, "0", "0")
	checkFile(t, "/var/lib/hookd", 0o700|os.ModeDir, u.Uid, g.Gid)
	is.Equal(strings.TrimSpace(mustRun(t, "dpkg-query", "-W", "-f=${Conffiles}", "hookd"))[:len("/etc/hookd/hookd.toml")], "/etc/hookd/hookd.toml") // a conffile
	unit, err := os.ReadFile("/usr/lib/systemd/system/hookd.service")
	is.NoErr(err)
	is.True(strings.Contains(string(unit), "ExecStart=/usr/bin/hookd serve -config /etc/hookd/hookd.toml")) // runs the packaged binary
	is.True(!strings.Contains(string(unit), "/usr/local/bin"))                                              // and nothing else
	conf, err := os.ReadFile("/etc/hookd/hookd.toml")
	is.NoErr(err)
	is.True(strings.Contains(string(conf), `path = "/var/lib/hookd/hookd.db"`)) // the database under /var/lib/hookd
	is.True(strings.Contains(mustRun(t, "/usr/bin/hookd", "version"), "hookd 0.1.0"))

	// The installed configuration and unit are valid.
	is.True(strings.Contains(mustRun(t, "/usr/bin/hookd", "check-config", "-config", "/etc/hookd/hookd.toml"), "ok"))
	verify := exec.Command("systemd-analyze", "verify", "/usr/lib/systemd/system/hookd.service")
	vout, err := verify.CombinedOutput()
	t.Logf("systemd-analyze verify: %v %s", err, vout)
	is.NoErr(err) // the unit is valid

	// An operator's edits for this test: any free port, and a receiver on loopback.
	edited := string(conf)
	for from, to := range map[string]string{
		`listen = "127.0.0.1:8080"`:     `listen = "127.0.0.1:0"`,
		`allow_private_targets = false`: `allow_private_targets = true`,
		`coalesce_window = "5m"`:        `coalesce_window = "0s"`,
		"\nformat = \"auto\"":           "\nformat = \"json\"",
	} {
		is.Equal(strings.Count(edited, from), 1) // the installed file has the line to edit
		edited = strings.Replace(edited, from, to, 1)
	}
	is.NoErr(os.WriteFile("/etc/hookd/hookd.toml", []byte(edited), 0o644))
	mustRun(t, "/usr/bin/hookd", "check-config", "-config", "/etc/hookd/hookd.toml")

	// The installed binary as the hookd user, as the unit runs it.
	asHookd := []string{"--reuid=hookd", "--regid=hookd", "--init-groups", "--"}
	creds := mustRun(t, "setpriv", append(asHookd, "/usr/bin/hookd", "client", "add", "-config", "/etc/hookd/hookd.toml", "-name", "deb", "-scopes", "/webhook,/notify", "-json")...)
	var c credentials
	is.NoErr(json.Unmarshal([]byte(creds), &c)) // client add -json
	log := newLogWatcher()
	serve := exec.Command("setpriv", append(asHookd, "/usr/bin/hookd", "serve", "-config", "/etc/hookd/hookd.toml")...)
	serve.Stdout, serve.Stderr = log, log
	is.NoErr(serve.Start())
	served := make(chan error, 1)
	go func() { served <- serve.Wait() }()
	defer serve.Process.Kill()
	var base string
	select {
	case base = <-log.listening:
	case err := <-served:
		t.Fatalf("the installed hookd ended before listening: %v\n%s", err, log)
	case <-time.After(20 * time.Second):
		t.Fatalf("the installed hookd did not listen within 20s\n%s", log)
	}

	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.URL.Path
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	tok := scopedToken(t, base, c.ClientID, c.ClientSecret, "/webhook /notify")
	res := put(t, base, "/0000-0002-7253-3645/webhook/"+httpapi.EscapeSegment(recv.URL+"/0000-0002-7253-3645/updated"), tok)
	is.Equal(res.StatusCode, http.StatusCreated) // registered
	status, _ := adminCall(t, http.MethodPost, base+"/api/notifications/v1/events", tok, `{"orcid":"0000-0002-7253-3645"}`)
	is.Equal(status, http.StatusAccepted) // event taken
	select {
	case p := <-got:
		is.Equal(p, "/0000-0002-7253-3645/updated") // the callback came
	case <-time.After(20 * time.Second):
		t.Fatalf("no callback within 20s\n%s", log)
	}
	is.NoErr(serve.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-served:
		is.NoErr(err) // a clean stop
	case <-time.After(20 * time.Second):
		t.Fatalf("the installed hookd did not stop within 20s of SIGTERM\n%s", log)
	}
	checkFile(t, "/var/lib/hookd/hookd.key", 0o600, u.Uid, g.Gid) // hookd made its key, for itself
	_, err = os.Stat("/var/lib/hookd/hookd.db")
	is.NoErr(err) // and its database

	// An upgrade to a newer version keeps the database, its key and the operator's
	// edits of the configuration.
	key, err := os.ReadFile("/var/lib/hookd/hookd.key")
	is.NoErr(err)
	build = exec.Command("go", "run", "-modfile=packaging/deb/tools.mod", "packaging/deb/mkdeb.go", "-version", "0.2.0", "-o", dist)
	out, err = build.Output()
	if err != nil {
		t.Fatalf("mkdeb: %v\n%s", err, stderrOf(err))
	}
	t.Logf("dpkg -i %s:\n%s", filepath.Base(strings.TrimSpace(string(out))), mustRun(t, "dpkg", "-i", strings.TrimSpace(string(out))))
	is.True(strings.Contains(mustRun(t, "/usr/bin/hookd", "version"), "hookd 0.2.0")) // the new binary
	after, err := os.ReadFile("/var/lib/hookd/hookd.key")
	is.NoErr(err)
	is.Equal(string(after), string(key)) // the same key
	checkFile(t, "/var/lib/hookd/hookd.key", 0o600, u.Uid, g.Gid)
	checkFile(t, "/var/lib/hookd", 0o700|os.ModeDir, u.Uid, g.Gid)
	conf, err = os.ReadFile("/etc/hookd/hookd.toml")
	is.NoErr(err)
	is.Equal(string(conf), edited) // the operator's edits
	clients := mustRun(t, "setpriv", append(asHookd, "/usr/bin/hookd", "client", "list", "-config", "/etc/hookd/hookd.toml", "-json")...)
	is.True(strings.Contains(clients, c.ClientID)) // the same database

	// Purge: nothing is left but what an operator made.
	is.NoErr(os.WriteFile("/etc/hookd/operator-notes", []byte("mine\n"), 0o600))
	defer os.RemoveAll("/etc/hookd")
	t.Logf("dpkg --purge hookd:\n%s", mustRun(t, "dpkg", "--purge", "hookd"))
	for _, gone := range []string{"/usr/bin/hookd", "/usr/lib/systemd/system/hookd.service", "/etc/hookd/hookd.toml", "/var/lib/hookd", "/usr/share/doc/hookd"} {
		_, err := os.Lstat(gone)
		if !os.IsNotExist(err) {
			t.Errorf("%s is still there after purge (%v)", gone, err)
		}
	}
	left, err := os.ReadDir("/etc/hookd")
	is.NoErr(err)
	is.Equal(len(left), 1) // the operator's file, only
	is.Equal(left[0].Name(), "operator-notes")
	_, err = user.Lookup("hookd")
	is.True(err != nil) // no hookd user
	_, err = user.LookupGroup("hookd")
	is.True(err != nil) // no hookd group
	status2, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "hookd").Output()
	is.True(!strings.Contains(string(status2), "installed") || strings.Contains(string(status2), "not-installed")) // dpkg forgot it
}

// TestDebianPackageContents builds the Debian package for the two ARM machines
// README "Install on Debian/Ubuntu" names (-arch arm64, -arch arm) and checks,
// without installing it, that each names a Debian architecture dpkg installs on,
// holds a binary for that machine, recommends the certificate authorities HTTPS
// needs, ships the unit with the note that an upgrade replaces it, a configuration
// that says to check it as the service's user, and lintian's override for the
// static binary.
func TestDebianPackageContents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two packages")
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		unavailable(t, "needs dpkg-deb (Debian or Ubuntu)")
	}
	for _, tc := range []struct {
		goarch, debArch string
		machine         elf.Machine
	}{
		{"arm64", "arm64", elf.EM_AARCH64},
		{"arm", "armhf", elf.EM_ARM},
	} {
		t.Run(tc.goarch, func(t *testing.T) {
			is := is.New(t)
			dist := t.TempDir()
			build := exec.Command("go", "run", "-modfile=packaging/deb/tools.mod", "packaging/deb/mkdeb.go", "-version", "0.1.0", "-arch", tc.goarch, "-o", dist)
			out, err := build.Output()
			if err != nil {
				t.Fatalf("mkdeb: %v\n%s", err, stderrOf(err))
			}
			deb := strings.TrimSpace(string(out))
			is.Equal(filepath.Base(deb), "hookd_0.1.0_"+tc.debArch+".deb")                                  // named as dpkg names the architecture
			is.Equal(strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", deb, "Architecture")), tc.debArch)      // which the package says
			is.Equal(strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", deb, "Recommends")), "ca-certificates") // the CAs HTTPS calls are checked against

			root := t.TempDir()
			mustRun(t, "dpkg-deb", "-x", deb, root)
			bin, err := elf.Open(filepath.Join(root, "usr/bin/hookd"))
			is.NoErr(err) // the binary is ELF
			defer bin.Close()
			is.Equal(bin.Machine, tc.machine) // for that machine
			unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/hookd.service"))
			is.NoErr(err)
			is.True(strings.Contains(string(unit), "an upgrade replaces it")) // says where changes go
			is.True(strings.Contains(string(unit), "systemctl edit hookd"))
			conf, err := os.ReadFile(filepath.Join(root, "etc/hookd/hookd.toml"))
			is.NoErr(err)
			is.True(strings.Contains(string(conf), "sudo -u hookd hookd check-config -config /etc/hookd/hookd.toml")) // checked as the service's user
			overrides, err := os.ReadFile(filepath.Join(root, "usr/share/lintian/overrides/hookd"))
			is.NoErr(err) // lintian's override
			is.True(strings.Contains(string(overrides), "hookd: statically-linked-binary [usr/bin/hookd]"))
		})
	}
}

// mustRun runs a command that must succeed and returns its standard output.
func mustRun(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderrOf(err))
	}
	return string(out)
}

// stderrOf returns what a failed command wrote to its standard error.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// checkFile asserts a path's mode, owner and group (numeric ids).
func checkFile(tb testing.TB, path string, mode os.FileMode, uid, gid string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || strconv.Itoa(int(st.Uid)) != uid || strconv.Itoa(int(st.Gid)) != gid {
		tb.Fatalf("%s: mode %v owner %d:%d, want %v %s:%s", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}
