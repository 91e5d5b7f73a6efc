package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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
		if _, _, err := st.PutOrcidWebhook(ctx, c.ID, ids[i], "http://127.0.0.1:9/"+ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Options{Store: st, AllowPrivateTargets: true}).Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(32) // 64 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/notifications/v1/events", strings.NewReader(`{"orcid":"`+ids[i%len(ids)]+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok.Access)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
