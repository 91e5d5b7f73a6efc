package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connCounter counts the connections connLimit takes, closes and refuses
// (metrics.Metrics).
type connCounter interface {
	ConnOpened()
	ConnClosed()
	ConnRefused()
}

// connLimit is hookd's listener with at most max connections open at once
// (http.max_connections): each connection reading its headers may hold tens of
// kilobytes, so without a bound anyone could open connections until the kernel
// killed hookd for its memory, and delivery with it. A connection past the bound
// is not left in the kernel's queue, where its client would wait without a word
// (as netutil.LimitListener leaves it): it is answered 503 at once, with
// Retry-After and a line saying why, and closed. The connections open are
// every one accepted and not yet closed, idle keep-alive ones included.
type connLimit struct {
	net.Listener
	max      int64
	open     atomic.Int64
	count    connCounter
	log      *slog.Logger
	answer   []byte        // the 503 a refused connection gets
	refusing chan struct{} // refusals under way, each a slot

	warnMu   sync.Mutex
	warnedAt time.Time   // the last warning; zero before the first
	unwarned int64       // refusals since that warning
	told     *time.Timer // tells them refuseWarnEvery after it; nil when none is waiting
	closed   bool        // the listener is closed: nothing more is told
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

// limitConns wraps ln so that it holds at most max connections open at once.
func limitConns(ln net.Listener, max int, count connCounter, log *slog.Logger) *connLimit {
	body := fmt.Sprintf("503 Service Unavailable: hookd has %d connections open, its limit (http.max_connections): try again in %d seconds\n",
		max, refuseRetryAfter)
	answer := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		refuseRetryAfter, len(body), body)
	return &connLimit{
		Listener: ln, max: int64(max), count: count, log: log,
		answer: []byte(answer), refusing: make(chan struct{}, refusingMax),
	}
}

// Accept returns the next connection that fits under the bound, refusing those
// that come while it is reached.
func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			l.count.ConnOpened()
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

// refuse answers c 503 and closes it, without holding up Accept.
func (l *connLimit) refuse(c net.Conn) {
	l.count.ConnRefused()
	l.warn()
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
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

// warn logs that connections are refused: at the first refusal, then at most
// once every refuseWarnEvery while refusals go on, never once a connection. The
// refusals after a warning are told refuseWarnEvery after it, when no other
// refusal comes to tell them, so a burst that ends within the minute is counted
// in the log too, and at the listener's close at the latest.
func (l *connLimit) warn() {
	l.warnMu.Lock()
	defer l.warnMu.Unlock()
	l.unwarned++
	if l.warnedAt.IsZero() || time.Since(l.warnedAt) >= refuseWarnEvery {
		l.warnLocked()
		return
	}
	if l.told == nil && !l.closed {
		l.told = time.AfterFunc(refuseWarnEvery-time.Since(l.warnedAt), func() {
			l.warnMu.Lock()
			defer l.warnMu.Unlock()
			l.told = nil
			if l.unwarned > 0 && !l.closed {
				l.warnLocked()
			}
		})
	}
}

// warnLocked logs the refusals not yet told. l.warnMu must be held.
func (l *connLimit) warnLocked() {
	l.warnedAt = time.Now()
	l.log.Warn("HTTP connections refused: http.max_connections are open; each new one is answered 503 until some close (at most one such line a minute)",
		"max_connections", l.max, "refused", l.unwarned)
	l.unwarned = 0
}

// Close closes the listener, and logs the refusals not yet told: the log's
// lines count every one.
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
	if l.unwarned > 0 {
		l.warnLocked()
	}
	return err
}

// limitedConn is a connection connLimit took: its close frees its place.
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
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
