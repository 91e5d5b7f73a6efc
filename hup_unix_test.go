//go:build unix

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
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

// TestDevStopsOnHUP: hookd dev stops on a SIGHUP (its terminal closing) as on
// Ctrl-C, recording the outcomes of the calls it has made before it ends, where
// Go's default ended it at once and left them to be sent again at the next start.
func TestDevStopsOnHUP(t *testing.T) {
	is := is.New(t)
	p := startProcess(t, "dev", "-config", testConfig(t, ""))
	is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("hookd dev did not stop within 20s of SIGHUP:\n%s", p.logs)
	}
	var last string
	for _, line := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		is.NoErr(json.Unmarshal([]byte(line), &rec)) // a JSON line
		last = rec.Msg
	}
	is.Equal(last, "stopped") // a clean stop, its database closed
	is.Equal(p.cmd.ProcessState.ExitCode(), 0)
}

// TestDevUnderNohupIgnoresHUP: hookd dev started with SIGHUP ignored (nohup, or a
// shell's trap "" HUP), which asks it to outlive its terminal, goes on serving
// after a SIGHUP, as Go's default leaves such a signal ignored.
func TestDevUnderNohupIgnoresHUP(t *testing.T) {
	is := is.New(t)
	args := []string{"dev", "-config", testConfig(t, "")}
	cmd := exec.Command("/bin/sh", append([]string{"-c", `trap "" HUP; exec "$0" "$@"`, hookdBinary(t)}, args...)...)
	p := startCmd(t, cmd, args...)
	is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
	select {
	case <-p.done:
		t.Fatalf("hookd dev under nohup stopped on SIGHUP:\n%s", p.logs)
	case <-time.After(2 * time.Second):
	}
	res, err := noRedirects.Get(p.url + "/healthz")
	is.NoErr(err) // still serving
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK)
}
