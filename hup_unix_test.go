//go:build unix

package main

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestServeIgnoresHUP: hookd serve has nothing to reload; a SIGHUP is noted in the
// log and the daemon goes on serving (unhandled, it would kill the process, which
// systemd takes for a clean exit it does not restart).
func TestServeIgnoresHUP(t *testing.T) {
	is := is.New(t)
	d := startDaemon(t, testConfig(t, ""))
	is.NoErr(syscall.Kill(os.Getpid(), syscall.SIGHUP))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.stderr.String(), "SIGHUP ignored"); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the SIGHUP; stderr:\n%s", d.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := noRedirects.Get(d.url + "/healthz")
	is.NoErr(err) // still serving
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)
	is.NoErr(d.stop()) // and stops as it should
}
