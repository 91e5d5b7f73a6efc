package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"hookd/httpapi"
	"hookd/smtptest"
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
	msgs := logMessages(t, p.logs.String())
	is.True(len(msgs) >= 3)
	is.Equal(msgs[len(msgs)-2], "shutting down") // then
	is.Equal(msgs[len(msgs)-1], "stopped")       // the last line
	is.Equal(p.cmd.ProcessState.ExitCode(), 0)
}

// TestStopCutsHangingNotice: a webhook's deactivation notice whose relay stops
// answering mid-session (it holds the message and says nothing) when hookd serve
// is told to stop does not hold the stop past its bounds (stopTimes, shortened
// here; the delivery timeout is a minute, which go-mail would wait out): serve
// ends by stopTimes.end with "stopped" last, the log says the notice was not sent
// because hookd stopped, and the webhook's deactivation and the delivery's
// outcome are recorded.
func TestStopCutsHangingNotice(t *testing.T) {
	is := is.New(t)
	shortStop(t)
	relay := smtptest.NewHanging(t)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	cfg := testConfig(t, fastDelivery+"timeout = \"1m\"\n\n[email]\nsmtp_addr = \""+relay.Addr+"\"\nfrom = \"hookd@hookd.example\"\nstarttls = false\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, done, base := servedIn(t, ctx, cfg)
	checkAPI(t, base)
	webhookNotified(t, cfg, base, gone.URL, "-email", "ops@lab.example") // the call is answered 410, the owner's notice goes to the relay
	select {
	case <-relay.Held():
	case <-time.After(10 * time.Second):
		t.Fatalf("the notice did not reach the relay within 10s; log:\n%s", logs)
	}

	stopped := time.Now()
	cancel() // SIGTERM's
	select {
	case err := <-done:
		is.NoErr(err) // a clean stop
	case <-time.After(15 * time.Second):
		t.Fatalf("hookd serve did not stop within 15s (its bound: %s); log:\n%s", stopTimes.end, logs)
	}
	took := time.Since(stopped)
	t.Logf("stopped in %s", took.Round(time.Millisecond))
	is.True(took >= stopTimes.cut)                     // the notice had until the cut
	is.True(took < stopTimes.end+500*time.Millisecond) // and the stop ended within its bound

	msgs := logMessages(t, logs.String())
	is.Equal(msgs[len(msgs)-1], "stopped") // the last line
	is.True(slices.Contains(msgs, "deactivation notice not sent: hookd stopped while it was being sent"))
	is.True(!strings.Contains(logs.String(), `"level":"ERROR"`)) // nothing else went wrong
	waitFor(t, "hookd to close its connection to the relay", logs.String, func() bool { return relay.Sessions() == 0 })

	// What the stop cut short was a notice only: the deactivation and the
	// delivery's outcome are in the database.
	out, err := runCmd(t, "webhooks", "list", "-config", cfg, "-status", "deactivated", "-json")
	is.NoErr(err)
	var hooks []struct{ Status string }
	is.NoErr(json.Unmarshal([]byte(out), &hooks))
	is.Equal(len(hooks), 1) // the webhook is deactivated
	out, err = runCmd(t, "deliveries", "list", "-config", cfg, "-json")
	is.NoErr(err)
	var deliveries []struct {
		State      string
		Attempts   int
		LastStatus int `json:"last_status"`
	}
	is.NoErr(json.Unmarshal([]byte(out), &deliveries))
	is.Equal(len(deliveries), 1)
	is.Equal(deliveries[0].State, "dead") // its 410, recorded
	is.Equal(deliveries[0].Attempts, 1)
	is.Equal(deliveries[0].LastStatus, http.StatusGone)
}

// TestStopFitsTheUnit: hookd serve's stop (stopTimes) ends well inside the time
// hookd.service gives it (TimeoutStopSec), after which systemd would kill it; and
// its steps come in their order: the requests under way, then the calls in
// flight with their whole grace (at most 10 s), then the outcomes written.
func TestStopFitsTheUnit(t *testing.T) {
	is := is.New(t)
	unit, err := os.ReadFile("hookd.service")
	is.NoErr(err)
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindSubmatch(unit)
	is.True(m != nil) // hookd.service sets TimeoutStopSec
	budget, err := time.ParseDuration(string(m[1]))
	is.NoErr(err)
	is.True(stopTimes.end+5*time.Second <= budget)           // a margin for closing the database
	is.True(stopTimes.drain+10*time.Second <= stopTimes.cut) // the calls' grace is not cut short by default
	is.True(stopTimes.cut+5*time.Second <= stopTimes.end)    // time to record the outcomes
}

// TestStopWithDatabaseLocked: another process holding the database's write lock
// (an sqlite3 shell's open transaction) when hookd serve stops does not hold the
// stop past its bound (stopTimes, shortened here) for SQLite's busy timeout (10 s
// a write): the write of the stop's outcomes gives up at stopTimes.end, the log
// says they are not recorded (their leases return them), and "stopped" is the
// last line, in time. The call cut short at the stop goes out again at the next
// start.
func TestStopWithDatabaseLocked(t *testing.T) {
	is := is.New(t)
	shortStop(t)
	hanging, called := hangingReceiver(t)
	cfg := testConfig(t, fastDelivery+"timeout = \"1m\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, done, base := servedIn(t, ctx, cfg)
	webhookNotified(t, cfg, base, hanging.URL)
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatalf("the call did not reach the receiver within 10s; log:\n%s", logs)
	}

	stopped := time.Now()
	cancel() // SIGTERM's
	waitFor(t, "hookd serve to log \"shutting down\"", logs.String, func() bool {
		return strings.Contains(logs.String(), `"msg":"shutting down"`)
	})
	// Another process takes the write lock, and keeps it.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "hookd.db")+"?_pragma=busy_timeout(5000)")
	is.NoErr(err)
	defer db.Close()
	holder, err := db.Conn(context.Background())
	is.NoErr(err)
	defer holder.Close()
	_, err = holder.ExecContext(context.Background(), "BEGIN IMMEDIATE")
	is.NoErr(err) // the write lock, taken
	select {
	case err := <-done:
		is.NoErr(err) // a clean stop
	case <-time.After(30 * time.Second):
		t.Fatalf("hookd serve did not stop within 30s; log:\n%s", logs)
	}
	took := time.Since(stopped)
	t.Logf("stopped in %s", took.Round(time.Millisecond))
	is.True(took < stopTimes.end+time.Second) // the busy timeout (10 s) did not hold it
	msgs := logMessages(t, logs.String())
	is.Equal(msgs[len(msgs)-1], "stopped") // the last line
	is.True(slices.Contains(msgs, "dispatcher stopped with unrecorded outcomes; their leases will return them"))

	// Once the lock is let go, the next start sends the call again.
	_, err = holder.ExecContext(context.Background(), "ROLLBACK")
	is.NoErr(err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	logs2, done2 := serveIn(ctx2, cfg, noenv)
	select {
	case <-called:
	case err := <-done2:
		t.Fatalf("hookd serve ended: %v; log:\n%s", err, logs2)
	case <-time.After(10 * time.Second):
		t.Fatalf("the call was not made again within 10s of the next start; log:\n%s", logs2)
	}
	is.True(strings.Contains(logs2.String(), `"msg":"deliveries left in flight by a stopped daemon are due again"`))
	cancel2()
	<-done2
}

// TestStopHandsBackInboxCalls: a delivery to hookd's own inbox that falls due
// while hookd serve stops (its HTTP server finishing a request under way, delivery
// going on meanwhile) is not called at the listener that closed, to fail
// "connection refused" as if the inbox were a receiver that is down and count as
// a failed attempt: it goes back unsent, no attempt, and goes out at the next
// start.
func TestStopHandsBackInboxCalls(t *testing.T) {
	is := is.New(t)
	shortStop(t)
	cfg := testConfig(t, fastDelivery+"\n[inbox]\nenabled = true\n")
	// One address for both starts: the webhook calls the inbox of the first.
	b, err := os.ReadFile(cfg)
	is.NoErr(err)
	is.NoErr(os.WriteFile(cfg, []byte(strings.Replace(string(b), "127.0.0.1:0", freeAddr(t), 1)), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, done, base := servedIn(t, ctx, cfg)
	webhookNotified(t, cfg, base, base+"/inbox/stop")
	answered := func(n int) func() bool {
		return func() bool {
			out, err := runCmd(t, "inbox", "list", "stop", "-config", cfg, "-json")
			return err == nil && strings.Count(out, `"answer_status": 204`) == n
		}
	}
	waitFor(t, "the first call to reach the inbox", logs.String, answered(1))

	// A request under way, whose body never comes, holds the stop's HTTP drain
	// (stopTimes.drain) open while delivery goes on.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	is.NoErr(err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /oauth/token HTTP/1.1\r\nHost: hookd\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=")
	is.NoErr(err)
	time.Sleep(200 * time.Millisecond) // taken by the server before it stops

	cancel() // SIGTERM's
	waitFor(t, "hookd serve to log \"shutting down\"", logs.String, func() bool {
		return strings.Contains(logs.String(), `"msg":"shutting down"`)
	})
	_, err = runCmd(t, "notify", "-config", cfg, stopRecord)
	is.NoErr(err) // due at once, during the drain
	select {
	case err := <-done:
		is.NoErr(err) // a clean stop
	case <-time.After(15 * time.Second):
		t.Fatalf("hookd serve did not stop within 15s; log:\n%s", logs)
	}
	out, err := runCmd(t, "deliveries", "list", "-config", cfg, "-json")
	is.NoErr(err)
	var deliveries []struct {
		State     string
		Attempts  int
		LastError string `json:"last_error"`
	}
	is.NoErr(json.Unmarshal([]byte(out), &deliveries))
	is.Equal(len(deliveries), 2)
	t.Logf("the delivery made during the stop: %+v", deliveries[0])
	is.Equal(deliveries[0].Attempts, 0) // handed back unsent: no attempt counted
	is.Equal(deliveries[0].State, "pending")
	is.True(!strings.Contains(logs.String(), "connection refused"))

	// The next start sends it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	logs2, done2 := serveIn(ctx2, cfg, noenv)
	waitFor(t, "the call handed back to reach the inbox at the next start", logs2.String, answered(2))
	cancel2()
	<-done2
}

// TestSecondSignalEndsTheStop: a second SIGINT during a stop that waits for a
// call in flight (Ctrl-C pressed again in hookd dev's terminal) ends hookd at
// once, as the signal's default does, where the stop would wait out its grace.
func TestSecondSignalEndsTheStop(t *testing.T) {
	is := is.New(t)
	hanging, called := hangingReceiver(t)
	cfg := testConfig(t, fastDelivery+"timeout = \"1m\"\n")
	p := startProcess(t, "serve", "-config", cfg)
	webhookNotified(t, cfg, p.url, hanging.URL)
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatalf("the call did not reach the receiver within 10s; log:\n%s", p.logs)
	}

	is.NoErr(p.cmd.Process.Signal(syscall.SIGINT))
	waitFor(t, "hookd serve to log \"shutting down\"", p.logs.String, func() bool {
		return strings.Contains(p.logs.String(), `"msg":"shutting down"`)
	})
	again := time.Now()
	is.NoErr(p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("hookd did not end within 5s of a second SIGINT (its stop gives the call 10s); log:\n%s", p.logs)
	}
	t.Logf("ended %s after the second signal", time.Since(again).Round(time.Millisecond))
	is.True(!p.cmd.ProcessState.Success()) // ended by the signal, not a clean stop
	is.True(!strings.Contains(p.logs.String(), `"msg":"stopped"`))
	// (The call goes out again once its lease ends: TestCrashLosesNoAcknowledgedEvent.)
}

// shortStop shortens hookd serve's stop (stopTimes) to 1, 2 and 3 s for the test.
func shortStop(t *testing.T) {
	saved := stopTimes
	stopTimes.drain, stopTimes.cut, stopTimes.end = time.Second, 2*time.Second, 3*time.Second
	t.Cleanup(func() { stopTimes = saved })
}

// servedIn is serveIn, once hookd serve listens: its log, its end, and its URL.
func servedIn(t *testing.T, ctx context.Context, cfg string) (*logWatcher, <-chan error, string) {
	t.Helper()
	logs, done := serveIn(ctx, cfg, noenv)
	select {
	case base := <-logs.listening:
		return logs, done, base
	case err := <-done:
		t.Fatalf("hookd serve ended before listening: %v; log:\n%s", err, logs)
	case <-time.After(10 * time.Second):
		t.Fatalf("hookd serve did not log \"listening\" within 10s; log:\n%s", logs)
	}
	return nil, nil, ""
}

// hangingReceiver is a receiver that answers no call until hookd gives it up,
// and tells of each call it gets (when the channel has room).
func hangingReceiver(t *testing.T) (*httptest.Server, <-chan struct{}) {
	called := make(chan struct{}, 4)
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case called <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	t.Cleanup(hanging.Close)
	return hanging, called
}

// stopRecord is the record of webhookNotified's webhook.
const stopRecord = "0000-0002-7253-3645"

// webhookNotified registers, for a new client (client add with more flags), an
// ORCID-style webhook of stopRecord at target (as {target}/{iD}/updated), in the
// hookd serve at base of the configuration cfg, and notifies a change of it.
func webhookNotified(t *testing.T, cfg, base, target string, more ...string) {
	t.Helper()
	is := is.New(t)
	out, err := runCmd(t, append([]string{"client", "add", "-config", cfg, "-name", "owner", "-scopes", "/webhook", "-json"}, more...)...)
	is.NoErr(err) // client add
	var c credentials
	is.NoErr(json.Unmarshal([]byte(out), &c))
	res := put(t, base, "/"+stopRecord+"/webhook/"+httpapi.EscapeSegment(target+"/"+stopRecord+"/updated"), token(t, base, c.ClientID, c.ClientSecret))
	is.Equal(res.StatusCode, http.StatusCreated) // registered
	_, err = runCmd(t, "notify", "-config", cfg, stopRecord)
	is.NoErr(err) // notify
}

// logMessages are the messages of a JSON log's lines, in order.
func logMessages(t *testing.T, logs string) []string {
	t.Helper()
	is := is.New(t)
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		is.NoErr(json.Unmarshal([]byte(line), &rec)) // a JSON line
		msgs = append(msgs, rec.Msg)
	}
	return msgs
}
