package dispatch_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/dispatch"
)

// BenchmarkRawPOST is the baseline for BenchmarkDeliver: the same 8 local receivers
// driven by a plain Go HTTP client with the same concurrency (64 goroutines, 8
// connections per host) and no database. It reports POSTs per second and the CPU
// time per POST (client and receivers).
func BenchmarkRawPOST(b *testing.B) {
	rawPOST(b, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, MaxConnsPerHost: 8}, Timeout: 10 * time.Second})
}

// BenchmarkRawPOSTDeliveryClient is BenchmarkRawPOST through hookd's own delivery
// client (its transport, SSRF guard and limits) instead of the plain one: what
// the client alone costs, without the database.
func BenchmarkRawPOSTDeliveryClient(b *testing.B) {
	rawPOST(b, dispatch.DeliveryClient(64, 8))
}

func rawPOST(b *testing.B, client *http.Client) {
	const receivers, workers, perRound = 8, 64, 10000
	var urls []string
	for i := 0; i < receivers; i++ {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for it := 0; it < b.N; it++ {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= perRound; i = next.Add(1) {
					resp, err := client.Post(urls[i%receivers], "", nil)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(perRound*b.N)/time.Since(start).Seconds(), "posts/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1000/float64(perRound*b.N), "cpu-µs/post")
}

// cpuTime is the CPU time (user and system) this process has used so far: client
// and receivers share it here, as they share the machine's cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
