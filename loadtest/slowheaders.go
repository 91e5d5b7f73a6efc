package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// slowHeaders measures hookd's memory under connections that each hold a large
// request header block for as long as hookd lets them: -slow-conns connections
// to hookd (127.0.0.1), each sending a request line and then 60 header lines of
// about 1,000 bytes (60 KB, under hookd's 64 KiB bound) over 8 s, within hookd's
// 10 s ReadHeaderTimeout, never ending them; each is opened again once hookd
// closes it or answers it, until -latency-seconds have passed. It reports
// hookd's peak RSS, its RSS after the phase, and how the connections ended:
// answered 503 (past http.max_connections), or closed by hookd without an answer
// (the header timeout).
func slowHeaders(ctx context.Context, o options) error {
	if o.slowConns > 5000 || o.latencySeconds > 120 {
		return fmt.Errorf("-scenario slowheaders: at most 5000 connections for 120 s")
	}
	rep := &report{}
	rep.add("scenario", "%d connections each sending 60 KB of request headers over 8 s, never ending them, opened again when closed, for %d s; delivery paused",
		o.slowConns, o.latencySeconds)
	h, err := startHookd(ctx, o, true, "")
	if err != nil {
		return err
	}
	defer h.stop()
	addr, err := h.loopbackAddr()
	if err != nil {
		return err
	}
	idle := h.rss()
	end := time.Now().Add(time.Duration(o.latencySeconds) * time.Second)
	line := "X-Pad-%02d: " + strings.Repeat("a", 986) + "\r\n"
	const lines, over = 60, 8 * time.Second
	var opened, refused, closed, dialErrs atomic.Int64
	var wg sync.WaitGroup
	for i := range o.slowConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Second / time.Duration(o.slowConns)) // spread over the first second
			for time.Now().Before(end) && ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					dialErrs.Add(1)
					time.Sleep(500 * time.Millisecond)
					continue
				}
				opened.Add(1)
				answer := make(chan []byte, 1)
				go func() {
					buf := make([]byte, 512)
					n, _ := c.Read(buf)
					answer <- buf[:n]
				}()
				c.SetDeadline(end.Add(time.Second))
				var first []byte
				got := false
				if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: hookd\r\n")); err == nil {
				send:
					for j := 0; j < lines && time.Now().Before(end); j++ {
						select {
						case first = <-answer:
							got = true
							break send
						case <-time.After(over / lines):
						}
						if _, err := fmt.Fprintf(c, line, j); err != nil {
							break
						}
					}
				}
				if !got {
					select {
					case first = <-answer:
					case <-time.After(time.Until(end)):
					}
				}
				c.Close()
				if bytes.HasPrefix(first, []byte("HTTP/1.1 503")) {
					refused.Add(1)
					time.Sleep(500 * time.Millisecond)
				} else {
					closed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rep.add("hookd memory", "RSS %s idle before, %s at the peak (VmHWM), %s after the phase", mib(idle), mib(h.peakRSS()), mib(h.rss()))
	rep.add("connections", "%d opened: %d answered 503 (http.max_connections), %d closed by hookd or at the phase's end without an answer; %d dials failed",
		opened.Load(), refused.Load(), closed.Load(), dialErrs.Load())
	rep.print(os.Stdout)
	return nil
}
