package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hookd/httpapi"
	"hookd/orcid"
	"hookd/secret"
	"hookd/store"
)

// BenchmarkIntakeHTTP measures the event intake through the real router over
// loopback HTTP: single-event POSTs from 64 concurrent clients, each event for one
// of 10,000 ORCID-style subscriptions, synchronous = full. No dispatcher runs.
func BenchmarkIntakeHTTP(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "b.db"), Box: box})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := st.CreateClient(ctx, store.NewClient{Name: "b", Scopes: []string{store.ScopeWebhook, store.ScopeNotify}})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := st.IssueToken(ctx, c.Client, []string{store.ScopeNotify}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 10000)
	for i := range ids {
		base := fmt.Sprintf("%015d", 300000000000000+i)
		d := base + string(orcid.CheckDigit(base))
		ids[i] = d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
	}
	// Register concurrently, so the set-up shares commits and stays short.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 16 {
				if _, _, err := st.PutOrcidWebhook(ctx, c.ID, ids[i], "http://127.0.0.1:9/"+ids[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Options{Store: st, AllowPrivateTargets: true}).Handler())
	defer srv.Close()
	g0, c0 := st.WriteStats()
	postEvents(b, srv.URL, tok.Access, func(i int) string { return ids[i%len(ids)] }, "events/s")
	g1, c1 := st.WriteStats()
	b.ReportMetric(float64(c1-c0)/float64(max(g1-g0, 1)), "calls/commit")
}

// BenchmarkNoopHTTP is BenchmarkIntakeHTTP's yardstick: the same client, requests
// and concurrency against a handler that reads the body and answers 202 at once.
func BenchmarkNoopHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":1,"duplicates":0,"deliveries":1}`)
	}))
	defer srv.Close()
	postEvents(b, srv.URL, "0123456789abcdef0123456789abcdef", func(int) string { return "0000-0002-1825-0097" }, "requests/s")
}

// postEvents sends b.N single-event POSTs to base's intake path from 64 goroutines
// (on 2 CPUs), each expecting 202, and reports the rate (as unit) and the process's
// CPU time per request.
func postEvents(b *testing.B, base, token string, orcid func(i int) string, unit string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(32)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest(http.MethodPost, base+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"`+orcid(i)+`"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body) // read to the end, so the connection is reused
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU time (user and system) this process has used so far: client
// and server share it here, as they share the machine's cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
