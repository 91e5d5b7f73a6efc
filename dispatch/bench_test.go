package dispatch_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"hookd/dispatch"
	"hookd/orcid"
	"hookd/secret"
	"hookd/store"
)

// benchOrcid makes the n-th valid iD.
func benchOrcid(n int) string {
	base := fmt.Sprintf("%015d", 100000000000000+n)
	d := base + string(orcid.CheckDigit(base))
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
}

// BenchmarkDeliver measures the claim → deliver → record path: 10,000 ORCID-style
// subscriptions, spread over 8 local receivers answering 204 (8 hosts, so the default
// per_host limit of 8 and 64 workers apply), and one event per subscription per
// round. It reports deliveries per second from the dispatcher's wake-up after the
// intake commit to the last recorded outcome (intake itself is BenchmarkIntake), and
// the CPU time the process spent per delivery meanwhile (dispatcher and receivers).
func BenchmarkDeliver(b *testing.B) { deliverBench{}.run(b) }

// BenchmarkDeliverPlatform is BenchmarkDeliver for platform webhooks, one a record:
// a JSON body, HTTP Basic auth and a custom header on every call.
func BenchmarkDeliverPlatform(b *testing.B) {
	deliverBench{register: func(ctx context.Context, st *store.Store, clientID, orcid, url string) error {
		_, _, err := st.CreateWebhook(ctx, clientID, store.WebhookSpec{TargetURL: url, Orcid: orcid,
			Auth: store.Auth{Type: store.AuthBasic, Username: "hookd", Secret: "a password"}, Headers: map[string]string{"X-Tenant": "bench"}})
		return err
	}}.run(b)
}

// BenchmarkDeliverAnswered is BenchmarkDeliver with receivers that answer as many
// do: 200 and a short JSON receipt, which hookd reads, redacts and stores with
// the delivery.
func BenchmarkDeliverAnswered(b *testing.B) {
	deliverBench{answer: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"received","id":"msg_2LqW8qZ4f9Rk","orcid":"0000-0002-1825-0097"}`)
	}}.run(b)
}

// BenchmarkDeliverTLS is BenchmarkDeliver with receivers on https, as most real
// callbacks are: HTTP/1.1 over TLS (the standard transport, not hookd's own plain
// one), and with HTTP/2 where the receiver offers it, as many servers do.
func BenchmarkDeliverTLS(b *testing.B) {
	b.Run("http1", deliverBench{tls: true}.run)
	b.Run("http2", deliverBench{tls: true, h2: true}.run)
}

// registerOrcid registers an ORCID-style webhook of orcid, calling url.
func registerOrcid(ctx context.Context, st *store.Store, clientID, orcid, url string) error {
	_, _, err := st.PutOrcidWebhook(ctx, clientID, orcid, url)
	return err
}

// deliverBench is a shape of BenchmarkDeliver: how webhooks are registered (nil:
// ORCID-style), how receivers answer (nil: 204), and whether they are on https
// (with HTTP/2 offered or not).
type deliverBench struct {
	register func(ctx context.Context, st *store.Store, clientID, orcid, url string) error
	answer   func(http.ResponseWriter)
	tls, h2  bool
}

func (db deliverBench) run(b *testing.B) {
	register, answer := db.register, db.answer
	if register == nil {
		register = registerOrcid
	}
	if answer == nil {
		answer = func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
	}
	const receivers = 8
	subs := 10000
	if testing.Short() { // CI runs each benchmark once under -short, to see that it runs
		subs = 1000
	}
	ctx := context.Background()
	defer debug.SetGCPercent(debug.SetGCPercent(300)) // as hookd serve runs
	dir := b.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "bench.db"), Box: box, Synchronous: os.Getenv("BENCH_SYNC")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var got atomic.Int64
	var urls []string
	roots := x509.NewCertPool()
	for i := 0; i < receivers; i++ {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Add(1)
			answer(w)
		}))
		if db.tls {
			srv.EnableHTTP2 = db.h2
			srv.StartTLS()
			roots.AddCert(srv.Certificate())
		} else {
			srv.Start()
		}
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	c, err := st.CreateClient(ctx, store.NewClient{Name: "bench", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	events := make([]store.Event, subs)
	for i := 0; i < subs; i++ {
		id := benchOrcid(i)
		if err := register(ctx, st, c.ID, id, fmt.Sprintf("%s/%s/updated", urls[i%receivers], id)); err != nil {
			b.Fatal(err)
		}
		events[i] = store.Event{Orcid: id}
	}
	d := dispatch.New(dispatch.Options{Store: st, AllowPrivateTargets: true, Workers: 64, PerHost: 8, Tick: 50 * time.Millisecond})
	defer d.Close()
	if db.tls {
		dispatch.TrustRoots(d, roots)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()

	b.ResetTimer()
	var elapsed, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < subs; j += 1000 {
			if _, err := st.Intake(ctx, "", "", events[j:j+1000], 0); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		d.Nudge()
		want := int64(subs * (i + 1))
		deadline := time.Now().Add(2 * time.Minute)
		for got.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d deliveries arrived", got.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
		for {
			n, err := st.Counts(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n["delivered"] == int(want) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d outcomes recorded", n["delivered"], want)
			}
			time.Sleep(time.Millisecond)
		}
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	b.StopTimer()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(subs*b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(subs*b.N), "cpu-µs/delivery")
}
