package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests that run hookd as a separate process build it once per test binary.
var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

// hookdBinary builds the hookd command into a temporary folder (once) and returns
// its path.
func hookdBinary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() {
		binaryDir, binaryErr = os.MkdirTemp("", "hookd-bin-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "hookd")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		tb.Fatalf("build hookd: %v", binaryErr)
	}
	return binaryPath
}

// unavailable skips a test for want of what it needs (a program, a feature of the
// system), saying what, or fails it where CI=true: CI has everything the tests
// need, and a test skipped there would never run.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format+" (CI=true: CI must have it)", args...)
	}
	tb.Skipf(format, args...)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// process is hookd running as a separate process.
type process struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	logs *safeBuffer
}

// startProcess runs the built hookd with args and waits until it logs "listening"
// (JSON logs on stderr); its stderr is kept in logs.
func startProcess(tb testing.TB, args ...string) *process {
	tb.Helper()
	return startCmd(tb, exec.Command(hookdBinary(tb), args...), args...)
}

// startCmd is startProcess of a command made by the caller: cmd runs hookd with
// args.
func startCmd(tb testing.TB, cmd *exec.Cmd, args ...string) *process {
	tb.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatalf("stderr pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start hookd: %v", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), logs: &safeBuffer{}}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(line, '\n'))
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				listening <- rec.URL
				sent = true
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() { p.kill() })
	select {
	case p.url = <-listening:
		checkAPI(tb, p.url)
		return p
	case <-p.done:
		tb.Fatalf("hookd %s ended before listening:\n%s", strings.Join(args, " "), p.logs)
	case <-time.After(30 * time.Second):
		p.kill()
		tb.Fatalf("hookd %s did not log \"listening\" within 30s:\n%s", strings.Join(args, " "), p.logs)
	}
	return nil
}

// kill sends SIGKILL and waits for the process to end.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}
