package dispatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
	arrived := make(chan struct{}, 1)
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
		if r.URL.Path == "/hang-told" {
			arrived <- struct{}{}
		}
		select { // hangs
		case <-stop:
		case <-r.Context().Done():
		}
	}, 0)
	defer close(stop)
	tr := testTransport(1, 300*time.Millisecond, time.Minute) // a place left taken would block the next call

	_, _, err := post(tr, context.Background(), srv.URL+"/hang", "")
	is.True(err != nil)
	is.True(isTimeout(err)) // ended by the timeout (the hang has no end of its own)
	is.Equal(describe(err, tr.timeout, checkReceiver), "timeout after 300ms")

	status, b, err := post(tr, context.Background(), srv.URL+"/trickle", "")
	is.Equal(status, http.StatusOK)
	is.True(isTimeout(err)) // the body's read ended by the deadline
	is.True(len(b) > 0)

	// A call whose context is cancelled once the receiver has it ends: its
	// transport's timeout is too long to end it instead.
	long := testTransport(1, time.Hour, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, _, err = post(long, ctx, srv.URL+"/hang-told", "")
	is.True(errors.Is(err, context.Canceled)) // ended by the cancel
	is.Equal(long.idleCount(), 0)             // its connection is not kept
	is.Equal(tr.idleCount(), 0)               // nor any of the calls above

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
	// A call timeout of a second: a busy machine may take longer than 100 ms to
	// dial and answer, which would fail the call instead of testing the idle one.
	tr := testTransport(8, time.Second, time.Minute)
	_, _, err := post(tr, context.Background(), srv.URL, "")
	is.NoErr(err)
	time.Sleep(1200 * time.Millisecond) // idle past the call timeout
	_, _, err = post(tr, context.Background(), srv.URL, "")
	is.NoErr(err)
	is.Equal(srv.accepted.Load(), int64(1)) // over the idle connection
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
		_, _, err := post(tr, context.Background(), "http://"+addr+"/", "")
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "connection refused")) // refused, not timed out
	}
	tr.mu.Lock()
	is.Equal(len(tr.hosts), 0) // forgotten
	tr.mu.Unlock()
}

// TestTransportRefusesUpgrade: an answer 101 (a switch to another protocol that
// hookd never asks for) fails the call and its connection is not used again.
func TestTransportRefusesUpgrade(t *testing.T) {
	is := is.New(t)
	srv := newRawServer(t, func(c net.Conn, _ *http.Request, _ string) bool {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
		return false
	})
	tr := testTransport(8, 2*time.Second, time.Minute)
	for range 2 {
		_, _, err := post(tr, context.Background(), srv.url()+"/", "")
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "unrequested 101 Switching Protocols"))
		is.Equal(tr.idleCount(), 0)
	}
	is.Equal(srv.accepted.Load(), int64(2))
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
	// No call here ends by the timeout: a Close that read the endless rest would
	// never return.
	tr := testTransport(8, time.Hour, time.Minute)
	c := &http.Client{Transport: tr}

	_, err := c.Post(srv.URL+"/huge", "", nil)
	is.True(errors.Is(err, errHeaderTooLong))

	resp, err := c.Post(srv.URL+"/endless", "", nil)
	is.NoErr(err)
	n, err := io.ReadFull(resp.Body, make([]byte, 100<<10))
	is.NoErr(err)
	is.Equal(n, 100<<10)
	is.NoErr(resp.Body.Close()) // returns: it did not read the endless rest
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
	is.Equal(describe(err, tr.timeout, checkReceiver), "timeout after 300ms")
}

// rawServer answers the requests of each connection, one after the other, with
// whatever answer writes to the connection (exact bytes, so any framing); answer
// returns true to close the connection after it.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int64
	answer   func(c net.Conn, req *http.Request, body string) (closeAfter bool)
}

func newRawServer(tb testing.TB, answer func(c net.Conn, req *http.Request, body string) bool) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{ln: ln, answer: answer}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, err := io.ReadAll(req.Body)
					if err != nil || s.answer(c, req, string(b)) {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

// checkBooks fails t unless the transport's accounts balance with no call running:
// no slot taken, no caller counted, a host kept only for its idle connections, at
// most perHost of them, and the idle count their number.
func checkBooks(t *testing.T, tr *transport) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for key, h := range tr.hosts {
		if len(h.slots) != 0 || h.refs != 0 {
			t.Errorf("%s: %d slots taken, %d callers", key, len(h.slots), h.refs)
		}
		if len(h.idle) == 0 || len(h.idle) > tr.perHost {
			t.Errorf("%s: kept with %d idle connections", key, len(h.idle))
		}
		n += len(h.idle)
	}
	if n != tr.idle {
		t.Errorf("idle count %d, but %d idle connections", tr.idle, n)
	}
}

// TestTransportFraming: after each odd shape of answer (bytes past a 204, a
// Content-Length shorter or longer than the body, HTTP/1.0 with and without
// keep-alive, a body until the end of the stream, chunks with trailers, a 100
// Continue first, a 304 that announces a length, a second answer sent late), an
// ordinary call on the same host gets its own answer, whole: a connection is reused
// only when its next bytes can be the next answer.
func TestTransportFraming(t *testing.T) {
	shapes := map[string]string{
		"stray204":    "HTTP/1.1 204 No Content\r\n\r\njunk",
		"shortLength": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
		"longLength":  "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello",
		"http10":      "HTTP/1.0 200 OK\r\n\r\nhello",
		"http10Keep":  "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
		"untilEnd":    "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nhello",
		"chunked":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n",
		"close":       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
		"continue":    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"304":         "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
		"empty":       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"late":        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	}
	closes := map[string]bool{"http10": true, "untilEnd": true, "close": true, "longLength": true}
	lateSent := make(chan struct{}, 2)
	srv := newRawServer(t, func(c net.Conn, req *http.Request, body string) bool {
		shape := strings.TrimPrefix(req.URL.Path, "/")
		if shape == "ok" {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			return false
		}
		io.WriteString(c, shapes[shape])
		if shape == "late" { // an answer nobody asked for, once the call is over
			time.Sleep(30 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
			lateSent <- struct{}{}
		}
		return closes[shape]
	})
	tr := testTransport(1, 2*time.Second, time.Minute)
	for shape := range shapes {
		for i := range 2 {
			_, _, err := post(tr, context.Background(), srv.url()+"/"+shape, "")
			switch {
			case shape == "longLength" && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Errorf("%s: %v, want %v", shape, err, io.ErrUnexpectedEOF)
			case shape != "longLength" && err != nil:
				t.Errorf("%s: %v", shape, err)
			}
			if shape == "late" { // the next call goes once the late answer is sent, however busy the machine
				select {
				case <-lateSent:
				case <-time.After(10 * time.Second):
					t.Fatal("the late answer was not sent within 10 s")
				}
			}
			want := fmt.Sprintf("%s-%d", shape, i)
			if _, got, err := post(tr, context.Background(), srv.url()+"/ok", want); err != nil || got != want {
				t.Errorf("after %s: %q, %v; want %q", shape, got, err, want)
			}
		}
	}
	checkBooks(t, tr)
}

// TestTransportUnderDisorder: 40 callers, 4,000 calls, at most 3 to the host at
// once; the server answers in random shapes (a length, slow chunks, a close, slow
// headers, a body in two parts, HTTP/1.0 until the end), the callers cancel at
// random moments, close bodies before their end, cancel after the end but before
// Close, and close twice. Every answer read whole is the call's own, no more than
// 3 connections are ever open, the books balance, and the sweep empties them.
func TestTransportUnderDisorder(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, req *http.Request, id string) bool {
		switch rand.IntN(6) {
		case 0:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(id), id)
		case 1:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(id), id)
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			io.WriteString(c, "0\r\n\r\n")
		case 2:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(id), id)
			return true
		case 3:
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(id), id)
		case 4:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(id), id[:len(id)/2])
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			io.WriteString(c, id[len(id)/2:])
		case 5:
			fmt.Fprintf(c, "HTTP/1.0 200 OK\r\n\r\n%s", id)
			return true
		}
		return false
	})
	const perHost = 3
	tr := testTransport(perHost, 2*time.Second, 50*time.Millisecond)
	var open, most atomic.Int64
	d := &net.Dialer{}
	tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n := open.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return &countedConn{TCPConn: nc.(*net.TCPConn), open: &open}, nil
	}
	client := &http.Client{Transport: tr}
	var whole atomic.Int64
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				id := fmt.Sprintf("call-%d-%d", g, i)
				ctx, cancel := context.WithCancel(context.Background())
				mode := rand.IntN(5)
				if mode == 0 { // cancelled at a random moment
					time.AfterFunc(time.Duration(rand.IntN(3000))*time.Microsecond, cancel)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.url()+"/", strings.NewReader(id))
				resp, err := client.Do(req)
				if err != nil {
					if mode != 0 {
						t.Errorf("%s: %v", id, err)
					}
					cancel()
					continue
				}
				if mode == 1 { // closed before its end
					resp.Body.Close()
					cancel()
					continue
				}
				b, err := io.ReadAll(resp.Body)
				if mode == 2 { // cancelled after the end, before Close
					cancel()
				}
				resp.Body.Close()
				resp.Body.Close()
				cancel()
				switch {
				case err == nil && string(b) != id:
					t.Errorf("call %s got %q", id, b)
				case err == nil:
					whole.Add(1)
				case mode != 0:
					t.Errorf("%s: body: %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	if whole.Load() < 1000 {
		t.Errorf("only %d answers read whole of 4,000 calls", whole.Load())
	}
	if most.Load() > perHost {
		t.Errorf("%d connections open at once, want at most %d", most.Load(), perHost)
	}
	checkBooks(t, tr)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tr.mu.Lock()
		hosts, idle := len(tr.hosts), tr.idle
		tr.mu.Unlock()
		if hosts == 0 && idle == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the last call: %d hosts and %d idle connections kept (idle for 50 ms)", hosts, idle)
		}
	}
}

// countedConn counts itself out of open when closed, once.
type countedConn struct {
	*net.TCPConn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.TCPConn.Close()
}

// TestTransportCallAgainOnClosedKeepAlive: a receiver that closes a keep-alive
// connection just as the next call goes out on it (it reads the request, then
// closes without a word) costs no failed attempt: the call goes once more, on a
// new connection. On a new connection the same is a failure, not tried again.
func TestTransportCallAgainOnClosedKeepAlive(t *testing.T) {
	is := is.New(t)
	var calls atomic.Int64
	srv := newRawServer(t, func(c net.Conn, req *http.Request, body string) bool {
		n := calls.Add(1)
		if n == 2 || req.URL.Path == "/always" {
			return true // read, and closed unanswered
		}
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		return false
	})
	tr := testTransport(8, 5*time.Second, time.Minute)
	status, _, err := post(tr, context.Background(), srv.url()+"/hook", "one")
	is.NoErr(err)
	is.Equal(status, http.StatusNoContent) // the first call opens a connection
	status, _, err = post(tr, context.Background(), srv.url()+"/hook", "two")
	is.NoErr(err)                           // the second goes out on it, is cut off unanswered,
	is.Equal(status, http.StatusNoContent)  // and succeeds on a new connection
	is.Equal(calls.Load(), int64(3))        // sent twice, body and all
	is.Equal(srv.accepted.Load(), int64(2)) // over two connections
	checkBooks(t, tr)

	_, _, err = post(tr, context.Background(), srv.url()+"/always", "three")
	is.True(err != nil) // cut off on the reused connection, then on a new one: a failure
	is.True(closedUnderneath(err))
	is.Equal(describe(err, tr.timeout, checkReceiver), "the receiver closed the connection without answering") // in the attempt log's words
	_, _, err = post(testTransport(8, 5*time.Second, time.Minute), context.Background(), srv.url()+"/always", "four")
	is.True(err != nil)                     // on a new connection: no second try
	is.Equal(srv.accepted.Load(), int64(4)) // the one new connection each
	checkBooks(t, tr)
}

// TestTransportHeadersCutMidLine: headers past the bound are reported as too long,
// wherever the cut falls (in the middle of a line, the parser would call it a
// malformed header).
func TestTransportHeadersCutMidLine(t *testing.T) {
	is := is.New(t)
	srv := newRawServer(t, func(c net.Conn, req *http.Request, body string) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+strings.Repeat("X-Many: abcdefgh\r\n", 2*maxResponseHeader/18)+"\r\n")
		return true
	})
	_, _, err := post(testTransport(8, 5*time.Second, time.Minute), context.Background(), srv.url()+"/hook", "x")
	is.True(errors.Is(err, errHeaderTooLong)) // "response headers longer than 64 KiB"
}

// TestBodyBrokeOff: an answer whose body breaks off (a reset after part of it, the
// call's timeout while it trickles) says so in the attempt log: before the snippet
// of a 2xx, which is still delivered (its status came), in the error of any other.
func TestBodyBrokeOff(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, req *http.Request, body string) bool {
		status := map[string]string{"/ok-reset": "200 OK", "/ok-stall": "200 OK", "/fail-reset": "500 Internal Server Error"}[req.URL.Path]
		io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 1000\r\n\r\npartial")
		if strings.HasSuffix(req.URL.Path, "-stall") {
			time.Sleep(time.Second) // past the call's timeout
			return true
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not an orderly close
		}
		return true
	})
	for _, tt := range []struct {
		path, body, err string
	}{
		{"/ok-reset", "[the answer's body broke off: ", ""},
		{"/ok-stall", "[the answer's body broke off: timeout after 200ms] partial", ""},
		{"/fail-reset", "partial", "HTTP 500; the answer's body broke off: "},
	} {
		t.Run(tt.path, func(t *testing.T) {
			is := is.New(t)
			c := &http.Client{Transport: testTransport(8, 200*time.Millisecond, time.Minute)}
			resp, err := c.Post(srv.url()+tt.path, "", strings.NewReader("x"))
			is.NoErr(err) // the status and headers came
			var r result
			r.read(resp, time.Now(), 200*time.Millisecond)
			is.True(strings.HasPrefix(r.body, tt.body)) // the snippet, noted for a 2xx
			is.True(strings.HasPrefix(r.err, tt.err))   // the error, for any other
			if tt.err != "" {
				is.True(len(r.err) > len(tt.err)) // says why
			}
		})
	}
}

// TestTransportNoCallAgainOnceCancelled: a call whose context ends (a shutdown) as
// the receiver cuts it off on a reused connection is not tried again, and ends
// cleanly with the context's error.
func TestTransportNoCallAgainOnceCancelled(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	srv := newRawServer(t, func(c net.Conn, req *http.Request, body string) bool {
		if calls.Add(1) == 2 {
			cancel()                          // the shutdown lands now,
			time.Sleep(20 * time.Millisecond) // its AfterFunc runs,
			return true                       // and the call is cut off unanswered
		}
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		return false
	})
	tr := testTransport(8, 5*time.Second, time.Minute)
	_, _, err := post(tr, context.Background(), srv.url()+"/hook", "one")
	is.NoErr(err)
	_, _, err = post(tr, ctx, srv.url()+"/hook", "two")
	is.True(errors.Is(err, context.Canceled)) // the context's error
	time.Sleep(50 * time.Millisecond)
	is.Equal(calls.Load(), int64(2))        // not sent again
	is.Equal(srv.accepted.Load(), int64(1)) // on no new connection
	checkBooks(t, tr)
}

// TestTransportDialsTheNameAsWritten: the per-host key (store.HostKey) counts
// calls; the dial goes to the name as the URL writes it, an absolute name's final
// dot kept.
func TestTransportDialsTheNameAsWritten(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	var dialled []string
	var mu sync.Mutex
	d := &net.Dialer{Timeout: time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, addr)
		mu.Unlock()
		return d.DialContext(ctx, network, "127.0.0.1:"+port) // wherever the name points
	}
	tr := newTransport(dial, &http.Transport{DialContext: dial}, 2, 8, 5*time.Second, time.Minute)
	status, _, err := post(tr, context.Background(), "http://intranet.:"+port+"/hook", "{}")
	if err != nil || status != 204 {
		t.Fatalf("call: %d %v", status, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialled) != 1 || dialled[0] != "intranet.:"+port {
		t.Errorf("dialled %q for http://intranet.:%s/: the absolute name lost its final dot", dialled, port)
	}
}

// TestCallEndedBeforeItsRequestIsNotSent: a call whose context ended before its
// request was written (waiting for a connection) says so (notSent), so a
// shutdown's release of it does not count it as sent; one that went out does not.
func TestCallEndedBeforeItsRequestIsNotSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	tr := testTransport(4, 5*time.Second, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hook", nil)
	_, err := tr.RoundTrip(req)
	if err == nil || !errors.As(err, new(notSent)) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a call cancelled before its connection: %v; want notSent wrapping context.Canceled", err)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/hook", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
