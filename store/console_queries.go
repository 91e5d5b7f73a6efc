package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The console's overview: figures it reads on every refresh, each through an index,
// for what one principal sees (Visibility). Its lists of webhooks and deliveries
// are the store's (Subscriptions, Deliveries), with the same filters as the command
// line and the APIs.

// FiguresCap bounds the counts of an owner's deliveries and of a failing webhook's:
// past it the overview says "more than" instead of counting a large backlog on
// every refresh.
const FiguresCap = 10000

// OutboxFigures are the overview's counts for what one principal sees.
type OutboxFigures struct {
	Pending  int // awaiting their first attempt or a retry
	InFlight int
	Dead     int
	// Retrying is how many of Pending have failed at least once; it is counted for
	// an owner only (for all of hookd, it would read every pending row).
	Retrying      int
	RetryingKnown bool
	OldestDueAge  time.Duration // how long the oldest due delivery has been due
}

// qOutboxFigures counts the deliveries of the subscriptions of client ?1 or
// organisation ?2 by state, each count stopping at ?4, and finds the oldest due at
// ?3, as qGauges does (a row handed back unsent counts from when it first was due,
// claimed again or not). Each count names its state's index: left to choose, SQLite took the index of
// all a subscription's deliveries, and read every one it has kept (a week of them,
// by default) on every refresh of the overview. CROSS JOIN keeps the principal's
// subscriptions the outer loop: with the index named, SQLite otherwise read the
// whole index, everyone's deliveries in that state (TestStateCountPlans).
const qOutboxFigures = `WITH mine AS (
		SELECT id FROM subscriptions WHERE client_id = ?1 UNION SELECT id FROM subscriptions WHERE org_id = ?2)
	SELECT
		(SELECT count(*) FROM (SELECT 1 FROM mine CROSS JOIN deliveries d INDEXED BY deliveries_one_pending ON d.subscription_id = mine.id AND d.state = 0 LIMIT ?4)),
		(SELECT count(*) FROM (SELECT 1 FROM mine CROSS JOIN deliveries d INDEXED BY deliveries_one_pending ON d.subscription_id = mine.id AND d.state = 0 AND d.attempts > d.attempt_base LIMIT ?4)),
		(SELECT count(*) FROM (SELECT 1 FROM mine CROSS JOIN deliveries d INDEXED BY deliveries_in_flight ON d.subscription_id = mine.id AND d.state = 1 LIMIT ?4)),
		(SELECT count(*) FROM (SELECT 1 FROM mine CROSS JOIN deliveries d INDEXED BY deliveries_dead_subscription ON d.subscription_id = mine.id AND d.state = 3 LIMIT ?4)),
		(SELECT min(w) FROM (
			SELECT min(coalesce(d.waiting_since, d.due_at)) AS w FROM mine CROSS JOIN deliveries d INDEXED BY deliveries_one_pending
				ON d.subscription_id = mine.id AND d.state = 0 AND coalesce(d.waiting_since, d.due_at) <= ?3
			UNION ALL
			SELECT min(d.waiting_since) FROM mine CROSS JOIN deliveries d INDEXED BY deliveries_in_flight
				ON d.subscription_id = mine.id AND d.state = 1 AND d.waiting_since <= ?3))`

// ownedRow is the condition that the deliveries row d is of a live subscription of
// client ?1 or organisation ?2, tested on the row.
const ownedRow = `EXISTS (SELECT 1 FROM subscriptions s2 WHERE s2.id = d.subscription_id AND (s2.client_id = ?1 OR s2.org_id = ?2))`

// qOutboxFiguresByState is qOutboxFigures read the other way round, for an owner of
// many subscriptions (ownerSubscriptionsCap or more): each state's index in full,
// as the operator's figures read it, testing each row's owner, each count
// stopping at ?4. Asking each of a million subscriptions for its deliveries in
// each state took three seconds on every refresh of the overview, however small
// the backlog. The oldest due is qOutboxFigures's, read as qGauges reads it: a
// pending row's due time unless it was handed back, then its waiting_since, and
// the waiting_since of a row handed back and claimed again.
const qOutboxFiguresByState = `SELECT
	(SELECT count(*) FROM (SELECT 1 FROM deliveries d INDEXED BY deliveries_one_pending WHERE d.state = 0 AND ` + ownedRow + ` LIMIT ?4)),
	(SELECT count(*) FROM (SELECT 1 FROM deliveries d INDEXED BY deliveries_one_pending WHERE d.state = 0 AND d.attempts > d.attempt_base AND ` + ownedRow + ` LIMIT ?4)),
	(SELECT count(*) FROM (SELECT 1 FROM deliveries d INDEXED BY deliveries_in_flight WHERE d.state = 1 AND ` + ownedRow + ` LIMIT ?4)),
	(SELECT count(*) FROM (SELECT 1 FROM deliveries d INDEXED BY deliveries_dead_subscription WHERE d.state = 3 AND ` + ownedRow + ` LIMIT ?4)),
	(SELECT min(w) FROM (
		SELECT * FROM (SELECT d.due_at AS w FROM deliveries d INDEXED BY deliveries_due
			WHERE d.state = 0 AND d.due_at <= ?3 AND d.waiting_since IS NULL AND ` + ownedRow + ` ORDER BY d.due_at LIMIT 1)
		UNION ALL
		SELECT * FROM (SELECT d.waiting_since FROM deliveries d INDEXED BY deliveries_waiting
			WHERE d.state = 0 AND d.waiting_since IS NOT NULL AND d.waiting_since <= ?3 AND ` + ownedRow + ` ORDER BY d.waiting_since LIMIT 1)
		UNION ALL
		SELECT min(d.waiting_since) FROM deliveries d INDEXED BY deliveries_in_flight
			WHERE d.state = 1 AND d.waiting_since <= ?3 AND ` + ownedRow + `))`

// ownerSubscriptionsCap is how many subscriptions make an owner's figures read
// the state indexes (qOutboxFiguresByState) rather than each subscription's rows.
var ownerSubscriptionsCap = FiguresCap

// OutboxFigures counts the deliveries v sees, each through an index: for all of
// hookd the metrics' Gauges (the state indexes); for a principal, the pending and
// in-flight indexes per subscription, so the cost follows its own backlog, and each
// count stops at FiguresCap+1; for a principal of ownerSubscriptionsCap
// subscriptions or more, the state indexes, testing each row's owner.
func (s *Store) OutboxFigures(ctx context.Context, v Visibility) (OutboxFigures, error) {
	if v.All() {
		g, err := s.Gauges(ctx)
		return OutboxFigures{Pending: g.Pending, InFlight: g.InFlight, Dead: g.Dead, OldestDueAge: g.OldestDueAge}, err
	}
	f := OutboxFigures{RetryingKnown: true}
	var oldest sql.NullInt64
	now := ms(s.Now())
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM subscriptions WHERE client_id = ?1
		UNION ALL SELECT 1 FROM subscriptions WHERE org_id = ?2 LIMIT ?3)`, v.ClientID, v.OrgID, ownerSubscriptionsCap).Scan(&n)
	if err != nil {
		return OutboxFigures{}, fmt.Errorf("outbox figures: %w", err)
	}
	q := qOutboxFigures
	if n >= ownerSubscriptionsCap {
		q = qOutboxFiguresByState
	}
	err = s.read.QueryRowContext(ctx, q, v.ClientID, v.OrgID, now, FiguresCap+1).Scan(&f.Pending, &f.Retrying, &f.InFlight, &f.Dead, &oldest)
	if err != nil {
		return OutboxFigures{}, fmt.Errorf("outbox figures: %w", err)
	}
	if oldest.Valid {
		f.OldestDueAge = time.Duration(now-oldest.Int64) * time.Millisecond
	}
	return f, nil
}

// FailingWebhook is an endpoint that has been failing, for the overview.
type FailingWebhook struct {
	Subscription
	Retrying   int    // deliveries waiting for a retry (at most FailingCap+1)
	Dead       int    // dead deliveries (at most FailingCap+1)
	LastStatus int    // of the last failed attempt of one waiting delivery
	LastError  string // idem
}

// FailingCap bounds the counts of a failing webhook's deliveries, which the
// overview reads for each failing webhook on every refresh.
const FailingCap = 1000

// qFailingFigures is what FailingWebhooks reads of each failing subscription f:
// its deliveries waiting for a retry and its dead ones (each count stopping at ?1),
// and one waiting delivery's answer or, when none waits (retries used up, or the
// webhook deactivated), the newest dead one's; each through the index of its
// state, as qOutboxFigures. The subscriptions follow it as a subquery.
const qFailingFigures = `SELECT f.*,
	(SELECT count(*) FROM (SELECT 1 FROM deliveries d INDEXED BY deliveries_one_pending WHERE d.subscription_id = f.id AND d.state = 0 AND d.attempts > d.attempt_base LIMIT ?1)),
	(SELECT count(*) FROM (SELECT 1 FROM deliveries d INDEXED BY deliveries_dead_subscription WHERE d.subscription_id = f.id AND d.state = 3 LIMIT ?1)),
	coalesce((SELECT d.last_status FROM deliveries d INDEXED BY deliveries_one_pending WHERE d.subscription_id = f.id AND d.state = 0 AND d.attempts > d.attempt_base LIMIT 1),
		(SELECT d.last_status FROM deliveries d INDEXED BY deliveries_dead_subscription WHERE d.subscription_id = f.id AND d.state = 3 ORDER BY d.id DESC LIMIT 1), 0),
	coalesce((SELECT d.last_error FROM deliveries d INDEXED BY deliveries_one_pending WHERE d.subscription_id = f.id AND d.state = 0 AND d.attempts > d.attempt_base LIMIT 1),
		(SELECT d.last_error FROM deliveries d INDEXED BY deliveries_dead_subscription WHERE d.subscription_id = f.id AND d.state = 3 ORDER BY d.id DESC LIMIT 1), '')
	FROM (`

// FailingWebhooks lists the subscriptions v sees that are failing now, the
// longest-failing first, at most limit, with their owners' names. They are found
// through a partial index that holds only failing subscriptions; the answer shown
// is that of one waiting delivery (else the newest dead one), found without reading
// the others.
func (s *Store) FailingWebhooks(ctx context.Context, v Visibility, limit int) ([]FailingWebhook, error) {
	var w conds
	w.add("failing_since IS NOT NULL")
	if !v.All() {
		w.and(ownedLive("subscriptions", v.ClientID, v.OrgID))
	}
	args := append([]any{FailingCap + 1}, w.args...)
	// Through the failing ones' index, named: left to choose, SQLite took a
	// client's index and read every subscription it has (a million, for one with a
	// registration per researcher: a second on every refresh) to find the failing.
	rows, err := s.read.QueryContext(ctx, qFailingFigures+namedSubscriptions+" INDEXED BY subscriptions_failing"+w.where()+
		" ORDER BY failing_since, id LIMIT ?) f ORDER BY f.failing_since, f.id",
		append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("failing webhooks: %w", err)
	}
	defer rows.Close()
	var out []FailingWebhook
	for rows.Next() {
		var f FailingWebhook
		sub, err := scanNamedSubscription(rows, &f.Retrying, &f.Dead, &f.LastStatus, &f.LastError)
		if err != nil {
			return nil, fmt.Errorf("failing webhooks: %w", err)
		}
		f.Subscription = sub
		out = append(out, f)
	}
	return out, rows.Err()
}
