//go:build linux

package main

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestInboxOnEveryInterface: for an http.listen on every interface (":PORT",
// "0.0.0.0:PORT", "[::]:PORT"), the inbox's exception that the command line makes
// from the setting is the one the daemon makes from its listener, and each of its
// addresses reaches that listener, with IPv6 on and with it switched off
// (net.ipv6.conf.*.disable_ipv6, where Go still listens on [::]), also where a
// socket may bind to an address the machine does not have
// (net.ipv6.ip_nonlocal_bind): the command line
// took "0.0.0.0:PORT" for 127.0.0.1 alone where the daemon, on [::], takes ::1 too,
// and where IPv6 is off both took ::1, which connects to nothing, and told to call
// the inbox there. Each case runs in a network namespace of its own, which has
// only its loopback: nothing listens on the machine's interfaces.
func TestInboxOnEveryInterface(t *testing.T) {
	if os.Getenv("HOOKD_TEST_NETNS") != "" {
		inboxOnEveryInterface(t) // in the namespace
		return
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "needs %s (Debian's util-linux and iproute2): %v", tool, err)
		}
	}
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "--net", "true").CombinedOutput(); err != nil {
		// A container may refuse user namespaces even to root, as it may refuse
		// mounts (smallTmpfs): a refusal of the kernel's is skipped, in CI too.
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	for _, tt := range []struct{ name, setup string }{
		{"IPv6 on", ""},
		{"IPv6 off", "for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/lo/disable_ipv6; do [ ! -e $f ] || echo 1 > $f; done && "},
		// A machine that lets a socket bind to an address it does not have (a
		// load balancer's, for an address that moves to it), where a socket
		// bound to ::1 does not tell that ::1 is there.
		{"IPv6 off, non-local binds allowed", "for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/lo/disable_ipv6; do [ ! -e $f ] || echo 1 > $f; done && " +
			"echo 1 > /proc/sys/net/ipv6/ip_nonlocal_bind && "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "sh", "-c",
				"ip link set lo up && "+tt.setup+`exec "$0" -test.run='^TestInboxOnEveryInterface$' -test.count=1 -test.v`, os.Args[0])
			cmd.Env = append(os.Environ(), "HOOKD_TEST_NETNS=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestInboxOnEveryInterface") {
				t.Fatalf("in a network namespace: %v\n%s", err, out)
			}
		})
	}
}

// inboxOnEveryInterface is TestInboxOnEveryInterface in its namespace.
func inboxOnEveryInterface(t *testing.T) {
	for _, host := range []string{"", "0.0.0.0", "::", "::ffff:0.0.0.0"} {
		t.Run("["+host+"]", func(t *testing.T) {
			is := is.New(t)
			free, err := net.Listen("tcp", "127.0.0.1:0")
			is.NoErr(err)
			port := strconv.Itoa(free.Addr().(*net.TCPAddr).Port)
			is.NoErr(free.Close())
			listen := net.JoinHostPort(host, port)
			cfg := writeConfig(t, "[http]\nlisten = \""+listen+"\"\n[inbox]\nenabled = true\n[store]\npath = \""+t.TempDir()+"/hookd.db\"\n")
			initDB(t, cfg)
			_, err = runCmd(t, "org", "add", "-config", cfg, "-name", "Uni", "-tech-contact", "it@uni.example")
			is.NoErr(err)

			// What the command line takes, before the daemon runs.
			predicted := listenInbox(listen).Addrs()
			ipv6 := false
			for _, a := range predicted {
				ipv6 = ipv6 || a.Addr().Is6()
			}
			_, _, err = runEnv(t, nil, "org", "set", "Uni", "-url", "http://[::1]:"+port+"/inbox/x", "-config", cfg)
			if ipv6 {
				is.NoErr(err) // hookd's own inbox at ::1
			} else {
				is.True(err != nil) // refused, saying where the inbox is called
				is.Equal(err.Error(), "org set: -url: host ::1 is in ::1/128 (Loopback Address); set delivery.allow_private_targets to allow it; "+
					"hookd's own inbox is called at http://127.0.0.1:"+port+"/inbox/…")
			}
			_, err = runCmd(t, "org", "set", "Uni", "-url", "http://127.0.0.1:"+port+"/inbox/x", "-config", cfg)
			is.NoErr(err) // at 127.0.0.1 always

			// What the daemon takes: the exception serve makes of its listener.
			ln, err := net.Listen("tcp", listen)
			is.NoErr(err)
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			on := DefaultConfig()
			on.Inbox.Enabled = true
			self, _, err := inboxWiring(on, ln.Addr().String())
			is.NoErr(err)
			is.Equal(self.Addrs(), predicted) // the command line's is the daemon's
			for _, a := range self.Addrs() {
				c, err := net.DialTimeout("tcp", a.String(), 5*time.Second)
				if err != nil {
					t.Fatalf("the inbox's address %s, of a listener on %s: %v", a, ln.Addr(), err)
				}
				c.Close()
			}
		})
	}
}

// TestDevBannerOnEveryInterface: hookd dev listening on every interface with
// loopback callbacks refused (a -config file setting http.listen to "0.0.0.0:PORT"
// and delivery.allow_private_targets = false) prints a registration whose callback
// hookd takes, and the console's inbox page names the same: at 127.0.0.1, where
// hookd calls its own inbox, not at the "localhost" of its URLs, which the SSRF
// guard refuses as a loopback name. It
// runs in a network namespace of its own, as TestInboxOnEveryInterface does, so
// that nothing listens on the machine's interfaces.
func TestDevBannerOnEveryInterface(t *testing.T) {
	if os.Getenv("HOOKD_TEST_NETNS") != "" {
		devBannerOnEveryInterface(t) // in the namespace
		return
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "needs %s (Debian's util-linux and iproute2): %v", tool, err)
		}
	}
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "--net", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "sh", "-c",
		`ip link set lo up && exec "$0" -test.run='^TestDevBannerOnEveryInterface$' -test.count=1 -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "HOOKD_TEST_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDevBannerOnEveryInterface") {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
}

// devBannerOnEveryInterface is TestDevBannerOnEveryInterface in its namespace.
func devBannerOnEveryInterface(t *testing.T) {
	is := is.New(t)
	cfg := writeConfig(t, "[http]\nlisten = \"0.0.0.0:0\"\n[store]\npath = \"hookd-dev.db\"\n[delivery]\nallow_private_targets = false\n")
	dev := startDev(t, noenv, "-config", cfg)
	defer func() { is.NoErr(dev.stop()) }() // hookd dev stops cleanly
	banner := dev.banner
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no match for %s in the banner:\n%s", re, banner)
		}
		return m[1]
	}
	putURL := find(`-X PUT '([^']+)'`)
	base := putURL[:strings.Index(putURL, "/0000-")]
	t.Logf("the API at %s, the registration %s", base, putURL)

	id, secret := find(`(?m)^  client_id +(\S+)$`), find(`(?m)^  client_secret +(\S+)$`)
	callback, err := url.PathUnescape(putURL[strings.LastIndex(putURL, "/")+1:])
	is.NoErr(err)
	is.True(strings.HasPrefix(callback, "http://127.0.0.1:")) // where hookd calls its inbox

	// The console's inbox page, before the registration, names that address too.
	browser := consoleSignIn(t, base, url.Values{"kind": {"client"}, "client_id": {id}, "secret": {secret}})
	page := consolePage(t, browser, base+"/console/inbox")
	if !strings.Contains(page, "a callback at <code class=\"url\">"+callback+"</code>") {
		t.Fatalf("the inbox page does not name the banner's callback %s:\n%s", callback, page)
	}

	token, status, body := bannerPUT(t, base, putURL, id, secret)
	if status != http.StatusCreated {
		t.Fatalf("the banner's registration: %d %s", status, body)
	}

	// An event: its call reaches the inbox.
	ev, err := http.NewRequest(http.MethodPost, find(`'(http://[^']+/api/notifications/v1/events)'`), strings.NewReader(`{"orcid":"0000-0002-7253-3645"}`))
	is.NoErr(err)
	ev.Header.Set("Authorization", "Bearer "+token)
	ev.Header.Set("Content-Type", "application/json")
	res, err := noRedirects.Do(ev)
	is.NoErr(err) // the banner's event
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusAccepted) // taken
	eventually(t, 10*time.Second, "the callback in the inbox", func() bool {
		out, err := runCmd(t, "inbox", "list", "demo", "-config", cfg)
		return err == nil && strings.Contains(out, "POST /inbox/demo/0000-0002-7253-3645/updated")
	})
}
