package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The README's walk-through, run as a reader pastes it. Its shell blocks (```sh) are
// extracted in order from the "## Walk-through" section; a marker comment on the line
// before a block says how it runs:
//
//	<!-- walkthrough: daemon -->            a long-running hookd, started in the background
//	<!-- walkthrough: after the callback --> run once hookd's inbox has recorded the callback
//	                                         and hookd has recorded it as delivered
//
// Every other block runs, in order, in one bash shell (so $TOKEN carries over), with
// "go run ." replaced by the built hookd and port 8080 by a free one. The callback is
// hookd's own inbox; the test ends by reading what the inbox recorded.

// walkBlock is one shell block of the walk-through and its marker ("" for none).
type walkBlock struct {
	marker string
	code   string
}

var markerLine = regexp.MustCompile(`^<!-- walkthrough: (.+) -->$`)

// walkthroughBlocks extracts the shell blocks of the README's walk-through section.
func walkthroughBlocks(tb testing.TB, readme string) []walkBlock {
	tb.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		tb.Fatal(err)
	}
	var blocks []walkBlock
	in, inBlock := false, false
	marker, prev := "", ""
	var code strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			in = strings.HasPrefix(line, "## Walk-through")
		case !in:
		case inBlock && line == "```":
			blocks = append(blocks, walkBlock{marker: marker, code: code.String()})
			inBlock = false
		case inBlock:
			code.WriteString(line + "\n")
		case line == "```sh":
			inBlock = true
			code.Reset()
			marker = ""
			if m := markerLine.FindStringSubmatch(prev); m != nil {
				marker = m[1]
			}
		}
		prev = line
	}
	return blocks
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lineLog keeps a background process's output and tells who waits for a line.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *lineLog) has(prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(tb testing.TB, what string, d time.Duration, cond func() bool, logs ...fmt.Stringer) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.String() + "\n")
			}
			tb.Fatalf("%s: not within %s\n%s", what, d, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadmeWalkthrough runs the README's walk-through against a real hookd dev: it
// cannot drift from the program.
func TestReadmeWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "the walk-through needs %s: install it to run this test", tool)
		}
	}
	blocks := walkthroughBlocks(t, "README.md")
	if len(blocks) < 6 {
		t.Fatalf("found %d shell blocks in the README's walk-through", len(blocks))
	}
	dir := t.TempDir()
	hookd := hookdBinary(t)
	hookdAddr := freeAddr(t)
	_, hookdPort, _ := net.SplitHostPort(hookdAddr)
	subst := strings.NewReplacer(
		"go run .", hookd,
		"127.0.0.1:8080", hookdAddr,
		"127.0.0.1%3A8080", "127.0.0.1%3A"+hookdPort,
	)

	daemonLog, shellLog := &lineLog{}, &lineLog{}
	background := func(code string, log *lineLog) {
		cmd := exec.Command("bash", "-c", "exec "+strings.TrimSpace(subst.Replace(code)))
		cmd.Dir = dir
		cmd.Env = walkEnv()
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				log.add(sc.Text())
			}
			io.Copy(io.Discard, out)
			close(done)
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
			cmd.Wait()
		})
	}

	shell := exec.Command("bash", "--noprofile", "--norc", "-eu", "-o", "pipefail")
	shell.Dir = dir
	shell.Env = walkEnv()
	stdin, err := shell.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := shell.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	shell.Stderr = shell.Stdout
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			shellLog.add(sc.Text())
		}
		close(ended)
	}()
	t.Cleanup(func() {
		stdin.Close()
		shell.Process.Kill()
		<-ended
		shell.Wait()
	})
	logs := []fmt.Stringer{shellLog, daemonLog}

	// inbox reads what hookd's inbox "walkthrough" recorded, as "hookd inbox list
	// -json" prints it.
	inbox := func() []inboxJSON {
		cmd := exec.Command(hookd, "inbox", "list", "walkthrough", "-json")
		cmd.Dir, cmd.Env = dir, walkEnv()
		out, err := cmd.Output()
		var rs []inboxJSON
		if err != nil || json.Unmarshal(out, &rs) != nil {
			return nil
		}
		return rs
	}
	callbacks := func() bool { return len(inbox()) > 0 }
	// recorded: hookd has recorded a callback as delivered (the inbox records the
	// call before it answers, so before hookd records the answer).
	recorded := func() bool {
		cmd := exec.Command(hookd, "deliveries", "list", "-state", "delivered")
		cmd.Dir, cmd.Env = dir, walkEnv()
		out, err := cmd.Output()
		return err == nil && strings.Contains(string(out), "0000-0002-7253-3645")
	}
	for i, b := range blocks {
		switch b.marker {
		case "daemon":
			background(b.code, daemonLog)
			waitUntil(t, "hookd dev answers", 30*time.Second, func() bool {
				res, err := http.Get("http://" + hookdAddr + "/healthz")
				if err != nil {
					return false
				}
				res.Body.Close()
				return res.StatusCode == http.StatusOK
			}, logs...)
			waitUntil(t, "hookd dev prints its client", 30*time.Second, func() bool { return daemonLog.has("  client_id") }, logs...)
			continue
		case "after the callback":
			waitUntil(t, "the inbox gets the callback", 30*time.Second, callbacks, logs...)
			waitUntil(t, "hookd records it", 30*time.Second, recorded, logs...)
		case "":
		default:
			t.Fatalf("unknown walk-through marker %q", b.marker)
		}
		done := fmt.Sprintf("--- block %d done ---", i)
		if _, err := io.WriteString(stdin, subst.Replace(b.code)+"\necho '"+done+"'\n"); err != nil {
			t.Fatalf("block %d: the shell is gone: %v\n%s", i, err, shellLog)
		}
		waitUntil(t, fmt.Sprintf("block %d runs:\n%s", i, b.code), 60*time.Second, func() bool {
			select {
			case <-ended:
				t.Fatalf("block %d failed (the shell stopped):\n%s\n%s", i, b.code, shellLog)
			default:
			}
			return shellLog.has(done)
		}, logs...)
	}
	statuses := regexp.MustCompile(`(?m)^HTTP/1\.1 (\d{3})`).FindAllStringSubmatch(shellLog.String(), -1)
	if len(statuses) < 4 {
		t.Fatalf("the walk-through's curl -i calls answered only %d times:\n%s", len(statuses), shellLog)
	}
	for _, m := range statuses {
		if m[1][0] != '2' {
			t.Errorf("a walk-through call answered %s:\n%s", m[1], shellLog)
		}
	}
	if !strings.Contains(shellLog.String(), "delivered") {
		t.Errorf("deliveries list shows no delivered delivery:\n%s", shellLog)
	}
	if !regexp.MustCompile(`(?m)^#\d+ .* walkthrough +POST /inbox/walkthrough/0000-0002-7253-3645/updated +204 +valid \(client walkthrough\) +delivery \d+ attempt 1$`).
		MatchString(shellLog.String()) {
		t.Errorf("inbox list shows no signed callback of a delivery:\n%s", shellLog)
	}
	if !strings.Contains(shellLog.String(), `"format":"empty","target":"http://`+hookdAddr+`/inbox/walkthrough/0000-0002-7253-3645/updated"`) {
		t.Errorf("the deliveries over HTTP show no delivery to the inbox:\n%s", shellLog)
	}

	// The walk-through ends with the callback seen in the inbox: signed with the
	// walk-through client's secret, sent by a delivery, answered 204.
	rs := inbox()
	if len(rs) == 0 {
		t.Fatalf("the inbox recorded no callback\n%s\n%s", shellLog, daemonLog)
	}
	first := rs[len(rs)-1]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"method", first.Method, "POST"},
		{"path", first.Path, "/inbox/walkthrough/0000-0002-7253-3645/updated"},
		{"verdict", first.Verdict, "valid"},
		{"signer", first.SignerKind + " " + first.SignerID, "client walkthrough"},
		{"answer", first.AnswerStatus, http.StatusNoContent},
		{"attempt", first.Attempt, 1},
	} {
		if c.got != c.want {
			t.Errorf("the inbox's first request: %s is %v, want %v", c.what, c.got, c.want)
		}
	}
	if first.DeliveryID == 0 {
		t.Errorf("the inbox's first request names no delivery: %+v", first)
	}
}

// walkEnv is the environment of the walk-through's commands: the test's, without a
// HOOKD_CONFIG that would point them elsewhere.
func walkEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_CONFIG=") {
			env = append(env, kv)
		}
	}
	return env
}
