package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite"
)

// historyAge is how far back -history spreads the deliveries it adds: hookd's
// default retention, so a run on such a database sees what a database in steady
// use holds, and retention (set to the same age for the run) deletes none of it.
const historyAge = 7 * 24 * time.Hour

// withHistory adds o.history delivered deliveries to the database of the stopped
// hookd h (seedHistory), if any, and says so in rep.
func withHistory(ctx context.Context, o options, h *hookd, rep *report) error {
	if o.history == 0 {
		return nil
	}
	start := time.Now()
	size, err := seedHistory(ctx, h.db, o.history, o.answer)
	if err != nil {
		return err
	}
	rep.add("history", "%d delivered deliveries of the last week added in %s, over every webhook; the database is now %s; retention %s",
		o.history, time.Since(start).Round(time.Millisecond), mib(size), historyAge)
	return nil
}

// seedHistory adds n delivered deliveries to the database of a stopped hookd,
// spread evenly over the registered subscriptions and over the last historyAge,
// from an hour after its start to an hour ago (so retention at historyAge deletes
// none of it during a run), oldest first, as a week of callbacks leaves them: each
// with its successful attempt on the row and the receiver's answer. It returns
// the database's size afterwards.
func seedHistory(ctx context.Context, path string, n int, answer string) (int64, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(OFF)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var lo, hi int64
	if err := db.QueryRowContext(ctx, "SELECT min(id), max(id) FROM subscriptions").Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("history: the subscriptions: %w", err)
	}
	now := time.Now()
	start, end := now.Add(time.Hour-historyAge).UnixMilli(), now.Add(-time.Hour).UnixMilli()
	response, status := "", 204
	if answer == "receipt" {
		response, status = receipt, 200
	}
	_, err = db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1),
		r AS (SELECT i, ?3 + (i % (?4 - ?3 + 1)) AS sub, ?5 + i * (?6 - ?5) / ?1 AS t FROM n)
		INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, attempts, event_count,
			first_event_at, last_event_at, first_attempt_at, last_status, ok_started_at, ok_duration_ms, ok_response, done_at)
		SELECT s.id, s.orcid, 'UPDATED', 2, r.t, 1, 1, r.t, r.t, r.t, ?7, r.t, 2, ?2, r.t + 2
		FROM r JOIN subscriptions s ON s.id = r.sub`, n, response, lo, hi, start, end, status)
	if err != nil {
		return 0, fmt.Errorf("history: %w", err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, fmt.Errorf("history: checkpoint: %w", err)
	}
	var size int64
	err = db.QueryRowContext(ctx, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size").Scan(&size)
	return size, err
}
