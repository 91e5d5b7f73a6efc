package dispatch_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd/dispatch"
)

// BenchmarkUpstreamOutage registers an organisation's members at a stand-in for
// ORCID's API (a real HTTP server) that fails as ORCID may, with the default
// settings on the test clock (a turn a second; a call moves the clock 300 ms
// divided among the per_host calls out, about 27 calls a second), and reports
// what the pattern cost: calls to the API while it lasted (calls-during),
// records registered by its end (registered-by-end), and minutes from its end
// until every record the API does not fail for good was registered
// (minutes-after). It measures the upstream's outage hold (hub.go): a full
// outage costs a call per wait, not per order. Without -short, 2,000 members;
// with it, 200 and shorter patterns (CI runs it so, once). The random draws are
// seeded: a run is the same each time, but for the order calls come back in.
func BenchmarkUpstreamOutage(b *testing.B) {
	n, span := 2000, 10*time.Minute
	if testing.Short() {
		n, span = 200, time.Minute
	}
	for _, p := range []struct {
		name   string
		span   time.Duration // the pattern's length, 0 for one that lasts
		status func(el time.Duration, id string, rnd *rand.Rand) int
	}{
		{"down", span, func(el time.Duration, _ string, _ *rand.Rand) int { return 500 }},
		{"fails-30%", span, func(el time.Duration, _ string, rnd *rand.Rand) int { return fails(rnd, 0.3) }},
		{"fails-60%", span, func(el time.Duration, _ string, rnd *rand.Rand) int { return fails(rnd, 0.6) }},
		{"flapping-20s", span / 2, func(el time.Duration, _ string, _ *rand.Rand) int {
			if (el/(20*time.Second))%2 == 0 {
				return 500
			}
			return 201
		}},
		{"5-records-broken-in-a-row", 0, func(_ time.Duration, id string, _ *rand.Rand) int {
			for i := 100; i < 105; i++ {
				if id == testOrcid(i%n) {
					return 500
				}
			}
			return 201
		}},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				r := outageRun(b, n, p.span, p.status)
				b.ReportMetric(float64(r.during), "calls-during")
				b.ReportMetric(float64(r.byEnd), "registered-by-end")
				b.ReportMetric(r.after.Minutes(), "minutes-after")
			}
		})
	}
}

func fails(rnd *rand.Rand, p float64) int {
	if rnd.Float64() < p {
		return 500
	}
	return 201
}

type outageResult struct {
	during, byEnd int
	after         time.Duration
}

// outageRun registers n members against an API answering status while the
// pattern lasts (span; for good, on the records it fails, when span is 0) and
// 201 after it, for at most four hours of the test clock.
func outageRun(b *testing.B, n int, span time.Duration, status func(time.Duration, string, *rand.Rand) int) outageResult {
	const latency, perHost = 300 * time.Millisecond, 8
	e := newEnv(b)
	start := e.clock.Now()
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	jitter := rand.New(rand.NewPCG(3, 4))
	var r outageResult
	ok := map[string]bool{}
	broken := map[string]bool{}
	var last time.Duration
	api := newReceiver(b, func(_ int, w http.ResponseWriter, req *http.Request, _ []byte) error {
		id, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v3.0/"), "/")
		mu.Lock()
		el := e.clock.Now().Sub(start)
		st := 201
		if span == 0 || el < span {
			st = status(el, id, rnd)
			r.during++
		}
		if span == 0 && st != 201 {
			broken[id] = true
		}
		if st == 201 && !ok[id] {
			ok[id], last = true, el
		}
		mu.Unlock()
		e.clock.Advance(latency / perHost)
		w.WriteHeader(st)
		return nil
	})
	tokens := newReceiver(b, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) error {
		answerToken(w)
		return nil
	})
	d, _ := upstreamAt(b, e, n, api.URL, tokens.URL, func(o *dispatch.Options) {
		o.PerHost = perHost
		o.Logger = slog.New(slog.DiscardHandler)
		var jm sync.Mutex
		o.Rand = func() float64 { jm.Lock(); defer jm.Unlock(); return jitter.Float64() }
	})
	u, err := url.Parse(api.URL)
	if err != nil {
		b.Fatal(err)
	}
	for e.clock.Now().Sub(start) < 4*time.Hour {
		dispatch.SetHostSpeed(d, u.Host, latency) // ORCID's room, whatever this machine's speed
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if _, err := d.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		if err := d.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		mu.Lock()
		el, done := e.clock.Now().Sub(start), len(ok)+len(broken) == n
		if el < span || span == 0 {
			r.byEnd = len(ok)
		}
		mu.Unlock()
		if done && el >= span {
			break
		}
		e.clock.Advance(time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ok)+len(broken) < n {
		b.Fatalf("%d of %d records registered in four hours", len(ok), n-len(broken))
	}
	r.after = max(last-span, 0)
	return r
}
