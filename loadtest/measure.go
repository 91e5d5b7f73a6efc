package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The load tool's measuring: the report, percentiles, the load client, the receiver's counts.

// report collects result lines.
type report struct{ lines [][2]string }

func (r *report) add(what, format string, args ...any) {
	r.lines = append(r.lines, [2]string{what, fmt.Sprintf(format, args...)})
	fmt.Printf("%-45s %s\n", what, fmt.Sprintf(format, args...))
}

func (r *report) print(w io.Writer) {
	fmt.Fprintln(w, "\n| measure | result |\n|---|---|")
	for _, l := range r.lines {
		fmt.Fprintf(w, "| %s | %s |\n", l[0], l[1])
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// orcidN is the n-th of a series of valid iDs.
func orcidN(n int) string {
	base := fmt.Sprintf("%015d", 200000000000000+n)
	total := 0
	for i := 0; i < len(base); i++ {
		total = (total + int(base[i]-'0')) * 2
	}
	r := (12 - total%11) % 11
	check := byte('0' + r)
	if r == 10 {
		check = 'X'
	}
	d := base + string(check)
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// latencies are durations with percentiles.
type latencies []time.Duration

func (l latencies) sorted() latencies {
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func (l latencies) p(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := l.sorted()
	i := int(float64(len(s)-1) * q / 100)
	return s[i].Round(10 * time.Microsecond)
}

func (l latencies) max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l.sorted()[len(l)-1].Round(10 * time.Microsecond)
}

type hammerOpt func(*hammerCfg)

type hammerCfg struct {
	lat    *latencies
	status int
}

func withLatency(l *latencies) hammerOpt { return func(c *hammerCfg) { c.lat = l } }
func expect(status int) hammerOpt        { return func(c *hammerCfg) { c.status = status } }

// hammer sends n requests made by mk with the given concurrency and returns the rate.
func hammer(ctx context.Context, c *http.Client, concurrency, n int, mk func(i int) (*http.Request, error), opts ...hammerOpt) (float64, error) {
	var cfg hammerCfg
	for _, o := range opts {
		o(&cfg)
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var lat latencies
	if cfg.lat != nil {
		lat = make(latencies, n)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < min(concurrency, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				req, err := mk(i)
				if err == nil {
					t0 := time.Now()
					var res *http.Response
					res, err = c.Do(req.WithContext(ctx))
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if cfg.status != 0 && res.StatusCode != cfg.status {
							err = fmt.Errorf("%s %s: status %d, want %d", req.Method, req.URL.Path, res.StatusCode, cfg.status)
						}
					}
					if lat != nil {
						lat[i] = time.Since(t0)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if cfg.lat != nil {
		*cfg.lat = lat
	}
	return float64(n) / time.Since(start).Seconds(), firstErr
}

// stats is the receiver's count of arrivals.
type stats struct {
	Count    int64            `json:"count"`
	First    int64            `json:"first"` // unix ns
	Last     int64            `json:"last"`
	Arrivals map[string]int64 `json:"arrivals,omitempty"` // path → first arrival (unix ns), when asked
	// Ports and PortsLast are each port's arrivals and its last one (unix ns), in
	// the order of the receiver's URLs after the control one.
	Ports     []int64 `json:"ports"`
	PortsLast []int64 `json:"ports_last"`
	// DurableSyncs and DurableRequests count the durable no-op's fsyncs and the
	// requests they covered.
	DurableSyncs    int64 `json:"durable_syncs"`
	DurableRequests int64 `json:"durable_requests"`
}

func getStats(c *http.Client, control string, detail bool) (stats, error) {
	u := control + "/stats"
	if detail {
		u += "?detail=1"
	}
	res, err := c.Get(u)
	if err != nil {
		return stats{}, err
	}
	defer res.Body.Close()
	var s stats
	return s, json.NewDecoder(res.Body).Decode(&s)
}

// waitQuiet waits until the receiver has had no arrival for quiet, at most limit.
func waitQuiet(ctx context.Context, c *http.Client, control string, quiet, limit time.Duration) (stats, error) {
	deadline := time.Now().Add(limit)
	var last stats
	lastChange := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := getStats(c, control, false)
		if err != nil {
			return s, err
		}
		if s.Count != last.Count {
			last, lastChange = s, time.Now()
		} else if s.Count > 0 && time.Since(lastChange) > quiet {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last, fmt.Errorf("deliveries still arriving after %s", limit)
}

// waitCount waits until the receiver has had n arrivals, at most limit.
func waitCount(ctx context.Context, c *http.Client, control string, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := getStats(c, control, false)
		if err != nil {
			return err
		}
		if s.Count >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%d deliveries not all arrived after %s", n, limit)
}

// reset zeroes the receiver's counts; with record, it also keeps each path's first
// arrival from now on.
func reset(c *http.Client, control string, record bool) error {
	u := control + "/reset"
	if record {
		u += "?record=1"
	}
	res, err := c.Post(u, "", nil)
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}
