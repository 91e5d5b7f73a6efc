package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connCounter counts the connections connLimit takes, closes and refuses, and
// those it closes to take new ones (metrics.Metrics).
type connCounter interface {
	ConnOpened()
	ConnClosed()
	ConnRefused()
	ConnClosedIdle()
}

// connLimit is hookd's listener with at most max connections open at once
// (http.max_connections): each connection reading its headers may hold tens of
// kilobytes, so without a bound anyone could open connections until the kernel
// killed hookd for its memory, and delivery with it. A connection past the bound
// is not left in the kernel's queue, where its client would wait without a word
// (as netutil.LimitListener leaves it): it is answered 503 at once, with
// Retry-After and a line saying why, and closed. The connections open are
// every one accepted and not yet closed, idle keep-alive ones included.
//
// A connection that sends nothing does not hold its place against a new one,
// as in nginx: at the bound, the one quiet longest is closed and the new one
// taken in its place (evict). Quiet is idle between requests (keep-alive) for
// over idleQuietAfter, or accepted and silent for over silentNewAfter (each a
// second); never a connection with a request under way, its headers or body
// being read or its answer written (http.StateActive, or bytes read since it
// was idle, for readHeaderTimeout at most while it is idle), nor a hijacked
// one. Only when none is quiet is the new one refused. So idle connections
// left open, by an attacker or a reverse proxy's pool larger than the bound, do
// not shut new clients out for the 2 minutes of the server's IdleTimeout, nor
// do ones that send a byte of a next request and stop.
//
// Closing an idle connection may cross its client's next request, sent as it is
// closed: that request is reset, the race every keep-alive server has with its
// idle timeout, after which clients retry an idempotent request on a new
// connection. The window is kept small: a connection's state is marked under
// mu, and its first bytes read take it out of the quiet ones at once, under mu
// too; those read once it was chosen are dropped (limitedConn.Read).
type connLimit struct {
	net.Listener
	max      int64
	open     atomic.Int64
	count    connCounter
	log      *slog.Logger
	answer   []byte        // the 503 a refused connection gets
	refusing chan struct{} // refusals under way, each a slot

	mu    sync.Mutex
	conns map[*limitedConn]struct{} // those open and neither hijacked nor closing

	warnMu     sync.Mutex
	warnedAt   time.Time   // the last warning; zero before the first
	unwarned   int64       // refusals since that warning
	unanswered int64       // of them, those closed without an answer: refusingMax were under way
	unevicted  int64       // connections closed to take new ones since that warning
	told       *time.Timer // tells them refuseWarnEvery after it; nil when none is waiting
	closed     bool        // the listener is closed: nothing more is told
}

// Refusals: the 503 waits for the first bytes of the request, as a client takes
// no answer before it has begun to send one (Go's drops an answer that comes
// first, as unasked for); a connection that sends nothing within refuseLinger
// is closed without one. A connection closed with its request unread is reset,
// which may lose the answer on its way, so after it the connection is closed
// for writing, and the rest of its request read and thrown away until the
// client closes it, for at most refuseLinger in all and refuseRead bytes: the
// headers and body of the largest request the API takes, an events batch of
// 1 MiB, so that its client, still sending, is not reset before it reads the
// answer (the bytes go through a small buffer: it costs no memory). At most
// refusingMax refusals are under way at once (a few megabytes); past them, a
// connection is closed without a word.
const (
	refuseLinger     = time.Second
	refuseRead       = maxRequestHeaders + 1<<20
	refusingMax      = 256
	refuseRetryAfter = 5 // seconds: a slot frees as a request ends, or a slow one's headers time out
)

// refuseWarnEvery is how often at most the log warns of refusals (tests shorten it).
var refuseWarnEvery = time.Minute

// silentNewAfter is how long a connection may be accepted without sending a byte
// and still not be closed to take a new one (tests shorten it). A client that
// means to send a request sends it as soon as it has connected, within a round
// trip, well under a second even across the world; one silent for longer is a
// spare opened ahead of need (a browser's preconnect, a pool's), whose client
// dials again when it finds it closed, or one that holds its place and sends
// nothing. Net/http's Shutdown takes such a one for idle after 5 seconds; here
// that would leave an attacker 5 seconds a connection.
var silentNewAfter = time.Second

// idleQuietAfter is how long a kept-alive connection may be idle since its last
// answer and still not be closed to take a new one (tests shorten it). A client
// sending requests one after another sends the next as soon as it has read the
// answer: were its connection closed in that moment, its next request would be
// reset; with new connections coming at the bound without pause, one request
// in ten or so was.
var idleQuietAfter = time.Second

// limitConns wraps ln so that it holds at most max connections open at once.
func limitConns(ln net.Listener, max int, count connCounter, log *slog.Logger) *connLimit {
	body := fmt.Sprintf("503 Service Unavailable: hookd has %d connections open, its limit (http.max_connections): try again in %d seconds\n",
		max, refuseRetryAfter)
	answer := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		refuseRetryAfter, len(body), body)
	return &connLimit{
		Listener: ln, max: int64(max), count: count, log: log,
		answer: []byte(answer), refusing: make(chan struct{}, refusingMax),
		conns: make(map[*limitedConn]struct{}),
	}
}

// Accept returns the next connection that fits under the bound; at the bound it
// closes the connection quiet longest to take it, and refuses it when none is
// quiet. http.Server calls Accept from one goroutine only: the place a closed
// connection frees is the new one's.
func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max && !l.evict() {
			l.open.Add(-1)
			l.refuse(c)
			continue
		}
		lc := &limitedConn{Conn: c, l: l, state: http.StateNew, since: time.Now()}
		l.mu.Lock()
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		l.count.ConnOpened()
		return lc, nil
	}
}

// evict closes the connection quiet longest, if one is, and says whether it did.
// It looks at every connection open, but only at the bound.
func (l *connLimit) evict() bool {
	now := time.Now()
	var oldest *limitedConn
	l.mu.Lock()
	for c := range l.conns {
		switch {
		case c.heard.Load():
			if c.state != http.StateIdle || now.Sub(c.heardAt) < readHeaderTimeout {
				continue // a request is being read
			}
		case c.state == http.StateIdle:
			if now.Sub(c.since) < idleQuietAfter {
				continue // its client's next request may be on its way
			}
		case c.state == http.StateNew:
			if now.Sub(c.since) < silentNewAfter {
				continue
			}
		default:
			continue
		}
		if oldest == nil || c.since.Before(oldest.since) {
			oldest = c
		}
	}
	if oldest != nil {
		delete(l.conns, oldest) // chosen once: its state changes no more
		oldest.evicted.Store(true)
	}
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close() // frees its place before Accept returns the new one
	l.count.ConnClosedIdle()
	l.warn(warnEvicted)
	return true
}

// ConnState is http.Server's ConnState: it tells connLimit which connections are
// quiet. c is a connection Accept returned.
func (l *connLimit) ConnState(c net.Conn, state http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[lc]; !ok {
		return // closed, or chosen to be
	}
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, lc)
	case http.StateIdle:
		lc.heard.Store(false) // quiet from here until its next request's first bytes
		fallthrough
	default:
		lc.state, lc.since = state, time.Now()
	}
}

// refuse answers c 503 and closes it, without holding up Accept.
func (l *connLimit) refuse(c net.Conn) {
	l.count.ConnRefused()
	select {
	case l.refusing <- struct{}{}:
		l.warn(warnRefused)
	default:
		c.Close()
		l.warn(warnUnanswered)
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseLinger))
		var buf [512]byte
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
		if _, err := c.Write(l.answer); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, refuseRead))
	}()
}

// warnOf is what warn is told of: a connection refused (answered 503), refused
// and closed without an answer (refusingMax refusals under way), or closed to
// take a new one.
type warnOf int

const (
	warnRefused warnOf = iota
	warnUnanswered
	warnEvicted
)

// warn logs that connections are refused, or closed to take new ones (evicted):
// at the first, then at most once every refuseWarnEvery while they go on, never
// once a connection. Those after a warning are told refuseWarnEvery after it,
// when no other comes to tell them, so a burst that ends within the minute is
// counted in the log too, and at the listener's close at the latest.
func (l *connLimit) warn(what warnOf) {
	l.warnMu.Lock()
	defer l.warnMu.Unlock()
	switch what {
	case warnUnanswered:
		l.unanswered++
		l.unwarned++
	case warnRefused:
		l.unwarned++
	default:
		l.unevicted++
	}
	if l.warnedAt.IsZero() || time.Since(l.warnedAt) >= refuseWarnEvery {
		l.warnLocked()
		return
	}
	if l.told == nil && !l.closed {
		l.told = time.AfterFunc(refuseWarnEvery-time.Since(l.warnedAt), func() {
			l.warnMu.Lock()
			defer l.warnMu.Unlock()
			l.told = nil
			if l.unwarned+l.unevicted > 0 && !l.closed {
				l.warnLocked()
			}
		})
	}
}

// warnLocked logs the refusals and evictions not yet told. l.warnMu must be held.
func (l *connLimit) warnLocked() {
	l.warnedAt = time.Now()
	switch {
	case l.unanswered > 0:
		l.log.Warn(fmt.Sprintf("HTTP connections refused: http.max_connections are open and none idle; each new one is answered 503 until some close or go idle, "+
			"but while %d refusals are under way one more is closed without an answer, as %d were (at most one such line a minute)", refusingMax, l.unanswered),
			"closed_idle", l.unevicted, "max_connections", l.max, "refused", l.unwarned, "unanswered", l.unanswered)
	case l.unwarned > 0:
		l.log.Warn("HTTP connections refused: http.max_connections are open and none idle; each new one is answered 503 until some close or go idle (at most one such line a minute)",
			"closed_idle", l.unevicted, "max_connections", l.max, "refused", l.unwarned)
	default:
		l.log.Warn("HTTP connections closed idle: http.max_connections are open; the one idle longest is closed for each new one (at most one such line a minute)",
			"closed_idle", l.unevicted, "max_connections", l.max, "refused", l.unwarned)
	}
	l.unwarned, l.unanswered, l.unevicted = 0, 0, 0
}

// Close closes the listener, and logs the refusals and evictions not yet told:
// the log's lines count every one.
func (l *connLimit) Close() error {
	err := l.Listener.Close()
	l.warnMu.Lock()
	defer l.warnMu.Unlock()
	if l.closed {
		return err
	}
	l.closed = true
	if l.told != nil {
		l.told.Stop()
		l.told = nil
	}
	if l.unwarned+l.unevicted > 0 {
		l.warnLocked()
	}
	return err
}

// limitedConn is a connection connLimit took: its close frees its place.
type limitedConn struct {
	net.Conn
	l       *connLimit
	once    sync.Once
	heard   atomic.Bool // bytes read since it was last idle: a request is under way
	evicted atomic.Bool // chosen by evict, set under l.mu: its bytes are read no more

	// l.mu guards these.
	state http.ConnState // as http.Server last told it (ConnState)
	since time.Time      // when it took that state
	// When heard was set, with the monotonic clock's reading (a step of the
	// wall clock neither spares nor condemns a connection). A kept-alive
	// connection whose next request has begun and is not whole
	// readHeaderTimeout later is quiet again: net/http waits for a request's
	// first 4 bytes for its IdleTimeout, not its ReadHeaderTimeout, so one byte
	// after each request would keep a connection from being closed for 2
	// minutes, where a new one's headers have 10 s.
	heardAt time.Time
}

// Read notes that a request is under way once its first bytes come: http.Server
// marks a connection active only once it has read the request's headers whole.
// It does so under l.mu, so evict either sees the connection heard or has chosen
// it; the bytes read after it was chosen are not returned but a closed
// connection's error: the request that comes as its connection is closed for a
// new one is dropped unread, as at an idle timeout, not carried out by a handler
// whose answer is lost with the connection (its client would take it for
// failed, and might send it again).
func (c *limitedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard.Load() {
		c.l.mu.Lock()
		if !c.evicted.Load() {
			c.heardAt = time.Now()
			c.heard.Store(true)
		}
		c.l.mu.Unlock()
	}
	if n > 0 && c.evicted.Load() {
		// An *OpError of a read, as net/http takes for a client gone, not for a
		// bad request to answer 400.
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
	}
	return n, err
}

// Close closes the connection; the first close frees its place, however many
// follow (http.Server closes a connection evict closed again).
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.open.Add(-1)
		c.l.count.ConnClosed()
	})
	return err
}

// CloseWrite is the TCP connection's, which net/http uses to end a connection it
// answered with an error without resetting it.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
