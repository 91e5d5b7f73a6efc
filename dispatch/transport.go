package dispatch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"hookd/store"
)

// transport is the round tripper of the delivery clients.
//
// A plain-HTTP call runs on a keep-alive HTTP/1.1 connection that the calling
// goroutine writes and reads itself: the request goes out with Request.Write and
// the answer comes back with http.ReadResponse, the standard library's own code
// for both. The standard transport gives every connection two goroutines of its
// own and hands each call between them and the caller four times; on this kind
// of load (many short calls to one host) that costs ~7 µs of CPU a call, a sixth
// of what hookd spends on a delivery (BENCHMARKS.md, "The delivery client").
// Every other call (https, with HTTP/2 where the host offers it) goes to next,
// the standard transport.
//
// A call holds its host's slot, and its connection, until its body is closed:
// the standard transport frees them at the body's end already, this one only at
// Close, which every caller in hookd makes (drain; golang.org/x/oauth2 for tokens).
//
// It also bounds each call, from its start to the end of its body, by timeout, as
// http.Client.Timeout does; the client must not set Timeout itself, which would
// start a goroutine a call for a transport other than the standard one.
type transport struct {
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	next    *http.Transport
	perHost int           // calls at once to one host:port, and so its connections
	maxIdle int           // idle connections kept, all hosts together
	timeout time.Duration // a call, body included
	idleFor time.Duration // an idle connection is closed after this

	mu    sync.Mutex
	hosts map[string]*hostConns
	idle  int         // idle connections, all hosts together
	sweep *time.Timer // closes connections idle for idleFor; nil when none is idle
}

// hostConns is what the transport keeps for one host:port.
type hostConns struct {
	slots chan struct{} // a token for each call running (capacity perHost)
	idle  []*conn       // the most recently used last
	refs  int           // calls holding or waiting for a slot
}

// maxResponseHeader bounds an answer's status line and headers together. Parsing
// them takes several times their size in memory, for each call at once (64 by
// default): a receiver's few hundred bytes are far below it, a hostile one's
// megabytes never read.
const maxResponseHeader = 64 << 10

// errHeaderTooLong is the error of an answer whose headers pass maxResponseHeader.
var errHeaderTooLong = errors.New("response headers longer than 64 KiB")

// conn is one keep-alive connection.
type conn struct {
	net.Conn
	raw    syscall.RawConn // for the check that an idle connection is still open (nil: not checked)
	br     *bufio.Reader
	bw     *bufio.Writer
	limit  int64 // what may still be read through br: maxResponseHeader while headers are read
	idleAt time.Time
	// answered is set once a byte of the call's answer has come (roundTrip resets it).
	answered bool
	// readErr is the first read error of the call (roundTrip resets it): the
	// parser takes a line cut off by it as a whole line and reports that line as
	// malformed, keeping quiet about the timeout or the closed connection.
	readErr error
}

// Read reads for br, within c.limit.
func (c *conn) Read(p []byte) (int, error) {
	n, err := readCapped(c.Conn, p, &c.limit, errHeaderTooLong)
	c.answered = c.answered || n > 0
	if err != nil && c.readErr == nil {
		c.readErr = err
	}
	return n, err
}

// readCapped reads from c what *left still allows, counting it off; with nothing
// left, it fails with over.
func readCapped(c net.Conn, p []byte, left *int64, over error) (int, error) {
	if *left <= 0 {
		return 0, over
	}
	if int64(len(p)) > *left {
		p = p[:*left]
	}
	n, err := c.Read(p)
	*left -= int64(n)
	return n, err
}

func newTransport(dial func(ctx context.Context, network, address string) (net.Conn, error), next *http.Transport,
	perHost, maxIdle int, timeout, idleFor time.Duration) *transport {
	return &transport{dial: dial, next: next, perHost: perHost, maxIdle: maxIdle, timeout: timeout, idleFor: idleFor,
		hosts: map[string]*hostConns{}}
}

// RoundTrip makes one call.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(t.timeout)
	ctx := req.Context()
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if req.URL.Scheme != "http" {
		return t.roundTripNext(req, deadline)
	}
	if req.URL.Host == "" {
		closeRequestBody(req)
		return nil, errors.New("no host in the URL")
	}
	key := store.HostKey(req.URL) // as the scheduler counts hosts (Target.Host)
	h := t.enter(key)
	if err := t.acquire(ctx, h, deadline); err != nil {
		t.leave(key, h, nil)
		closeRequestBody(req)
		return nil, notSent{err}
	}
	c, reused, err := t.conn(ctx, key, h, deadline, true)
	if err != nil {
		t.release(key, h, nil)
		closeRequestBody(req)
		return nil, notSent{err}
	}
	// The deadline (set by conn) covers the whole call, its body included. A
	// cancelled context moves it to the past, which ends a read or write under way
	// at once.
	watch := func(c *conn) (stop func() bool) {
		if ctx.Done() == nil {
			return func() bool { return true }
		}
		return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	}
	stop := watch(c)
	resp, err := c.roundTrip(req)
	if err != nil && reused && !c.answered && closedUnderneath(err) && stop() {
		// The receiver closed the idle connection as the call went out on it (its
		// keep-alive timeout, a moment after the check in conn): the call goes once
		// more, on a new connection, rather than count as a failed attempt. Had the
		// receiver read it after all, it gets the delivery twice, with the same
		// webhook-id, as at-least-once allows. (stop is true when the context had
		// not ended the call: a cancelled call is not tried again.)
		c.Close()
		if again, ok := rewound(req); ok {
			fresh, _, derr := t.conn(ctx, key, h, deadline, false)
			if derr != nil {
				t.release(key, h, nil)
				closeRequestBody(again)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, derr
			}
			c, req = fresh, again
			stop = watch(c)
			resp, err = c.roundTrip(req)
		}
	}
	if err != nil {
		stop()
		c.Close()
		t.release(key, h, nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	b := &body{t: t, key: key, h: h, c: c, stop: stop, resp: resp.Body, reuse: !resp.Close && !req.Close}
	b.eof = resp.Body == http.NoBody
	resp.Body = b
	return resp, nil
}

// notSent is the error of a call that ended before its request was written (the
// wait for the host's connection slot, the dial): the receiver cannot have had it.
type notSent struct{ error }

func (e notSent) Unwrap() error { return e.error }

// roundTrip writes req and reads its answer, skipping informational (1xx) ones.
// The request is written whole before the answer is read: a receiver that answers
// early and closes without reading the body (a 413 to a large body) is seen as a
// failed write. hookd's bodies are small, well within a socket's buffer.
//
// The informational answers and the final one share maxResponseHeader, as in the
// standard transport (https): a receiver may send as many as fit (a few Early
// Hints before its 2xx), and one that sends them without end is cut off there.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	c.answered, c.readErr = false, nil
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	c.limit = maxResponseHeader
	defer func() { c.limit = 1<<63 - 1 }() // the body is bounded by its reader
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.limit <= 0 {
				// The cut came in the middle of a line, which the parser reports as
				// a malformed header: the headers' length is what is wrong.
				return nil, errHeaderTooLong
			}
			if c.readErr != nil {
				// The answer broke off (the call's timeout, a closed connection)
				// inside a line, which the parser read as a whole one.
				return nil, c.readErr
			}
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			// hookd never asks for another protocol: the connection is no longer HTTP.
			return nil, errors.New("unrequested 101 Switching Protocols")
		case resp.StatusCode >= 200 || resp.StatusCode < 100:
			return resp, nil
		}
	}
}

// enter returns the host's state, counting the caller in.
func (t *transport) enter(key string) *hostConns {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hosts[key]
	if h == nil {
		h = &hostConns{slots: make(chan struct{}, t.perHost)}
		t.hosts[key] = h
	}
	h.refs++
	return h
}

// acquire waits for one of the host's slots, until ctx ends or the deadline.
func (t *transport) acquire(ctx context.Context, h *hostConns, deadline time.Time) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("waiting for a connection to the host: %w", context.DeadlineExceeded)
	}
}

// conn returns an idle connection to the host that is still open (when idleOK),
// or a new one, with the call's deadline set; reused says which.
func (t *transport) conn(ctx context.Context, key string, h *hostConns, deadline time.Time, idleOK bool) (c *conn, reused bool, err error) {
	for idleOK {
		t.mu.Lock()
		n := len(h.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		t.idle--
		t.mu.Unlock()
		// The last call's deadline may have passed while the connection was idle:
		// the new one comes first, or the check could not read the socket.
		if time.Since(c.idleAt) < t.idleFor && c.SetDeadline(deadline) == nil && c.open() {
			return c, true, nil
		}
		c.Close()
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := t.dial(dctx, "tcp", key)
	if err != nil {
		return nil, false, err
	}
	c = &conn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.br, c.bw = bufio.NewReaderSize(c, 4<<10), bufio.NewWriterSize(nc, 4<<10)
	c.SetDeadline(deadline)
	return c, false, nil
}

// closedUnderneath reports whether a call's error is its connection having been
// closed by the peer: an end of stream or a reset, while writing or reading.
func closedUnderneath(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// rewound is req ready to be written again, when its body can be had anew.
func rewound(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	again := req.Clone(req.Context())
	again.Body = body
	return again, true
}

// open reports whether an idle connection can carry another call: the peer has
// not closed it (a server closes an idle keep-alive connection when it likes, and
// a call written to it would fail) and sent nothing unasked.
func (c *conn) open() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	return peekOpen(c.raw)
}

// release ends a call on the host: its connection, when it can carry another call,
// goes back to the idle ones (nil: none), and then its slot is freed, so a call
// waiting for the slot finds the connection instead of dialing one more.
func (t *transport) release(key string, h *hostConns, c *conn) {
	t.leave(key, h, c)
	<-h.slots
}

// leave counts a caller out of the host, keeping c idle if there is room; a host
// with no caller and no idle connection is forgotten.
func (t *transport) leave(key string, h *hostConns, c *conn) {
	t.mu.Lock()
	if c != nil {
		if len(h.idle) >= t.perHost || t.idle >= t.maxIdle {
			defer c.Close()
		} else {
			c.idleAt = time.Now()
			h.idle = append(h.idle, c)
			t.idle++
			if t.sweep == nil {
				t.sweep = time.AfterFunc(t.idleFor, t.closeStale)
			}
		}
	}
	h.refs--
	if h.refs == 0 && len(h.idle) == 0 {
		delete(t.hosts, key)
	}
	t.mu.Unlock()
}

// closeStale closes the connections idle for idleFor, and comes back while some
// are left.
func (t *transport) closeStale() {
	t.closeIdle(time.Now().Add(-t.idleFor))
}

// closeIdle closes the connections idle since before cutoff.
func (t *transport) closeIdle(cutoff time.Time) {
	var stale []*conn
	t.mu.Lock()
	for key, h := range t.hosts {
		keep := h.idle[:0]
		for _, c := range h.idle {
			if c.idleAt.Before(cutoff) {
				stale = append(stale, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(h.idle[len(keep):])
		h.idle = keep
		if h.refs == 0 && len(h.idle) == 0 {
			delete(t.hosts, key)
		}
	}
	t.idle -= len(stale)
	if t.sweep != nil {
		t.sweep.Stop() // false when this is its own run
	}
	t.sweep = nil
	if t.idle > 0 {
		t.sweep = time.AfterFunc(t.idleFor/2, t.closeStale)
	}
	t.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// CloseIdleConnections closes the idle connections, the next transport's too.
func (t *transport) CloseIdleConnections() {
	t.closeIdle(time.Now().Add(time.Hour))
	t.next.CloseIdleConnections()
}

// body is the body of an answer on a keep-alive connection. Read to its end and
// closed, it hands the connection back for the next call; closed before its end,
// it closes the connection (reading the rest could take forever).
type body struct {
	t     *transport
	key   string
	h     *hostConns
	c     *conn
	stop  func() bool // ends the watch on the call's context: false if it was cancelled
	resp  io.ReadCloser
	reuse bool // the answer allows another call on the connection
	eof   bool
	done  atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.resp.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *body) Close() error {
	if b.done.Swap(true) {
		return nil
	}
	cancelled := !b.stop()
	if b.eof && b.reuse && !cancelled {
		b.resp.Close()
		b.t.release(b.key, b.h, b.c)
		return nil
	}
	b.c.Close() // first: what is left of the body is not read
	b.resp.Close()
	b.t.release(b.key, b.h, nil)
	return nil
}

// roundTripNext sends req through the standard transport, bounded by deadline
// from its start to the end of its body.
func (t *transport) roundTripNext(req *http.Request, deadline time.Time) (*http.Response, error) {
	ctx, cancel := context.WithDeadline(req.Context(), deadline)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody cancels its call's context once closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
