package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// idleConns measures what a new client meets while hookd's connections are all
// held open and idle (http.max_connections, 1,024 by default): -idle-conns
// connections each make one GET /healthz and stay open, silent, on keep-alive;
// then -events new connections (at most 2,000, within 60 s), one after another,
// each make one GET /healthz and stay open too, so that each new one finds the
// bound reached again; every 100 of them the phase waits 1.1 s, so that those
// become idle for over a second, as hookd requires before it closes one. It
// reports the new connections' answers and their time from dial to answer, then
// the same with no connection held, the yardstick.
func idleConns(ctx context.Context, o options) error {
	fresh := min(o.events, 2000)
	rep := &report{}
	rep.add("scenario", "%d connections open and idle on keep-alive, then %d new connections one after another, each asking GET /healthz and kept open; delivery paused",
		o.idleConns, fresh)
	h, err := startHookd(ctx, o, true, "")
	if err != nil {
		return err
	}
	defer h.stop()
	addr, err := h.loopbackAddr()
	if err != nil {
		return err
	}
	for _, held := range []int{o.idleConns, 0} {
		var open []net.Conn
		for range held {
			c, status, err := healthz(addr)
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("opening the idle connections: %d %v", status, err)
			}
			open = append(open, c)
		}
		time.Sleep(1500 * time.Millisecond) // idle for over a second
		var lat latencies
		statuses := map[string]int{}
		end := time.Now().Add(60 * time.Second)
		for i := 0; i < fresh && time.Now().Before(end) && ctx.Err() == nil; i++ {
			start := time.Now()
			c, status, err := healthz(addr)
			switch {
			case err != nil:
				statuses["no answer"]++
			default:
				statuses[fmt.Sprint(status)]++
				lat = append(lat, time.Since(start))
				open = append(open, c)
			}
			if i%100 == 99 {
				time.Sleep(1100 * time.Millisecond)
			}
		}
		for _, c := range open {
			c.Close()
		}
		what := fmt.Sprintf("new connections beside %d idle", held)
		if held == 0 {
			what = "new connections, none held (yardstick)"
		}
		if len(lat) == 0 {
			rep.add(what, "answers %v", statuses)
			continue
		}
		lat = lat.sorted()
		rep.add(what, "answers %v; dial to answer p50 %s p99 %s max %s", statuses, lat.p(50), lat.p(99), lat.max())
		time.Sleep(time.Second) // the closes reach hookd
	}
	rep.print(os.Stdout)
	return nil
}

// healthz dials addr and asks GET /healthz on a keep-alive connection, which it
// returns open once the answer is read whole.
func healthz(addr string) (net.Conn, int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: hookd\r\n\r\n"); err != nil {
		c.Close()
		return nil, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c, resp.StatusCode, nil
}
