package metrics

import (
	"math"
	"runtime/metrics"
	"testing"

	"github.com/matryer/is"
)

func TestRebucket(t *testing.T) {
	is := is.New(t)
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 0, 4e-6, 6e-6, 0.9e-3, 1.1e-3, 20e-3, math.Inf(1)},
		Counts:  []uint64{0, 1, 2, 3, 4, 5, 6},
	}
	count, sum, got := rebucket(h, []float64{5e-6, 1e-3, 10e-3})
	is.Equal(count, uint64(21))           // every wait counted
	is.Equal(got[5e-6], uint64(1))        // [0, 4µs) only: [4µs, 6µs) ends past 5µs
	is.Equal(got[1e-3], uint64(1+2+3))    // up to 0.9 ms
	is.Equal(got[10e-3], uint64(1+2+3+4)) // up to 1.1 ms; the rest is past the last bound
	is.True(math.Abs(sum-(2*4e-6+3*6e-6+4*0.9e-3+5*1.1e-3+6*20e-3)) < 1e-12)
}
