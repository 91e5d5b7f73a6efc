package store

import (
	"context"
	"testing"
	"time"
)

// BenchmarkGauges reads the outbox's and the webhooks' gauges (what a scrape of
// /metrics reads) on a large outbox, each case in a file of its own, its rows
// written straight into it: 1,000,000 pending deliveries behind a dark host (half
// of them handed back, so waiting), 1,000,000 dead deliveries kept, and 1,000,000
// webhooks (half switched off by a 410, half failing). It reports the
// milliseconds per reading (BENCHMARKS.md, "A scrape of /metrics").
func BenchmarkGauges(b *testing.B) {
	n := benchSize(1000000, 20000)
	for _, c := range []struct {
		name string
		fill func(b *testing.B, st *Store, n int)
	}{
		{"pending", func(b *testing.B, st *Store, n int) { gaugeDeliveries(b, st, n, 0) }},
		{"dead", func(b *testing.B, st *Store, n int) { gaugeDeliveries(b, st, n, 3) }},
		{"subscriptions", func(b *testing.B, st *Store, n int) { gaugeSubscriptions(b, st, n, n/2) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			st, _ := benchClientStore(b)
			c.fill(b, st, n)
			if _, err := st.write.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := st.Gauges(ctx); err != nil { // the pages into the cache
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := st.Gauges(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/reading")
		})
	}
}

// gaugeSubscriptions writes n webhooks of the client "bench" for one host: the
// first off of them switched off by a 410, the others active and failing.
func gaugeSubscriptions(b *testing.B, st *Store, n, off int) {
	b.Helper()
	now := st.Now().UnixMilli()
	_, err := st.write.ExecContext(context.Background(), `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO subscriptions(uid, client_id, format, target, orcid, active, reason, failing_since, created_at, updated_at)
		SELECT printf('bench-%d', i), (SELECT id FROM clients WHERE name = 'bench'), 'empty',
			printf('http://127.0.0.1:9/%d', i), printf('0000-0001-%04d-%04d', i / 10000, i % 10000),
			i >= ?2, CASE WHEN i < ?2 THEN 'gone' ELSE '' END, CASE WHEN i >= ?2 THEN ?3 END, ?3, ?3
		FROM n`, n, off, now)
	if err != nil {
		b.Fatal(err)
	}
}

// gaugeDeliveries writes n deliveries in state (0 pending, 3 dead) for 1,000
// webhooks of one dark host, due over the last hour; of pending ones, every other
// one has been handed back and waits.
func gaugeDeliveries(b *testing.B, st *Store, n, state int) {
	b.Helper()
	gaugeSubscriptions(b, st, 1000, 0)
	now := st.Now().UnixMilli()
	_, err := st.write.ExecContext(context.Background(), `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1),
		s AS (SELECT min(id) AS lo FROM subscriptions)
		INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, attempts, event_count,
			first_event_at, last_event_at, first_attempt_at, last_status, last_error, done_at, waiting_since)
		SELECT s.lo + i % 1000, printf('0000-0002-%04d-%04d', i / 10000, i % 10000), 'UPDATED', ?2,
			?3 - 3600000 + i * 3600000 / ?1, 1, 1, ?3 - 3600000, ?3 - 3600000, ?3 - 3600000, 0, 'connection refused',
			CASE WHEN ?2 = 3 THEN ?3 END,
			CASE WHEN ?2 = 0 AND i % 2 = 0 THEN ?3 - 3600000 + i * 3600000 / ?1 END
		FROM n, s`, n, state, now)
	if err != nil {
		b.Fatal(err)
	}
}
