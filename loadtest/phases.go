package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The phases at a fixed offered load: latency, and a steady run.

// latencyPhase sends events at a fixed rate, one per record, and measures from each
// 202 to the callback's arrival at the receiver.
// The receiver must be recording arrivals (reset with record). It returns, for
// each of the events, the latency from its acknowledgement and from its send, and
// when it was acknowledged (phaseLatency).
func latencyPhase(ctx context.Context, c *http.Client, control string, h *hookd, tok string, ids []string, o options) (phaseLatency, error) {
	total := min(o.rate*o.latencySeconds, len(ids))
	acked := make([]int64, total)
	sent := make([]int64, total)
	interval := time.Second / time.Duration(o.rate)
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.concurrency)
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodPost, h.url+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"`+ids[i]+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			sent[i] = time.Now().UnixNano()
			res, err := c.Do(req)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			acked[i] = time.Now().UnixNano()
		}(i)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return phaseLatency{}, err
	}
	// Every callback, then whatever else arrives: a callback held up (behind hosts
	// that do not answer, say) must not end the wait as a lull would.
	// (If they do not all arrive, those that did are returned with the error.)
	if err := waitCount(ctx, c, control, int64(total), 2*time.Minute); err == nil {
		if _, err := waitQuiet(ctx, c, control, time.Second, time.Minute); err != nil {
			return phaseLatency{}, err
		}
	}
	st, err := getStats(c, control, true)
	if err != nil {
		return phaseLatency{}, err
	}
	var p phaseLatency
	for i := 0; i < total; i++ {
		at, ok := st.Arrivals["/"+ids[i]+"/updated"]
		if !ok {
			for path, t := range st.Arrivals {
				if strings.Contains(path, ids[i]) {
					at, ok = t, true
					delete(st.Arrivals, path)
					break
				}
			}
		}
		if ok {
			p.acked = append(p.acked, time.Duration(at-acked[i]))
			p.sent = append(p.sent, time.Duration(at-sent[i]))
			p.ackedAt = append(p.ackedAt, acked[i])
		}
	}
	if len(p.acked) != total {
		return p, fmt.Errorf("latency phase: %d of %d callbacks arrived within 2 minutes of the last send", len(p.acked), total)
	}
	return p, nil
}

// phaseLatency is what latencyPhase measured of each event whose callback arrived:
// from its acknowledgement to its callback (negative when the callback came first),
// from the moment it was sent to its callback, and when it was acknowledged (unix ns).
type phaseLatency struct {
	acked, sent latencies
	ackedAt     []int64
}

// roundTrips are requests' round trips and when each was sent (unix ns), and how
// many requests failed.
type roundTrips struct {
	sent   []int64
	trips  latencies
	failed int
}

// between returns the round trips of the requests sent in [from, to) (unix ns).
func (r roundTrips) between(from, to int64) latencies {
	var out latencies
	for i, at := range r.sent {
		if at >= from && at < to {
			out = append(out, r.trips[i])
		}
	}
	return out
}

// probe sends the requests mk makes at rate requests a second, at most n of them,
// until stop is closed, and times their round trips; an answer other than want
// counts as failed. In -scenario busy it sends hookd's GET /healthz (a request
// hookd answers without its store, on the same connections' kind and the same
// loaded cores as the intake's) and, with -durable-probe, the receiver's durable
// no-op: the yardsticks of the intake's round trip.
func probe(c *http.Client, mk func() (*http.Request, error), want, rate, n int, stop <-chan struct{}) roundTrips {
	sent, trips := make([]int64, n), make([]time.Duration, n)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	i := 0
loop:
	for ; i < n; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-stop:
				break loop
			case <-time.After(wait):
			}
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, err := mk()
			if err != nil {
				trips[i] = -1
				return
			}
			t0 := time.Now()
			res, err := c.Do(req)
			if err != nil || res.StatusCode != want {
				if err == nil {
					res.Body.Close()
				}
				trips[i] = -1
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			sent[i], trips[i] = t0.UnixNano(), time.Since(t0)
		}(i)
	}
	wg.Wait()
	var r roundTrips
	for j := range i {
		if trips[j] < 0 {
			r.failed++
			continue
		}
		r.sent, r.trips = append(r.sent, sent[j]), append(r.trips, trips[j])
	}
	return r
}

// steadyPhase offers o.rate events/s for o.steady, sampling throughput and database
// size every minute, to show both stay flat (retention at work).
func steadyPhase(ctx context.Context, c *http.Client, control string, h *hookd, tok string, ids []string, o options, r *report) error {
	if err := reset(c, control, false); err != nil {
		return err
	}
	interval := time.Second / time.Duration(o.rate)
	end := time.Now().Add(o.steady)
	nextSample := time.Now().Add(time.Minute)
	sem := make(chan struct{}, o.concurrency)
	var prev int64
	start := time.Now()
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodPost, h.url+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"`+ids[i%len(ids)]+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if res, err := c.Do(req); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}(i)
		if time.Now().After(nextSample) {
			st, err := getStats(c, control, false)
			if err != nil {
				return err
			}
			r.add(fmt.Sprintf("steady minute %d", int(time.Since(start).Minutes())), "%d deliveries/min, database %s, RSS %s", st.Count-prev, mib(h.dbSize()), mib(h.rss()))
			prev = st.Count
			nextSample = nextSample.Add(time.Minute)
		}
	}
	return nil
}
