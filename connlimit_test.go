package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
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
	status, _, body := c.get(tb, "/metrics")
	if status != http.StatusOK {
		tb.Fatalf("GET /metrics: %d %s", status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	return value(fams, "hookd_http_connections_open", "", ""), value(fams, "hookd_http_connections_refused_total", "", "")
}

// TestServeConnectionLimit: hookd holds at most http.max_connections open at once.
// One more is answered 503 at once, with Retry-After and a line naming the
// setting, and closed (not left waiting without a word in the kernel's queue),
// also when its client sent its request first, and also for /healthz; one
// that sends nothing is closed. The connections open go on being served. Once one closes, a new one is taken.
// The metrics count the connections open and those refused, and the log says
// so once, not once a connection.
func TestServeConnectionLimit(t *testing.T) {
	is := is.New(t)
	const limit = 3
	d := startDaemon(t, testConfig(t, "max_connections = 3"))
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
	for _, c := range held[1:] {
		status, _, _ := c.get(t, "/healthz")
		is.Equal(status, http.StatusOK) // an open connection is served at the limit
	}
	open, counted := first.connMetrics(t)
	is.Equal(open, float64(limit))      // the connections open
	is.Equal(counted, float64(refused)) // each refusal counted

	// One closes: its place is taken by the next (once the daemon has seen the close).
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
	open, counted = first.connMetrics(t)
	is.Equal(open, float64(limit)) // the new one in the closed one's place
	is.Equal(counted, float64(refused))

	is.NoErr(d.stop())
	logs := d.stderr.String()
	is.Equal(strings.Count(logs, "HTTP connections refused"), 2)                                 // one line at the first refusal, one for the rest at the stop
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
	d := startDaemon(t, testConfig(t, "max_connections = 2"))
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
	d := startDaemon(t, testConfig(t, "max_connections = 1"))
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
	status, _, _ := held.get(t, "/healthz")
	is.Equal(status, http.StatusOK) // the connection open is served on
}
