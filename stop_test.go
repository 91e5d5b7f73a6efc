package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestStopIsLogged: on SIGTERM, hookd serve logs "shutting down" and, once its
// database is closed (every outcome recorded), "stopped" as its last line, so the
// journal says the run ended whole.
func TestStopIsLogged(t *testing.T) {
	is := is.New(t)
	p := startProcess(t, "serve", "-config", testConfig(t, ""))
	is.NoErr(p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("hookd did not stop within 20s of SIGTERM:\n%s", p.logs)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		is.NoErr(json.Unmarshal([]byte(line), &rec)) // a JSON line
		msgs = append(msgs, rec.Msg)
	}
	is.True(len(msgs) >= 3)
	is.Equal(msgs[len(msgs)-2], "shutting down") // then
	is.Equal(msgs[len(msgs)-1], "stopped")       // the last line
	is.Equal(p.cmd.ProcessState.ExitCode(), 0)
}
