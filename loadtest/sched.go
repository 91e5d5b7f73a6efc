package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// schedHist is hookd's go_sched_latencies_seconds at one moment: how long its
// goroutines waited for a processor once runnable, as cumulative counts at upper
// bounds (seconds).
type schedHist struct {
	at     time.Time
	le     []float64
	counts []float64
}

// readSched reads the histogram from hookd's /metrics; ok is false when it cannot.
func (h *hookd) readSched(c *http.Client) (schedHist, bool) {
	res, err := c.Get(h.url + "/metrics")
	if err != nil {
		return schedHist{}, false
	}
	defer res.Body.Close()
	s := schedHist{at: time.Now()}
	sc := bufio.NewScanner(res.Body)
	const prefix = `go_sched_latencies_seconds_bucket{le="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(count, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		s.le, s.counts = append(s.le, bound), append(s.counts, n)
	}
	return s, len(s.le) > 0
}

// since is the histogram of the waits between a and s, as "p50 … p90 … p99 …
// (n waits)": each quantile is the upper bound of the bucket it falls in.
func (s schedHist) since(a schedHist) string {
	if len(s.le) == 0 || len(a.counts) != len(s.counts) {
		return "not measured"
	}
	total := s.counts[len(s.counts)-1] - a.counts[len(a.counts)-1]
	if total <= 0 {
		return "no waits"
	}
	q := func(p float64) string {
		for i := range s.le {
			if s.counts[i]-a.counts[i] >= p*total {
				return fmtBound(s.le[i])
			}
		}
		return "+Inf"
	}
	return fmt.Sprintf("p50 ≤ %s, p90 ≤ %s, p99 ≤ %s, p99.9 ≤ %s (%.0f waits)", q(0.5), q(0.9), q(0.99), q(0.999), total)
}

func fmtBound(sec float64) string {
	if sec > 1e300 {
		return "+Inf"
	}
	return time.Duration(sec * float64(time.Second)).Round(time.Microsecond / 10).String()
}

// schedSampler reads hookd's scheduler histogram every interval until stopped, so
// a phase can be cut out of the run afterwards (between).
type schedSampler struct {
	mu      sync.Mutex
	samples []schedHist
	stop    chan struct{}
	done    chan struct{}
}

func sampleSched(c *http.Client, h *hookd, every time.Duration) *schedSampler {
	s := &schedSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if hist, ok := h.readSched(c); ok {
				s.mu.Lock()
				s.samples = append(s.samples, hist)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// end stops the sampler.
func (s *schedSampler) end() {
	close(s.stop)
	<-s.done
}

// between is the histogram of the waits from the first sample to the last one
// taken before end.
func (s *schedSampler) between(end time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last *schedHist
	for i := range s.samples {
		if !s.samples[i].at.After(end) {
			last = &s.samples[i]
		}
	}
	if len(s.samples) == 0 || last == nil || last == &s.samples[0] {
		return "not measured"
	}
	return last.since(s.samples[0]) + fmt.Sprintf(" over %s", last.at.Sub(s.samples[0].at).Round(time.Millisecond))
}
