package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// rawConn is a TCP connection to the daemon that sends requests by hand, so a
// test knows which connection each request takes.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(tb testing.TB, host string) *rawConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", host, err)
	}
	tb.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// get sends GET path on c and reads the answer: its status, Retry-After and body.
func (c *rawConn) get(tb testing.TB, path string) (status int, retryAfter, body string) {
	tb.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: hookd\r\n\r\n"); err != nil {
		tb.Fatalf("GET %s: write: %v", path, err)
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		tb.Fatalf("GET %s: read the answer: %v", path, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		tb.Fatalf("GET %s: read the body: %v", path, err)
	}
	return res.StatusCode, res.Header.Get("Retry-After"), string(b)
}

// connMetrics reads the connection metrics over c.
func (c *rawConn) connMetrics(tb testing.TB) (open, refused float64) {
	tb.Helper()
	fams := c.metrics(tb)
	return value(fams, "hookd_http_connections_open", "", ""), value(fams, "hookd_http_connections_refused_total", "", "")
}

// metrics reads the metrics over c.
func (c *rawConn) metrics(tb testing.TB) map[string]*dto.MetricFamily {
	tb.Helper()
	status, _, body := c.get(tb, "/metrics")
	if status != http.StatusOK {
		tb.Fatalf("GET /metrics: %d %s", status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	return fams
}

// holdUpload begins a request on c that stays under way until finishUpload: a
// POST to the inbox whose body, one byte, is not sent yet. Once hookd asks for
// the body (100 Continue), its handler is reading it: the connection is active,
// as one with a slow upload is.
func (c *rawConn) holdUpload(tb testing.TB) {
	tb.Helper()
	if _, err := io.WriteString(c, "POST /inbox/held/ HTTP/1.1\r\nHost: hookd\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"); err != nil {
		tb.Fatalf("POST /inbox/held/: write: %v", err)
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		tb.Fatalf("POST /inbox/held/: read the answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusContinue {
		tb.Fatalf("POST /inbox/held/: %d, not 100 Continue", res.StatusCode)
	}
}

// finishUpload sends the body of the request holdUpload began, and returns its
// answer's status.
func (c *rawConn) finishUpload(tb testing.TB) int {
	tb.Helper()
	if _, err := io.WriteString(c, "x"); err != nil {
		tb.Fatalf("POST /inbox/held/: write the body: %v", err)
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		tb.Fatalf("POST /inbox/held/: read the answer: %v", err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		tb.Fatalf("POST /inbox/held/: read the body: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// oneOpen returns a connection to the daemon at host once the daemon counts it
// alone open: the tests' client keeps the connection it checked the daemon with
// until it is told to close it, and the daemon sees the close a moment later.
func oneOpen(tb testing.TB, host string) *rawConn {
	tb.Helper()
	http.DefaultClient.CloseIdleConnections()
	c := dialRaw(tb, host)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if open, _ := c.connMetrics(tb); open == 1 {
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatal("the tests' client kept its connection open")
		}
	}
}

// TestServeConnectionLimit: hookd holds at most http.max_connections open at once.
// One more, while each of them has a request under way (an upload), is answered
// 503 at once, with Retry-After and a line naming the setting, and closed (not
// left waiting without a word in the kernel's queue), also when its client sent
// its request first, and also for /healthz; one that sends nothing is closed.
// The connections open go on being served. Once one closes, a new one is taken.
// The metrics count the connections open and those refused, and the log says
// so once, not once a connection.
func TestServeConnectionLimit(t *testing.T) {
	is := is.New(t)
	const limit = 3
	d := startDaemon(t, testConfig(t, "max_connections = 3\n[inbox]\nenabled = true"))
	u, err := url.Parse(d.url)
	is.NoErr(err)
	host := u.Host
	// Starting, the tests' client kept a connection open: wait until it is gone
	// and the daemon counts one connection, this one.
	http.DefaultClient.CloseIdleConnections()
	first := dialRaw(t, host)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		open, refused := first.connMetrics(t)
		is.Equal(refused, 0.0) // none refused yet
		if open == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon counts %v connections open, not 1", open)
		}
	}
	held := []*rawConn{first}
	for len(held) < limit {
		c := dialRaw(t, host)
		status, _, _ := c.get(t, "/healthz")
		is.Equal(status, http.StatusOK) // within the limit
		held = append(held, c)
	}
	// Each with a request under way: an idle one would be closed to take the new
	// one (TestServeConnectionLimitClosesIdle).
	for _, c := range held {
		c.holdUpload(t)
	}

	refused := 0
	// One more, its request sent before anything is read: a 503, then the close.
	c := dialRaw(t, host)
	status, retryAfter, body := c.get(t, "/healthz")
	refused++
	is.Equal(status, http.StatusServiceUnavailable) // refused at the limit
	is.Equal(retryAfter, "5")                       // with when to try again
	is.True(strings.Contains(body, "3 connections open, its limit (http.max_connections)"))
	_, err = c.r.ReadByte()
	is.Equal(err, io.EOF) // and closed
	// As a client sees it.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Get(d.url + "/api/notifications/v1/webhooks")
	is.NoErr(err) // an answer, not a hang or a reset
	res.Body.Close()
	refused++
	is.Equal(res.StatusCode, http.StatusServiceUnavailable)

	// One that sends nothing is closed without an answer, in a second: a refusal
	// holds nothing for long.
	silent := dialRaw(t, host)
	b, err := io.ReadAll(silent)
	refused++
	is.NoErr(err)       // closed, not reset
	is.Equal(len(b), 0) // without an answer

	// The connections open are served on.
	for _, c := range held {
		is.Equal(c.finishUpload(t), http.StatusNoContent) // the upload under way is answered
	}
	for _, c := range held[1:] {
		status, _, _ := c.get(t, "/healthz")
		is.Equal(status, http.StatusOK) // an open connection is served at the limit
	}
	open, counted := first.connMetrics(t)
	is.Equal(open, float64(limit))      // the connections open
	is.Equal(counted, float64(refused)) // each refusal counted

	// One closes: its place is taken by the next (once the daemon has seen the close).
	for _, c := range held {
		c.holdUpload(t)
	}
	held[1].Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c := dialRaw(t, host)
		status, _, _ := c.get(t, "/healthz")
		if status == http.StatusOK {
			break
		}
		refused++
		is.Equal(status, http.StatusServiceUnavailable)
		if time.Now().After(deadline) {
			t.Fatal("no connection taken within 5s after one closed")
		}
	}
	for _, c := range []*rawConn{held[0], held[2]} {
		is.Equal(c.finishUpload(t), http.StatusNoContent)
	}
	open, counted = first.connMetrics(t)
	is.Equal(open, float64(limit)) // the new one in the closed one's place
	is.Equal(counted, float64(refused))

	is.NoErr(d.stop())
	logs := d.stderr.String()
	is.Equal(strings.Count(logs, "HTTP connections refused"), 2)                                 // one line at the first refusal, one for the rest at the stop
	is.True(!strings.Contains(logs, "HTTP connections closed idle"))                             // none closed: none was idle
	is.True(strings.Contains(logs, `"max_connections":3,"refused":1}`))                          // the first
	is.True(strings.Contains(logs, fmt.Sprintf(`"max_connections":3,"refused":%d}`, refused-1))) // the others
}

// TestServeConnectionRefusalsLogged: the refusals that follow a warning are told
// in the log a minute after it (shortened here) even when no refusal comes then,
// and those not yet told when hookd stops are told before it stops: the log
// counts every refusal, not only a burst's first.
func TestServeConnectionRefusalsLogged(t *testing.T) {
	is := is.New(t)
	saved := refuseWarnEvery
	refuseWarnEvery = time.Second
	t.Cleanup(func() { refuseWarnEvery = saved })
	d := startDaemon(t, testConfig(t, "max_connections = 2\n[inbox]\nenabled = true"))
	u, err := url.Parse(d.url)
	is.NoErr(err)
	host := u.Host
	http.DefaultClient.CloseIdleConnections()
	first := dialRaw(t, host)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if open, _ := first.connMetrics(t); open == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tests' client kept its connection open")
		}
	}
	second := dialRaw(t, host)
	status, _, _ := second.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // within the limit
	first.holdUpload(t)             // both busy: an idle one would be closed for the next
	second.holdUpload(t)
	refuse := func() {
		t.Helper()
		status, _, _ := dialRaw(t, host).get(t, "/healthz")
		is.Equal(status, http.StatusServiceUnavailable) // past the limit
	}
	lines := func() []string {
		var found []string
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			if strings.Contains(line, "HTTP connections refused") {
				_, counts, _ := strings.Cut(line, `"max_connections":2,`)
				found = append(found, strings.TrimSuffix(counts, "}"))
			}
		}
		return found
	}

	refuse() // told at once
	refuse() // these two within the second: told when it is over
	refuse()
	is.Equal(lines(), []string{`"refused":1`})
	for deadline := time.Now().Add(5 * time.Second); len(lines()) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the refusals after the first are not in the log 5s later: %q", lines())
		}
	}
	is.Equal(lines(), []string{`"refused":1`, `"refused":2`})

	refuse() // within a second of that line: told at the stop
	is.Equal(first.finishUpload(t), http.StatusNoContent)
	is.Equal(second.finishUpload(t), http.StatusNoContent)
	is.NoErr(d.stop())
	is.Equal(lines(), []string{`"refused":1`, `"refused":2`, `"refused":1`})
	logs := d.stderr.String()
	is.True(strings.LastIndex(logs, "HTTP connections refused") < strings.LastIndex(logs, `"msg":"stopped"`)) // before the run's last line
}

// TestServeConnectionRefusalReadsBody: a connection refused while it sends a
// request with a large body, an events batch of 200 KB, can send it whole and
// then reads its 503: it is not reset halfway, which its client would report as
// a broken pipe or a reset instead of the answer.
func TestServeConnectionRefusalReadsBody(t *testing.T) {
	is := is.New(t)
	d := startDaemon(t, testConfig(t, "max_connections = 1\n[inbox]\nenabled = true"))
	u, err := url.Parse(d.url)
	is.NoErr(err)
	host := u.Host
	http.DefaultClient.CloseIdleConnections()
	var held *rawConn
	for deadline := time.Now().Add(5 * time.Second); held == nil; time.Sleep(20 * time.Millisecond) {
		c := dialRaw(t, host)
		if status, _, _ := c.get(t, "/healthz"); status == http.StatusOK {
			held = c // the one connection
		} else if time.Now().After(deadline) {
			t.Fatal("the tests' client kept its connection open")
		}
	}
	held.holdUpload(t) // busy: an idle one would be closed for the next

	const size = 200_000
	c := dialRaw(t, host)
	_, err = fmt.Fprintf(c, "POST /api/notifications/v1/events HTTP/1.1\r\nHost: hookd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	is.NoErr(err)
	chunk := strings.Repeat(" ", 10_000)
	for sent := 0; sent < size; sent += len(chunk) {
		_, err := io.WriteString(c, chunk) // as a client on a network sends it, a piece at a time
		is.NoErr(err)                      // not reset while it sends
		time.Sleep(10 * time.Millisecond)
	}
	res, err := http.ReadResponse(c.r, nil)
	is.NoErr(err)
	b, err := io.ReadAll(res.Body)
	is.NoErr(err)
	is.Equal(res.StatusCode, http.StatusServiceUnavailable) // the refusal
	is.Equal(res.Header.Get("Retry-After"), "5")
	is.True(strings.Contains(string(b), "(http.max_connections)"))
	_, err = c.r.ReadByte()
	is.Equal(err, io.EOF) // then closed
	is.Equal(held.finishUpload(t), http.StatusNoContent)
	status, _, _ := held.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // the connection open is served on
}

// TestServeConnectionLimitClosesIdle: at http.max_connections, idle keep-alive
// connections do not shut a new one out: the one idle longest is closed (its
// client reads the close) and the new one served in its place; the others are
// served on. The metrics count the connections so closed and none refused, the
// connections open stay exact, and the log says so once, not once a connection.
// (Idle is for longer than idleQuietAfter, shortened here.)
func TestServeConnectionLimitClosesIdle(t *testing.T) {
	is := is.New(t)
	saved := idleQuietAfter
	idleQuietAfter = 300 * time.Millisecond
	t.Cleanup(func() { idleQuietAfter = saved })
	d := startDaemon(t, testConfig(t, "max_connections = 3"))
	u, err := url.Parse(d.url)
	is.NoErr(err)
	host := u.Host
	first := oneOpen(t, host) // idle longest: its last request came first
	time.Sleep(idleMarked)
	idle := []*rawConn{first}
	for len(idle) < 3 {
		c := dialRaw(t, host)
		status, _, _ := c.get(t, "/healthz")
		is.Equal(status, http.StatusOK) // within the limit
		idle = append(idle, c)
	}
	time.Sleep(idleQuietAfter) // each idle long enough to be closed

	c := dialRaw(t, host)
	status, _, _ := c.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // served at the limit
	time.Sleep(idleMarked)          // idle before the others' next requests
	_, err = first.r.ReadByte()
	is.Equal(err, io.EOF) // the one idle longest closed, not reset
	for _, c := range idle[1:] {
		status, _, _ := c.get(t, "/healthz")
		is.Equal(status, http.StatusOK) // the others served on
	}

	// The metrics, read on one more, which takes c's place, idle longest now.
	time.Sleep(idleQuietAfter)
	m := dialRaw(t, host)
	fams := m.metrics(t)
	is.Equal(value(fams, "hookd_http_connections_open", "", ""), 3.0)
	is.Equal(value(fams, "hookd_http_connections_refused_total", "", ""), 0.0)
	is.Equal(value(fams, "hookd_http_connections_closed_idle_total", "", ""), 2.0)
	_, err = c.r.ReadByte()
	is.Equal(err, io.EOF)

	// Once the others close, the one reading the metrics is counted alone: each
	// connection closed, by hookd or by its client, counted once.
	for _, c := range idle[1:] {
		c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		open, _ := m.connMetrics(t)
		if open == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon counts %v connections open, not 1", open)
		}
	}

	is.NoErr(d.stop())
	logs := d.stderr.String()
	is.Equal(strings.Count(logs, "HTTP connections closed idle"), 2) // at the first, and the second at the stop
	is.True(strings.Contains(logs, `"closed_idle":1,"max_connections":3,"refused":0}`))
	is.True(!strings.Contains(logs, "HTTP connections refused"))
}

// TestServeConnectionLimitClosesSilent: at http.max_connections, a connection
// accepted and silent for longer than silentNewAfter (a second; shortened here)
// is closed for a new one, as an idle one is; one accepted more recently is not,
// nor one that has sent part of its request's headers, on a new connection or a
// kept-alive one: with only those and busy ones open, the new one is refused.
func TestServeConnectionLimitClosesSilent(t *testing.T) {
	is := is.New(t)
	saved := silentNewAfter
	silentNewAfter = 500 * time.Millisecond
	t.Cleanup(func() { silentNewAfter = saved })
	d := startDaemon(t, testConfig(t, "max_connections = 4\n[inbox]\nenabled = true"))
	u, err := url.Parse(d.url)
	is.NoErr(err)
	host := u.Host
	busy := oneOpen(t, host)
	busy.holdUpload(t)

	silent := dialRaw(t, host)
	time.Sleep(50 * time.Millisecond) // accepted after silent
	slow := dialRaw(t, host)
	_, err = io.WriteString(slow, "GET /healthz HTTP/1.1\r\n") // headers begun
	is.NoErr(err)
	time.Sleep(silentNewAfter + 100*time.Millisecond)
	young := dialRaw(t, host)
	start := time.Now()

	c := dialRaw(t, host)
	status, _, _ := c.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // served at the limit
	b, err := io.ReadAll(silent)
	is.NoErr(err)       // the silent one closed, not reset
	is.Equal(len(b), 0) // without an answer
	// c begins its next request's headers, and one more comes: the slow ones
	// sending their headers, the young one and the busy one are all kept.
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\n")
	is.NoErr(err)
	time.Sleep(idleMarked) // read by hookd
	status, _, _ = dialRaw(t, host).get(t, "/healthz")
	is.Equal(status, http.StatusServiceUnavailable) // refused: none was quiet
	if time.Since(start) >= silentNewAfter {
		t.Fatalf("the young connection was %v old, not younger than %v: too slow to tell", time.Since(start), silentNewAfter)
	}

	for _, c := range []*rawConn{slow, c} {
		_, err := io.WriteString(c, "Host: hookd\r\n\r\n")
		is.NoErr(err)
		res, err := http.ReadResponse(c.r, nil)
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, http.StatusOK) // its request served whole
	}
	status, _, _ = young.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // still open
	is.Equal(busy.finishUpload(t), http.StatusNoContent)
	is.NoErr(d.stop())
}

// TestConnLimitAccounting: the connections connLimit counts open stay exact
// when it closes idle ones for new ones (which http.Server closes again), when
// a handler hijacks one, and when their clients close them: none is left
// counted, or in the connections it follows, once all are closed. A hijacked
// one, or one whose request is under way, is never closed for a new one. (Idle
// ones are closed however briefly idle: idleQuietAfter is 0 here.)
func TestConnLimitAccounting(t *testing.T) {
	is := is.New(t)
	saved := idleQuietAfter
	idleQuietAfter = 0
	t.Cleanup(func() { idleQuietAfter = saved })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	count := &testConnCount{}
	l := limitConns(ln, 3, count, slog.New(slog.DiscardHandler))
	release := make(chan struct{})
	hijacked := make(chan net.Conn, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) { <-release })
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		buf.Flush()
		hijacked <- c
	})
	srv := &http.Server{Handler: mux, ConnState: l.ConnState}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	host := ln.Addr().String()

	// Every one with a request held in its handler: the next is refused.
	var held []*rawConn
	for range 3 {
		c := dialRaw(t, host)
		_, err := io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: test\r\n\r\n")
		is.NoErr(err)
		held = append(held, c)
	}
	for deadline := time.Now().Add(5 * time.Second); l.open.Load() < 3 || !allActive(l); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held requests did not reach their handler")
		}
	}
	status, _, _ := dialRaw(t, host).get(t, "/")
	is.Equal(status, http.StatusServiceUnavailable) // refused, none idle
	close(release)
	for _, c := range held {
		res, err := http.ReadResponse(c.r, nil)
		is.NoErr(err)
		res.Body.Close()
	}
	// Now idle; one hijacked, and new ones take the idle ones' places.
	h := dialRaw(t, host)
	status, _, _ = h.get(t, "/hijack") // closes the idle one of held, the oldest
	is.Equal(status, http.StatusOK)
	server := <-hijacked
	for range 4 {
		for deadline := time.Now().Add(5 * time.Second); !allIdle(l); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the connections served are not idle 5s later")
			}
		}
		status, _, _ := dialRaw(t, host).get(t, "/")
		is.Equal(status, http.StatusOK) // in an idle one's place, never the hijacked one's
	}
	_, err = h.Write([]byte("x"))
	is.NoErr(err)
	b := make([]byte, 1)
	_, err = server.Read(b)
	is.NoErr(err) // the hijacked one still open
	is.Equal(count.closedIdle.Load(), int64(5))
	is.Equal(count.refused.Load(), int64(1))

	server.Close()
	server.Close() // a second close counts nothing
	is.NoErr(srv.Close())
	is.Equal(<-served, http.ErrServerClosed)
	for deadline := time.Now().Add(5 * time.Second); l.open.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted open after all closed", l.open.Load())
		}
	}
	is.Equal(count.open.Load(), int64(0)) // the gauge
	l.mu.Lock()
	defer l.mu.Unlock()
	is.Equal(len(l.conns), 0) // none followed
}

// allActive says whether every connection l follows has a request under way.
func allActive(l *connLimit) bool { return allIn(l, http.StateActive) }

// allIdle says whether every connection l follows is idle.
func allIdle(l *connLimit) bool { return allIn(l, http.StateIdle) }

func allIn(l *connLimit, state http.ConnState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.state != state {
			return false
		}
	}
	return true
}

// idleMarked is ample time for hookd to take a connection for idle once its
// client has read the answer (it does so a moment after sending it, which may
// be after it answered another connection's later request), or to read what a
// client sent.
const idleMarked = 100 * time.Millisecond

// testConnCount counts as metrics.Metrics does.
type testConnCount struct{ open, refused, closedIdle atomic.Int64 }

func (c *testConnCount) ConnOpened()     { c.open.Add(1) }
func (c *testConnCount) ConnClosed()     { c.open.Add(-1) }
func (c *testConnCount) ConnRefused()    { c.refused.Add(1) }
func (c *testConnCount) ConnClosedIdle() { c.closedIdle.Add(1) }

// TestServeConnectionLimitClosesStalledRequest: a kept-alive connection that
// sends the first bytes of its next request and no more holds no place against
// a new one for longer than a request's headers may take (readHeaderTimeout;
// shortened here): net/http waits for a request's first 4 bytes as long as for
// an idle one's next request, 2 minutes, so without this a byte after each
// request kept every connection out of reach. At the bound the one stalled
// longest is closed for the new one, and one whose request goes on is served.
func TestServeConnectionLimitClosesStalledRequest(t *testing.T) {
	is := is.New(t)
	saved := readHeaderTimeout
	readHeaderTimeout = 500 * time.Millisecond
	t.Cleanup(func() { readHeaderTimeout = saved })
	d := startDaemon(t, testConfig(t, "max_connections = 2"))
	u, err := url.Parse(d.url)
	is.NoErr(err)
	host := u.Host
	first := oneOpen(t, host)
	time.Sleep(idleMarked) // idle before the other
	second := dialRaw(t, host)
	status, _, _ := second.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // within the limit
	for _, c := range []*rawConn{first, second} {
		_, err := io.WriteString(c, "GET") // its next request begun, and stalled
		is.NoErr(err)
		time.Sleep(idleMarked)
	}
	time.Sleep(readHeaderTimeout) // longer than its headers may take

	c := dialRaw(t, host)
	status, _, _ = c.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // served at the limit, in the place of…
	b, err := io.ReadAll(first)
	is.NoErr(err)       // …the one stalled longest, closed, not reset
	is.Equal(len(b), 0) // without an answer
	_, err = io.WriteString(second, " /healthz HTTP/1.1\r\nHost: hookd\r\n\r\n")
	is.NoErr(err)
	res, err := http.ReadResponse(second.r, nil)
	is.NoErr(err)
	res.Body.Close()
	is.Equal(res.StatusCode, http.StatusOK) // the other's request served whole
	is.NoErr(d.stop())
}

// TestConnLimitClosesIdleDropsRequest: a request that comes on an idle
// connection just as it is closed for a new one is dropped unread, as at an idle
// timeout: never carried out without its answer reaching the client, which
// would take the request for failed and might send it again. New connections
// come at the bound without pause, and idle ones are closed however briefly
// idle (idleQuietAfter 0), so a client's keep-alive connection is closed
// between its requests again and again.
func TestConnLimitClosesIdleDropsRequest(t *testing.T) {
	saved := idleQuietAfter
	idleQuietAfter = 0
	t.Cleanup(func() { idleQuietAfter = saved })
	f := keepAliveUnderFlood(t)
	lost := 0
	for _, id := range f.failed {
		if _, ok := f.carried.Load(id); ok {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of the %d requests not answered were carried out", lost, len(f.failed))
	}
}

// TestConnLimitSparesBusyKeepAlive: at the bound, with new connections coming
// without pause, a client sending request after request on its keep-alive
// connection has each answered: its connection, idle for a moment between
// them, is not closed for a new one, which is refused instead.
func TestConnLimitSparesBusyKeepAlive(t *testing.T) {
	f := keepAliveUnderFlood(t)
	if len(f.failed) > 0 || f.statuses[http.StatusOK] != f.sent {
		t.Fatalf("of %d requests, %d not answered, and answers by status %v", f.sent, len(f.failed), f.statuses)
	}
}

// floodResult is what keepAliveUnderFlood saw.
type floodResult struct {
	sent     int
	statuses map[int]int // the answers by status
	failed   []string    // the X-Id of each request not answered (reset or closed)
	carried  *sync.Map   // the X-Id of each request the handler was called for
}

// keepAliveUnderFlood serves with connLimit at a bound of 2 on 127.0.0.1, and
// for 2 s, or until 30 of them fail, sends requests one after another with a
// client that keeps one connection alive, while four others open new
// connections without pause, each for one request.
func keepAliveUnderFlood(t *testing.T) floodResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitConns(ln, 2, &testConnCount{}, slog.New(slog.DiscardHandler))
	f := floodResult{statuses: map[int]int{}, carried: &sync.Map{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Id"); id != "" {
			f.carried.Store(id, true)
		}
	}), ConnState: l.ConnState}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	host := ln.Addr().String()
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	post := func() {
		id := fmt.Sprint(f.sent)
		f.sent++
		req, err := http.NewRequest(http.MethodPost, "http://"+host+"/", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Id", id)
		res, err := client.Do(req)
		if err != nil {
			f.failed = append(f.failed, id)
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		f.statuses[res.StatusCode]++
	}
	post() // its connection open before the others come

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", host, 5*time.Second)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
				io.Copy(io.Discard, c)
				c.Close()
			}
		})
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && len(f.failed) < 30; {
		post()
	}
	close(stop)
	wg.Wait()
	srv.Close()
	<-served
	t.Logf("%d requests sent, %d not answered, answers by status %v", f.sent, len(f.failed), f.statuses)
	return f
}

// TestConnLimitWarnsOfUnanswered: a connection refused while refusingMax
// refusals are under way is closed without an answer, and the log's line says
// so, counting those apart from the ones answered 503, not that each is
// answered 503.
func TestConnLimitWarnsOfUnanswered(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	logs := &safeBuffer{}
	count := &testConnCount{}
	l := limitConns(ln, 1, count, slog.New(slog.NewJSONHandler(logs, nil)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ConnState: l.ConnState}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	host := ln.Addr().String()

	// The one connection open, with its request under way (headers not whole).
	held := dialRaw(t, host)
	_, err = io.WriteString(held, "GET / HTTP/1.1\r\n")
	is.NoErr(err)
	for deadline := time.Now().Add(5 * time.Second); count.open.Load() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first connection was not taken")
		}
	}
	time.Sleep(idleMarked)
	// One refused and answered 503, then, with every refusal slot taken, two
	// closed without an answer.
	refused := dialRaw(t, host)
	status, _, _ := refused.get(t, "/")
	is.Equal(status, http.StatusServiceUnavailable)
	refused.Close() // its refusal's slot freed
	for range refusingMax {
		l.refusing <- struct{}{}
	}
	for range 2 {
		c := dialRaw(t, host)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
		b, _ := io.ReadAll(c)
		is.Equal(string(b), "") // closed without an answer
	}
	for range refusingMax {
		<-l.refusing
	}
	is.NoErr(srv.Close())
	<-served
	got := logs.String()
	is.Equal(strings.Count(got, "HTTP connections refused"), 2)                                                        // the first, and the rest at the close
	is.True(strings.Contains(got, `"max_connections":1,"refused":1}`))                                                 // the first, answered
	is.True(strings.Contains(got, "while 256 refusals are under way one more is closed without an answer, as 2 were")) // the rest: said
	is.True(strings.Contains(got, `"max_connections":1,"refused":2,"unanswered":2}`))                                  // and counted
}
