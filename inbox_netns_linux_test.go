//go:build linux

package main

import (
	"net"
	"os"
	"os/exec"
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
