package metrics

import (
	"runtime/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// schedLatencies is the Go runtime's /sched/latencies:seconds, how long goroutines
// waited for a processor once they could run: the delay a loaded machine adds at
// every wake-up of a request (a read, the group writer's commit, the answer). The
// Go collector can export it too, but at bounds a decade apart (7 µs, 82 µs,
// 0.9 ms, 10 ms); these bounds tell a 2 ms wait from an 8 ms one.
type schedLatencies struct{}

var (
	descSched   = prometheus.NewDesc("go_sched_latencies_seconds", "How long goroutines waited for a processor once runnable (the Go runtime's /sched/latencies:seconds, which samples them); the sum is estimated from the runtime's buckets.", nil, nil)
	schedBounds = []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 3e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 1}
)

func (schedLatencies) Describe(ch chan<- *prometheus.Desc) { ch <- descSched }

func (schedLatencies) Collect(ch chan<- prometheus.Metric) {
	sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return // a runtime without it
	}
	count, sum, buckets := rebucket(sample[0].Value.Float64Histogram(), schedBounds)
	ch <- prometheus.MustNewConstHistogram(descSched, count, sum, buckets)
}

// rebucket turns a runtime histogram (counts between consecutive boundaries) into
// cumulative counts at bounds: a runtime bucket counts at the first bound at or
// above its upper boundary. The sum takes each wait at its bucket's lower boundary.
func rebucket(h *metrics.Float64Histogram, bounds []float64) (count uint64, sum float64, cumulative map[float64]uint64) {
	cumulative = make(map[float64]uint64, len(bounds))
	per := make([]uint64, len(bounds))
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		count += n
		if lo := h.Buckets[i]; lo > 0 {
			sum += float64(n) * lo
		}
		hi := h.Buckets[i+1]
		for j, b := range bounds {
			if hi <= b {
				per[j] += n
				break
			}
		}
	}
	var run uint64
	for j, b := range bounds {
		run += per[j]
		cumulative[b] = run
	}
	return count, sum, cumulative
}
