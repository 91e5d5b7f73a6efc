package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hookd/orcid"
	"hookd/secret"
	"hookd/store"
)

func benchStore(b *testing.B, subs int) (*store.Store, []store.Event) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "bench.db"), Box: box})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	c, err := st.CreateClient(ctx, store.NewClient{Name: "bench", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	events := make([]store.Event, subs)
	for i := 0; i < subs; i++ {
		base := fmt.Sprintf("%015d", 100000000000000+i)
		d := base + string(orcid.CheckDigit(base))
		events[i] = store.Event{Orcid: d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]}
	}
	// Registered from 16 goroutines, so the set-up shares commits and stays short.
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < subs; i += 16 {
				id := events[i].Orcid
				if _, _, err := st.PutOrcidWebhook(ctx, c.ID, id, fmt.Sprintf("http://127.0.0.1:%d/%s", 9000+i%8, id)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return st, events
}

// BenchmarkExchange measures the outbox's database work alone, with no HTTP: each
// op claims a batch of due deliveries (256, and 128 as a turn of the dispatch loop
// now does at most) and records the previous batch delivered, in one transaction,
// as the dispatch loop does. It reports rows per second and the
// process's CPU time per row (the background checkpointer's included).
func BenchmarkExchange(b *testing.B) {
	for _, batch := range []int{256, 128} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkExchange(b, batch, store.OutcomeDelivered) })
	}
}

// BenchmarkExchangeReleased is BenchmarkExchange with every claimed row handed
// back unsent and due at once, as the rows of a host at its per_host limit are
// turn after turn: the churn of claim and hand-back alone.
func BenchmarkExchangeReleased(b *testing.B) { benchmarkExchange(b, 128, store.OutcomeReleased) }

func benchmarkExchange(b *testing.B, batch int, kind store.OutcomeKind) {
	ctx := context.Background()
	st, events := benchStore(b, store.BenchSize(10000, 1000))
	fill := func() { // an event for every subscription
		for j := 0; j < len(events); j += 1000 {
			if _, err := st.Intake(ctx, "", "", events[j:j+1000], 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill()
	var outcomes []store.Outcome
	b.ResetTimer()
	rows := 0
	var spent, cpu time.Duration
	for i := 0; i < b.N; i++ {
		t0, c0 := time.Now(), cpuTime()
		claimed, err := st.Exchange(ctx, outcomes, batch, time.Minute)
		spent += time.Since(t0)
		cpu += cpuTime() - c0
		if err != nil {
			b.Fatal(err)
		}
		if len(claimed) == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		outcomes = outcomes[:0]
		for _, c := range claimed {
			outcomes = append(outcomes, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID,
				Kind: kind, Attempt: c.Attempt, StartedAt: time.Now(), Status: 204, RetryAt: time.Now()})
		}
		rows += len(claimed)
	}
	b.ReportMetric(float64(rows)/spent.Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(rows), "cpu-µs/row")
}

// cpuTime is the CPU time (user and system) this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIntake measures the fan-out of events into the outbox: batches of 100
// events, each matching one of 10,000 subscriptions.
func BenchmarkIntake(b *testing.B) {
	ctx := context.Background()
	st, events := benchStore(b, store.BenchSize(10000, 1000))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := (i * 100) % len(events)
		if _, err := st.Intake(ctx, "", "", events[j:j+100], 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIntakeConcurrent is the intake of the single-endpoint load (BENCHMARKS.md)
// without HTTP: 8 goroutines each storing batches of 100 events, each for one of
// 20,000 subscriptions, so the group writer commits several calls at once (each in
// a savepoint). Every event makes a new outbox row: after each pass over the
// subscriptions their deliveries are claimed and recorded (not timed). It reports
// events per second and the process's CPU time per event.
func BenchmarkIntakeConcurrent(b *testing.B) {
	const senders, batch = 8, 100
	ctx := context.Background()
	st, events := benchStore(b, store.BenchSize(20000, 1000))
	perPass := len(events) / batch
	b.ResetTimer()
	var spent, cpu time.Duration
	for done := 0; done < b.N; done += perPass {
		n := min(perPass, b.N-done)
		var next atomic.Int64
		var wg sync.WaitGroup
		t0, c0 := time.Now(), cpuTime()
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
					j := int(i) * batch
					if _, err := st.Intake(ctx, "", "", events[j:j+batch], 0); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		spent += time.Since(t0)
		cpu += cpuTime() - c0
		b.StopTimer()
		deliverAll(b, st)
		b.StartTimer()
	}
	b.ReportMetric(float64(batch*b.N)/spent.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(batch*b.N), "cpu-µs/event")
}

// deliverAll claims every due delivery and records it delivered.
func deliverAll(b *testing.B, st *store.Store) {
	b.Helper()
	ctx := context.Background()
	var outcomes []store.Outcome
	for range 1000 {
		claimed, err := st.Exchange(ctx, outcomes, 1000, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(claimed) == 0 && len(outcomes) == 0 {
			return
		}
		outcomes = outcomes[:0]
		for _, c := range claimed {
			outcomes = append(outcomes, store.Outcome{DeliveryID: c.ID, SubscriptionID: c.Target.SubscriptionID,
				Kind: store.OutcomeDelivered, Attempt: c.Attempt, StartedAt: time.Now(), Status: 204})
		}
	}
	b.Fatal("deliveries still due after 1000 turns")
}

// BenchmarkIntakeSingle is the intake of single-event requests over 16 connections
// without HTTP: 16 goroutines each storing one event a call, each for one of 20,000
// subscriptions in turn, so the group writer shares commits between them. It
// reports events per second, the process's CPU time per event, and the calls per
// commit. With -benchtime 20000x each event makes a new pending delivery; with
// more, the later passes merge into those (nothing delivers them here).
func BenchmarkIntakeSingle(b *testing.B) {
	const senders = 16
	ctx := context.Background()
	st, events := benchStore(b, store.BenchSize(20000, 1000))
	groups0, calls0 := st.WriteStats()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	c0 := cpuTime()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				j := int(i) % len(events)
				if _, err := st.Intake(ctx, "", "", events[j:j+1], 0); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cpu := cpuTime() - c0
	b.StopTimer()
	groups1, calls1 := st.WriteStats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(calls1-calls0)/float64(max(groups1-groups0, 1)), "calls/commit")
}

// BenchmarkPurgeKept is one retention pass over a database that keeps a day of
// history and has nothing old enough to delete: 500,000 idempotency keys made over
// the last 24 hours, 500,000 deliveries delivered in the last hour, and as many of a
// webhook since removed, written straight into the file. It reports the pass's
// time (Purge and PurgeRemoved); a pass that reads every key or every delivery
// kept, to find none, takes tens of milliseconds here.
func BenchmarkPurgeKept(b *testing.B) {
	rows := store.BenchSize(500000, 10000)
	ctx := context.Background()
	dir := b.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "purge.db")
	st, err := store.Open(ctx, store.Options{Path: path, Box: box})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := st.CreateClient(ctx, store.NewClient{Name: "bench", Scopes: []string{store.ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	sub, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", "http://127.0.0.1:9/x")
	if err != nil {
		b.Fatal(err)
	}
	gone, _, err := st.PutOrcidWebhook(ctx, c.ID, "0000-0002-1825-0097", "http://127.0.0.1:9/gone")
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
		INSERT INTO idempotency(client_id, key, created_at, response)
		SELECT ?2, 'event:evt_' || hex(randomblob(12)), ?3 - i * 86000000 / ?1, '' FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
		INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at, done_at)
		SELECT ?4, '0000-0002-1825-0097', 'UPDATED', 2, ?3 - 3600000 + i * 3600000 / ?1, ?3 - 3600000 + i * 3600000 / ?1,
			?3 - 3600000 + i * 3600000 / ?1, ?3 - 3600000 + i * 3600000 / ?1 FROM n`,
	} {
		for _, id := range []int64{sub.ID, gone.ID} {
			if _, err := db.Exec(q, rows, c.ID, now, id); err != nil {
				b.Fatal(err)
			}
			if strings.Contains(q, "idempotency") {
				break
			}
		}
	}
	db.Close()
	if err := st.RemoveSubscription(ctx, gone.UID); err != nil { // its deliveries stay, as a removed webhook's
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		n, keys, err := st.Purge(ctx, store.StateDelivered, time.Now().Add(-2*time.Hour), 500)
		if err != nil || n != 0 || keys != 0 {
			b.Fatalf("purged %d deliveries and %d keys (%v); none is old enough", n, keys, err)
		}
		if n, err := st.PurgeRemoved(ctx, time.Now().Add(-2*time.Hour), 500); err != nil || n != 0 {
			b.Fatalf("purged %d deliveries of the removed webhook (%v); none is old enough", n, err)
		}
	}
}

// BenchmarkLineageMove measures what a restored copy's first start spends taking
// itself for a copy (store.Lineage): each op moves the ids and revisions of a
// database of 100,000 deliveries, in the transaction the daemon starts with. The
// sub-benchmark rewrite is the UPDATE of every delivery's revision that the move
// did before the lineage row kept a floor, on the same database, as a yardstick.
func BenchmarkLineageMove(b *testing.B) {
	ctx := context.Background()
	st, events := benchStore(b, store.BenchSize(100000, 1000))
	for j := 0; j < len(events); j += 1000 {
		if _, err := st.Intake(ctx, "", "", events[j:min(j+1000, len(events))], 0); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.Lineage(ctx, store.Seen{}, store.NewMark()); err != nil { // a mark, which each op then takes for another's
		b.Fatal(err)
	}
	b.Run("floor", func(b *testing.B) {
		for range b.N {
			moved, err := st.Lineage(ctx, store.Seen{Elsewhere: true}, store.NewMark())
			if err != nil {
				b.Fatal(err)
			}
			if moved == 0 {
				b.Fatal("not taken for a copy: nothing moved")
			}
		}
	})
	b.Run("rewrite", func(b *testing.B) {
		for range b.N {
			if err := store.ExecWrite(ctx, st, "UPDATE deliveries SET msg_rev = max(coalesce(msg_rev, 0) + 1, ?)", time.Now().Unix()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
