package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"hookd/orcid"
	"hookd/secret"
)

// benchSize is a benchmark's set-up size: full, or short under -short, where CI
// runs each benchmark once (-benchtime 1x) to see that it still runs, not to
// measure it.
func benchSize(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchClientStore opens an empty store in a temporary folder, with the client
// "bench" (scope /webhook).
func benchClientStore(b *testing.B) (*Store, Credentials) {
	b.Helper()
	dir := b.TempDir()
	box, err := secret.LoadKeyFile(filepath.Join(dir, "k"), true)
	if err != nil {
		b.Fatal(err)
	}
	st, err := Open(context.Background(), Options{Path: filepath.Join(dir, "bench.db"), Box: box})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	c, err := st.CreateClient(context.Background(), NewClient{Name: "bench", Scopes: []string{ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	return st, c
}

// orcidBenchStore opens a store in a temporary folder with subs ORCID-style
// webhooks of one client, one record each, registered from 16 goroutines so the
// set-up shares commits; it returns the records' iDs and their subscriptions' ids,
// in the same order.
func orcidBenchStore(b *testing.B, subs int) (*Store, []string, []int64) {
	b.Helper()
	ctx := context.Background()
	st, c := benchClientStore(b)
	ids, subIDs := make([]string, subs), make([]int64, subs)
	register(b, subs, func(i int) (err error) {
		base := fmt.Sprintf("%015d", 100000000000000+i)
		d := base + string(orcid.CheckDigit(base))
		ids[i] = d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16]
		sub, _, err := st.PutOrcidWebhook(ctx, c.ID, ids[i], "http://127.0.0.1:9/"+ids[i])
		if err == nil {
			subIDs[i] = sub.ID
		}
		return err
	})
	return st, ids, subIDs
}

// addHistory writes n delivered deliveries straight into the store's file, spread
// evenly over the subscriptions of the client "bench" (orcidBenchStore) and over
// the last week (from an hour after its start to an hour ago), oldest first: what
// a week of callbacks leaves for retention to keep.
func addHistory(b *testing.B, st *Store, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	start, end := st.Now().Add(time.Hour-7*24*time.Hour).UnixMilli(), st.Now().Add(-time.Hour).UnixMilli()
	_, err := st.write.ExecContext(context.Background(), `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1),
		b AS (SELECT min(id) AS lo, count(*) AS n FROM subscriptions WHERE client_id = (SELECT id FROM clients WHERE name = 'bench')),
		r AS (SELECT i, b.lo + i % b.n AS sub, ?2 + i * (?3 - ?2) / ?1 AS t FROM n, b)
		INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, attempts, event_count,
			first_event_at, last_event_at, first_attempt_at, last_status, ok_started_at, ok_duration_ms, done_at)
		SELECT s.id, s.orcid, 'UPDATED', 2, r.t, 1, 1, r.t, r.t, r.t, 204, r.t, 2, r.t + 2
		FROM r JOIN subscriptions s ON s.id = r.sub`, n, start, end)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.write.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
}

// register runs one(i) for every i below n from 16 goroutines, so the writes share
// commits, and stops the benchmark when one of them failed.
func register(b *testing.B, n int, one func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := one(i); err != nil {
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
}

// BenchmarkDeliveryStatements splits the outbox's SQL for one delivery into its
// steps, with the store's own statements on one transaction per 100 deliveries:
// the intake's fan-out of an event (a new row), the claim, the success, and the
// commit. Each event is for another of 20,000 ORCID-style subscriptions. It reports
// the process's CPU time per delivery for each step (BENCHMARKS.md, "The statements
// of one delivery").
func BenchmarkDeliveryStatements(b *testing.B) { deliveryStatements(b, 0) }

// BenchmarkDeliveryStatementsAged is BenchmarkDeliveryStatements on a database
// that keeps a week of history: 1,000,000 delivered deliveries over the 20,000
// subscriptions, as hookd's default retention keeps them.
func BenchmarkDeliveryStatementsAged(b *testing.B) {
	deliveryStatements(b, benchSize(1000000, 20000))
}

func deliveryStatements(b *testing.B, history int) {
	const batch = 100
	ctx := context.Background()
	st, ids, _ := orcidBenchStore(b, benchSize(20000, 1000))
	addHistory(b, st, history)

	var insert, claim, success, commit time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		now := st.Now().UnixMilli()
		tx, err := st.write.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		c0 := processCPU()
		fanOut := tx.StmtContext(ctx, st.intake.fanOut)
		for i := range n {
			if _, err := fanOut.ExecContext(ctx, ids[(done+i)%len(ids)], EventUpdated, now, now, eventBit(EventUpdated)); err != nil {
				b.Fatal(err)
			}
		}
		c1 := processCPU()
		rows, err := tx.StmtContext(ctx, st.claim.claim).QueryContext(ctx, now+60000, now, n-claimNewest(n), claimNewest(n))
		if err != nil {
			b.Fatal(err)
		}
		var claimed []int64
		for rows.Next() {
			var id, sub, attempt, try, count, first, last, firstAttempt, rev int64
			var subject, typ string
			if err := rows.Scan(&id, &sub, &subject, &typ, &attempt, &try, &count, &first, &last, &firstAttempt, &rev); err != nil {
				b.Fatal(err)
			}
			claimed = append(claimed, id)
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		if len(claimed) != n {
			b.Fatalf("claimed %d of %d", len(claimed), n)
		}
		c2 := processCPU()
		ok := tx.StmtContext(ctx, st.claim.deliveredOK)
		for _, id := range claimed {
			if _, err := ok.ExecContext(ctx, now, 204, now, 1, "", id, 0); err != nil {
				b.Fatal(err)
			}
		}
		c3 := processCPU()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		c4 := processCPU()
		insert, claim, success, commit = insert+c1-c0, claim+c2-c1, success+c3-c2, commit+c4-c3
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(per(insert), "insert-µs")
	b.ReportMetric(per(claim), "claim-µs")
	b.ReportMetric(per(success), "success-µs")
	b.ReportMetric(per(commit), "commit-µs")
	b.ReportMetric(per(insert+claim+success+commit), "cpu-µs/delivery")
}

// BenchmarkTargetsCold measures what a claim pays for a subscription whose target
// is not cached (in a backlog of distinct records, every one): the targets of 128
// of 20,000 ORCID-style subscriptions read, their secrets opened, per op. It
// reports the process's CPU time per target.
func BenchmarkTargetsCold(b *testing.B) {
	st, _, ids := orcidBenchStore(b, benchSize(20000, 1000))
	benchTargetsCold(b, st, ids)
}

// BenchmarkTargetsColdPlatform is BenchmarkTargetsCold for 20,000 platform
// webhooks with what they may add: basic auth and a custom header.
func BenchmarkTargetsColdPlatform(b *testing.B) {
	ctx := context.Background()
	st, _, _ := orcidBenchStore(b, 0)
	c, err := st.CreateClient(ctx, NewClient{Name: "platform", Scopes: []string{ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, benchSize(20000, 1000))
	st.caps.EveryRecord = len(ids) // webhooks for every record, far past the built-in cap
	register(b, len(ids), func(i int) error {
		sub, _, err := st.CreateWebhook(ctx, c.ID, WebhookSpec{
			TargetURL: fmt.Sprintf("http://127.0.0.1:9/hook/%d", i),
			Auth:      Auth{Type: AuthBasic, Username: "hookd", Secret: "a password"},
			Headers:   map[string]string{"X-Tenant": "bench"},
		})
		if err == nil {
			ids[i] = sub.ID
		}
		return err
	})
	benchTargetsCold(b, st, ids)
}

// benchTargetsCold loads the targets of ids, 128 at a time, none of them cached.
func benchTargetsCold(b *testing.B, st *Store, ids []int64) {
	const batch = 128
	ctx := context.Background()
	var cpu time.Duration
	loaded := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := map[int64]*Target{}
		for j := range batch {
			want[ids[(i*batch+j)%len(ids)]] = nil
		}
		st.targetCache.forget(0)
		tx, err := st.write.BeginTx(ctx, nil) // the claim reads them on the write connection
		if err != nil {
			b.Fatal(err)
		}
		c0 := processCPU()
		if err := st.cachedTargets(ctx, tx, want, st.Now().UnixMilli()); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - c0
		tx.Rollback()
		loaded += len(want)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(loaded), "cpu-µs/target")
}

// BenchmarkDeliveriesPage is the newest page of 20 deliveries on a database that
// keeps a week of history (1,000,000 delivered deliveries of one client's 20,000
// webhooks), as the deliveries list of the API and the console reads it: for that
// client, for a small client whose 50 deliveries are older than all of them, and
// for the operator.
func BenchmarkDeliveriesPage(b *testing.B) {
	ctx := context.Background()
	st, _, _ := orcidBenchStore(b, benchSize(20000, 1000))
	small, err := st.CreateClient(ctx, NewClient{Name: "small", Scopes: []string{ScopeWebhook}})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := st.PutOrcidWebhook(ctx, small.ID, "0000-0002-1825-0097", "http://127.0.0.1:9/small"); err != nil {
		b.Fatal(err)
	}
	for range 50 {
		if _, err := st.Intake(ctx, "", "", []Event{{Orcid: "0000-0002-1825-0097", Type: EventUpdated}}, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := st.write.ExecContext(ctx, "UPDATE deliveries SET state = 2, done_at = due_at WHERE state = 0"); err != nil {
			b.Fatal(err)
		}
	}
	addHistory(b, st, benchSize(1000000, 20000))
	for _, c := range []struct {
		name string
		f    DeliveryFilter
		want int
	}{
		{"client", DeliveryFilter{ClientID: "bench", Limit: 20}, 20},
		{"small-client", DeliveryFilter{ClientID: "small", Limit: 20}, 20},
		{"operator", DeliveryFilter{Limit: 20}, 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				ds, err := st.Deliveries(ctx, c.f)
				if err != nil {
					b.Fatal(err)
				}
				if len(ds) != c.want {
					b.Fatalf("%d deliveries, want %d", len(ds), c.want)
				}
			}
		})
	}
}

// BenchmarkRemoveWithHistory removes a webhook that has kept 1,000,000 delivered
// deliveries while another client's record gets an event every millisecond, and
// reports how long the removal took and how long those events' intake calls took
// meanwhile (the longest, and the median): in one transaction (as before history
// was moved ahead of a removal) and moved ahead; and one with a backlog of
// 100,000 waiting deliveries instead (an endpoint that has been failing), which
// the removal moves and marks dead in its own transaction; and the deactivation
// of such a webhook, which turns a batch of them dead (killBatch), here in one
// transaction (as before) and in batches.
func BenchmarkRemoveWithHistory(b *testing.B) {
	history, backlog := benchSize(1000000, 20000), benchSize(100000, 2000)
	for _, c := range []struct {
		name             string
		over             int
		history, backlog int
		deactivate       bool
		kill             int
	}{
		{"one-transaction", 1 << 40, history, 0, false, killBatch},
		{"ahead", aheadOver, history, 0, false, killBatch},
		{"backlog", aheadOver, 0, backlog, false, killBatch},
		{"deactivate-backlog-at-once", aheadOver, 0, backlog, true, 1 << 30},
		{"deactivate-backlog", aheadOver, 0, backlog, true, killBatch},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			defer func(o, k int) { aheadOver, killBatch = o, k }(aheadOver, killBatch)
			aheadOver, killBatch = c.over, c.kill
			for b.Loop() {
				b.StopTimer()
				st, _, _ := orcidBenchStore(b, 1)
				addHistory(b, st, c.history)
				if c.backlog > 0 {
					_, err := st.write.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
						INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, attempts, first_event_at, last_event_at)
						SELECT (SELECT id FROM subscriptions), 'r' || i, 'UPDATED', 0, ?2, 3, ?2, ?2 FROM n`, c.backlog, st.Now().Add(time.Hour).UnixMilli())
					if err != nil {
						b.Fatal(err)
					}
				}
				other, err := st.CreateClient(ctx, NewClient{Name: "other", Scopes: []string{ScopeWebhook}})
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := st.PutOrcidWebhook(ctx, other.ID, "0000-0002-1825-0097", "http://127.0.0.1:9/other"); err != nil {
					b.Fatal(err)
				}
				subs, err := st.Subscriptions(ctx, SubscriptionFilter{ClientID: "bench"})
				if err != nil || len(subs) != 1 {
					b.Fatal(len(subs), err)
				}
				done := make(chan struct{})
				lats := make(chan []time.Duration)
				go func() {
					var ls []time.Duration
					defer func() { lats <- ls }()
					for i := 0; i < 100000; i++ { // bounded: 100 s at most
						// The first call goes at once, so that even a removal
						// quicker than a millisecond (-short) has one beside it.
						if i > 0 {
							select {
							case <-done:
								return
							case <-time.After(time.Millisecond):
							}
						}
						t0 := time.Now()
						if _, err := st.Intake(ctx, "", "", []Event{{Orcid: "0000-0002-1825-0097"}}, 0); err != nil {
							b.Error(err)
							return
						}
						ls = append(ls, time.Since(t0))
					}
				}()
				b.StartTimer()
				t0 := time.Now()
				if c.deactivate {
					if _, err := st.SetSubscriptionActive(ctx, subs[0].UID, false, "retired"); err != nil {
						b.Fatal(err)
					}
				} else if err := st.RemoveSubscription(ctx, subs[0].UID); err != nil {
					b.Fatal(err)
				}
				took := time.Since(t0)
				b.StopTimer()
				close(done)
				ls := <-lats
				slices.Sort(ls)
				if len(ls) == 0 {
					b.Fatal("no intake call ran during the removal")
				}
				b.ReportMetric(took.Seconds(), "removal-s")
				b.ReportMetric(float64(ls[len(ls)-1].Microseconds())/1000, "intake-max-ms")
				b.ReportMetric(float64(ls[len(ls)/2].Microseconds())/1000, "intake-p50-ms")
				b.ReportMetric(float64(len(ls)), "intake-calls")
				st.Close()
				b.StartTimer()
			}
		})
	}
}
