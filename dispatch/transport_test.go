package dispatch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// countingServer is a real HTTP server that counts the connections it accepted
// and the ones open now.
type countingServer struct {
	*httptest.Server
	accepted, open atomic.Int64
}

func newCountingServer(tb testing.TB, h http.HandlerFunc, idleTimeout time.Duration) *countingServer {
	s := &countingServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.IdleTimeout = idleTimeout
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.accepted.Add(1)
			s.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.open.Add(-1)
		}
	}
	s.Start()
	tb.Cleanup(s.Close)
	return s
}

// testTransport is the delivery clients' transport with a plain dialer.
func testTransport(perHost int, timeout, idleFor time.Duration) *transport {
	d := &net.Dialer{Timeout: time.Second}
	next := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true}
	return newTransport(d.DialContext, next, perHost, 64, timeout, idleFor)
}

// idleCount is how many idle connections t keeps.
func (t *transport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idle
}

// post sends body to url through t and returns the status and the whole answer.
func post(t *transport, ctx context.Context, url, body string) (int, string, error) {
	c := &http.Client{Transport: t}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestTransportKeepsConnections: calls in a row to one host go over one
// connection, whatever the shape of the answers' bodies (none, a length, chunks),
// and the server reads each request whole.
func TestTransportKeepsConnections(t *testing.T) {
	is := is.New(t)
	var got []string
	var mu sync.Mutex
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		switch r.URL.Path {
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunks":
			io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "second")
		}
	}, 0)
	tr := testTransport(8, 5*time.Second, time.Minute)
	for range 3 {
		for _, path := range []string{"/none", "/length", "/chunks"} {
			status, b, err := post(tr, context.Background(), srv.URL+path, "call "+path)
			is.NoErr(err)
			switch path {
			case "/none":
				is.Equal(status, http.StatusNoContent)
				is.Equal(b, "")
			case "/length":
				is.Equal(b, "hello")
			case "/chunks":
				is.Equal(b, "first second")
			}
		}
	}
	is.Equal(srv.accepted.Load(), int64(1)) // one connection for all nine calls
	is.Equal(len(got), 9)
	is.Equal(got[2], "POST /chunks call /chunks")
	is.Equal(tr.idleCount(), 1)
}

// TestTransportAfterServerClosedIdle: a server that closes an idle keep-alive
// connection (its idle timeout) costs the next call nothing: the transport sees
// the connection closed and dials a new one, and the call succeeds.
func TestTransportAfterServerClosedIdle(t *testing.T) {
	is := is.New(t)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}, 50*time.Millisecond)
	tr := testTransport(8, 5*time.Second, time.Minute)
	for range 3 {
		status, _, err := post(tr, context.Background(), srv.URL, "")
		is.NoErr(err)
		is.Equal(status, http.StatusNoContent)
		deadline := time.Now().Add(5 * time.Second)
		for srv.open.Load() > 0 && time.Now().Before(deadline) { // the server closes it
			time.Sleep(10 * time.Millisecond)
		}
		is.Equal(srv.open.Load(), int64(0))
	}
	is.Equal(srv.accepted.Load(), int64(3))
}

// TestTransportPerHost: no more than perHost calls, and so connections, to one
// host at once; the others wait for a place and then go through.
func TestTransportPerHost(t *testing.T) {
	is := is.New(t)
	var running, most atomic.Int64
	release := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		running.Add(-1)
		w.WriteHeader(http.StatusNoContent)
	}, 0)
	tr := testTransport(2, 5*time.Second, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := post(tr, context.Background(), srv.URL, "")
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for running.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // time for a third call to get through, if it could
	is.Equal(running.Load(), int64(2))
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		is.NoErr(err)
	}
	is.Equal(most.Load(), int64(2))
	is.Equal(srv.accepted.Load(), int64(2))
}

// TestTransportTimeout: a server that never answers, or sends its body a byte at
// a time, ends the call at the timeout, body included; and a call whose context
// is cancelled ends at once with the context's error.
func TestTransportTimeout(t *testing.T) {
	is := is.New(t)
	stop := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/trickle" {
			w.WriteHeader(http.StatusOK)
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-stop:
					return
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		if r.URL.Path == "/ok" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		select { // hangs
		case <-stop:
		case <-r.Context().Done():
		}
	}, 0)
	defer close(stop)
	tr := testTransport(1, 300*time.Millisecond, time.Minute) // a place left taken would block the next call

	t0 := time.Now()
	_, _, err := post(tr, context.Background(), srv.URL+"/hang", "")
	is.True(err != nil)
	is.True(isTimeout(err))
	is.Equal(describe(err, tr.timeout), "timeout after 300ms")
	is.True(time.Since(t0) < 3*time.Second)

	t0 = time.Now()
	status, b, err := post(tr, context.Background(), srv.URL+"/trickle", "")
	is.Equal(status, http.StatusOK)
	is.True(isTimeout(err)) // the body's read ended by the deadline
	is.True(len(b) > 0)
	is.True(time.Since(t0) < 3*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 = time.Now()
	_, _, err = post(tr, ctx, srv.URL+"/hang", "")
	is.True(errors.Is(err, context.Canceled))
	is.True(time.Since(t0) < 250*time.Millisecond) // before the timeout
	is.Equal(tr.idleCount(), 0)                    // none of these connections is kept

	// A call waiting for the host's one place ends with its context.
	held := make(chan error, 1)
	go func() {
		_, _, err := post(tr, context.Background(), srv.URL+"/hang", "")
		held <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err = post(tr, ctx, srv.URL+"/ok", "")
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.True(isTimeout(<-held))

	// Every call above gave its place back: the next goes through, and its
	// connection is kept.
	status, _, err = post(tr, context.Background(), srv.URL+"/ok", "")
	is.NoErr(err)
	is.Equal(status, http.StatusNoContent)
	is.Equal(tr.idleCount(), 1)
}

// TestTransportKeepsIdleBeyondTimeout: a connection idle for longer than the
// call timeout (but less than idleFor) carries the next call.
func TestTransportKeepsIdleBeyondTimeout(t *testing.T) {
	is := is.New(t)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, 0)
	tr := testTransport(8, 100*time.Millisecond, time.Minute)
	for range 2 {
		_, _, err := post(tr, context.Background(), srv.URL, "")
		is.NoErr(err)
		time.Sleep(250 * time.Millisecond)
	}
	is.Equal(srv.accepted.Load(), int64(1))
}

// TestTransportDialError: a host that refuses connections fails each call at
// once, and gives its place back each time.
func TestTransportDialError(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	tr := testTransport(1, 5*time.Second, time.Minute)
	for range 3 {
		t0 := time.Now()
		_, _, err := post(tr, context.Background(), "http://"+addr+"/", "")
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "connection refused"))
		is.True(time.Since(t0) < 2*time.Second)
	}
	tr.mu.Lock()
	is.Equal(len(tr.hosts), 0) // forgotten
	tr.mu.Unlock()
}

// TestTransportRefusesUpgrade: an answer 101 (a switch to another protocol that
// hookd never asks for) fails the call and its connection is not used again.
func TestTransportRefusesUpgrade(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
				io.Copy(io.Discard, c)
			}()
		}
	}()
	tr := testTransport(8, 2*time.Second, time.Minute)
	for range 2 {
		_, _, err := post(tr, context.Background(), "http://"+ln.Addr().String()+"/", "")
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "unrequested 101 Switching Protocols"))
		is.Equal(tr.idleCount(), 0)
	}
	is.Equal(accepted.Load(), int64(2))
}

// TestTransportBadAnswers: headers past the limit fail the call; a body closed
// before its end closes its connection instead of reading on; an answer that
// says "Connection: close" is not kept.
func TestTransportBadAnswers(t *testing.T) {
	is := is.New(t)
	chunk := bytes.Repeat([]byte("z"), 32<<10)
	stop := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge":
			for i := range 300 {
				w.Header().Set("X-Junk-"+string(rune('a'+i%26))+strings.Repeat("k", i), strings.Repeat("y", 4000))
			}
			w.WriteHeader(http.StatusOK)
		case "/endless":
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusNoContent)
		}
	}, 0)
	defer close(stop)
	tr := testTransport(8, 5*time.Second, time.Minute)
	c := &http.Client{Transport: tr}

	_, err := c.Post(srv.URL+"/huge", "", nil)
	is.True(errors.Is(err, errHeaderTooLong))

	resp, err := c.Post(srv.URL+"/endless", "", nil)
	is.NoErr(err)
	n, err := io.ReadFull(resp.Body, make([]byte, 100<<10))
	is.NoErr(err)
	is.Equal(n, 100<<10)
	t0 := time.Now()
	is.NoErr(resp.Body.Close())
	is.True(time.Since(t0) < time.Second) // it did not read the endless rest
	is.Equal(tr.idleCount(), 0)

	before := srv.accepted.Load()
	for range 2 {
		status, _, err := post(tr, context.Background(), srv.URL+"/close", "")
		is.NoErr(err)
		is.Equal(status, http.StatusNoContent)
		is.Equal(tr.idleCount(), 0)
	}
	is.Equal(srv.accepted.Load()-before, int64(2)) // a connection each
}

// TestTransportClosesIdle: a connection idle for idleFor is closed, and its host
// forgotten; CloseIdleConnections closes the others at once.
func TestTransportClosesIdle(t *testing.T) {
	is := is.New(t)
	a := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, 0)
	b := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, 0)
	tr := testTransport(8, 5*time.Second, 100*time.Millisecond)
	_, _, err := post(tr, context.Background(), a.URL, "")
	is.NoErr(err)
	deadline := time.Now().Add(5 * time.Second)
	for a.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	is.Equal(a.open.Load(), int64(0)) // closed by the transport (the server keeps it)
	tr.mu.Lock()
	is.Equal(len(tr.hosts), 0)
	is.Equal(tr.idle, 0)
	tr.mu.Unlock()

	tr.mu.Lock()
	tr.idleFor = time.Hour
	tr.mu.Unlock()
	_, _, err = post(tr, context.Background(), b.URL, "")
	is.NoErr(err)
	is.Equal(b.open.Load(), int64(1))
	tr.CloseIdleConnections()
	deadline = time.Now().Add(5 * time.Second)
	for b.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	is.Equal(b.open.Load(), int64(0))
}

// TestTransportHTTPS: an https call goes through the standard transport, HTTP/2
// included, bounded by the same timeout.
func TestTransportHTTPS(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tr := testTransport(8, 300*time.Millisecond, time.Minute)
	tr.next.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	status, b, err := post(tr, context.Background(), srv.URL, "")
	is.NoErr(err)
	is.Equal(status, http.StatusOK)
	is.Equal(b, "HTTP/2.0")
	_, _, err = post(tr, context.Background(), srv.URL+"/hang", "")
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.Equal(describe(err, tr.timeout), "timeout after 300ms")
}
