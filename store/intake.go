package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The intake: events in, outbox rows out, with idempotency keys and event ids.

// Event says that a record was updated or created.
type Event struct {
	Orcid string
	Type  string // EventUpdated (default) or EventCreated
	ID    string // optional: a repeat of the same ID within IdempotencyWindow is a no-op
}

// IdempotencyWindow is how long an idempotency key or event id is remembered.
const IdempotencyWindow = 24 * time.Hour

// IntakeResult is the answer to an intake: stored with an idempotency key so a
// repeat answers the same.
type IntakeResult struct {
	Accepted   int  `json:"accepted"`   // events taken in this call
	Duplicates int  `json:"duplicates"` // events skipped because their id was seen within 24 h
	Deliveries int  `json:"deliveries"` // outbox rows made or merged into
	Replayed   bool `json:"-"`          // true when this answer is the stored one of an earlier call
	// Claimed is true when, as the call was committed, the dispatch loop's fresh
	// claim took every delivery due that it could take (Store.ClaimFresh) and the
	// loop held no outcome it had not recorded (FreshClaimer.Settled): a turn to
	// claim them, which a nudge of the loop asks for, would find none.
	Claimed bool `json:"-"`
}

// remembered is what an idempotency key keeps: the answer, and a digest of the
// events it answered (requestDigest), so that the key sent with other events is
// refused instead of answered as if they were taken. A key kept before the digest
// was has none, and is answered as before.
type remembered struct {
	IntakeResult
	Request string `json:"request,omitempty"`
}

// requestDigest is the digest of a call's events (after their types are read), in
// their order.
func requestDigest(events []Event) string {
	n := 0
	for _, ev := range events {
		n += len(ev.Orcid) + len(ev.Type) + len(ev.ID) + 3
	}
	b := make([]byte, 0, n) // one allocation, whatever the number of events
	for _, ev := range events {
		b = append(append(append(append(append(append(b, ev.Orcid...), 0), ev.Type...), 0), ev.ID...), 0)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fanOutMerge is how an event merges into the pending delivery of its subscription
// and record: the partial unique index deliveries_one_pending is the deduplication,
// and the pending row keeps its due time.
const fanOutMerge = `
ON CONFLICT(subscription_id, subject) WHERE state = 0 DO UPDATE SET
	last_event_at = CASE WHEN excluded.last_event_at > last_event_at THEN excluded.last_event_at ELSE last_event_at END,
	event_count = event_count + 1,
	event_type = CASE WHEN excluded.event_type = 'CREATED' THEN 'CREATED' ELSE event_type END,
	` + revised

// qFanOut inserts or merges one pending delivery per matching active subscription
// (?5 is the event type's bit in event_mask).
//
// It is written so that SQLite runs it without a statement journal (a copy of every
// page it changes, made first, about a tenth of a single event's work): it calls no
// SQL function (the mask, not instr() on the types; CASE, not max()), and nothing in
// it can abort half-way: OR FAIL for the insert's constraints, the foreign keys
// checked at the commit, and no NOT NULL on the columns the merge changes (schema
// version 14). TestFanOutNeedsNoStatementJournal keeps it so. Each branch finds its
// subscriptions' ids and masks in an index (version 14 too), without reading a
// subscription row (TestFanOutPlan).
const qFanOut = `
INSERT OR FAIL INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
SELECT x.id, ?1, ?2, 0, ?3, ?4, ?4
FROM (
	SELECT id, event_mask FROM subscriptions WHERE orcid = ?1 AND active = 1
	UNION ALL
	SELECT id, event_mask FROM subscriptions WHERE orcid IS NULL AND org_id IS NULL AND active = 1
	UNION ALL
	SELECT s.id, s.event_mask FROM members m JOIN subscriptions s ON s.org_id = m.org_id AND s.active = 1 WHERE m.orcid = ?1
) x
WHERE x.event_mask IS NULL OR (x.event_mask & ?5) <> 0` + fanOutMerge

// qFanOutAll is qFanOut for all of a call's events in one statement: ?1 is a JSON
// array of [orcid, type, bit] triples. One statement instead of one an event spares
// each event the statement's own overhead and its statement journal (which a
// statement reading JSON with SQL functions cannot avoid: it has one a call). The
// rows go in event by event, in the order qFanOut makes them.
const qFanOutAll = `
WITH ev(n, orcid, type, bit) AS MATERIALIZED (SELECT key, value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1))
INSERT OR FAIL INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
SELECT x.id, x.orcid, x.type, 0, ?2, ?3, ?3
FROM (
	SELECT ev.n, 0 AS branch, ev.orcid, ev.type, ev.bit, s.id, s.event_mask FROM ev CROSS JOIN subscriptions s WHERE s.orcid = ev.orcid AND s.active = 1
	UNION ALL
	SELECT ev.n, 1, ev.orcid, ev.type, ev.bit, s.id, s.event_mask FROM subscriptions s CROSS JOIN ev
		WHERE s.orcid IS NULL AND s.org_id IS NULL AND s.active = 1
	UNION ALL
	SELECT ev.n, 2, ev.orcid, ev.type, ev.bit, s.id, s.event_mask FROM ev CROSS JOIN members m CROSS JOIN subscriptions s
		WHERE m.orcid = ev.orcid AND s.org_id = m.org_id AND s.active = 1
) x
WHERE x.event_mask IS NULL OR (x.event_mask & x.bit) <> 0
ORDER BY x.n, x.branch, x.id` + fanOutMerge

// The intake's other statements.
const (
	qIdemLookup = "SELECT response FROM idempotency WHERE client_id = ? AND key = ? AND created_at > ?"
	qRemember   = `INSERT INTO idempotency(client_id, key, created_at, response) VALUES (?, ?, ?, ?)
		ON CONFLICT(client_id, key) DO UPDATE SET created_at = excluded.created_at, response = excluded.response
		WHERE created_at <= ?`
)

// intakeStmts are the intake's hot statements, prepared once at Open.
type intakeStmts struct {
	fanOut, fanOutAll, idemLookup, remember *sql.Stmt
}

func (s *Store) prepareIntake(ctx context.Context) error {
	p := &s.intake
	return s.prepare(ctx, hot{&p.fanOut, qFanOut}, hot{&p.fanOutAll, qFanOutAll}, hot{&p.idemLookup, qIdemLookup}, hot{&p.remember, qRemember})
}

// Intake records events in one transaction: each fans out to the matching
// subscriptions as outbox rows, due window after the first event of their row.
// With a non-empty key, a repeat of the same client, key and events within 24 h
// changes nothing and returns the first answer; the key with other events is a
// conflict (field Idempotency-Key) that changes nothing either.
func (s *Store) Intake(ctx context.Context, clientID, key string, events []Event, window time.Duration) (IntakeResult, error) {
	hasIDs := false
	for i, ev := range events {
		t, err := ParseEventType("type", ev.Type)
		if err != nil {
			return IntakeResult{}, err
		}
		events[i].Type = t
		hasIDs = hasIDs || ev.ID != ""
	}
	var digest string
	if key != "" {
		digest = requestDigest(events)
	}
	var triples string // the events for qFanOutAll, when none has an id to check first
	if len(events) > 1 && !hasIDs {
		triples = eventTriples(events)
	}
	now := s.Now()
	var at int64 // due at once: the fresh claim claims at no earlier time (groupReq.at)
	if window <= 0 {
		at = ms(now)
	}
	var res IntakeResult
	drained, err := s.groupDrained(ctx, len(events), at, func(ctx context.Context, tx *sql.Tx) error {
		res = IntakeResult{}
		if key != "" {
			var stored string
			err := tx.StmtContext(ctx, s.intake.idemLookup).QueryRowContext(ctx, clientID, "req:"+key, ms(now.Add(-IdempotencyWindow))).Scan(&stored)
			if err == nil {
				var kept remembered
				if err := json.Unmarshal([]byte(stored), &kept); err != nil {
					return err
				}
				if kept.Request != "" && kept.Request != digest {
					return &Error{Code: Conflict, Field: "Idempotency-Key",
						Message: "was sent within the last 24 hours with another request (other events): nothing was taken; give these events a key of their own"}
				}
				res = kept.IntakeResult
				res.Replayed = true
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		unseen, list := events, triples // the events whose id, if any, was not seen before
		if hasIDs {
			unseen = make([]Event, 0, len(events))
			for _, ev := range events {
				if ev.ID != "" {
					seen, err := s.remember(ctx, tx, clientID, "event:"+ev.ID, "", now)
					if err != nil {
						return err
					}
					if seen {
						res.Duplicates++
						continue
					}
				}
				unseen = append(unseen, ev)
			}
			if len(unseen) > 1 {
				list = eventTriples(unseen)
			}
		}
		due := ms(now.Add(window))
		var r sql.Result
		var err error
		switch len(unseen) {
		case 0:
		case 1:
			r, err = tx.StmtContext(ctx, s.intake.fanOut).ExecContext(ctx, unseen[0].Orcid, unseen[0].Type, due, ms(now), eventBit(unseen[0].Type))
		default:
			r, err = tx.StmtContext(ctx, s.intake.fanOutAll).ExecContext(ctx, list, due, ms(now))
		}
		if err != nil {
			return err
		}
		if r != nil {
			n, _ := r.RowsAffected()
			res.Deliveries = int(n)
			if window <= 0 {
				// Due now: the fresh claimer may take them (a coalescing window
				// makes them due later, and a claim now would take others).
				s.madeDeliveries(res.Deliveries)
			}
		}
		res.Accepted = len(unseen)
		if key != "" {
			b, _ := json.Marshal(remembered{IntakeResult: res, Request: digest})
			if _, err := s.remember(ctx, tx, clientID, "req:"+key, string(b), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return IntakeResult{}, fmt.Errorf("intake: %w", err)
	}
	res.Claimed = drained && !res.Replayed
	return res, nil
}

// eventTriples writes events as qFanOutAll takes them: a JSON array of [orcid, type, bit].
func eventTriples(events []Event) string {
	triples := make([][3]any, len(events))
	for i, ev := range events {
		triples[i] = [3]any{ev.Orcid, ev.Type, eventBit(ev.Type)}
	}
	b, _ := json.Marshal(triples) // strings and numbers only: it cannot fail
	return string(b)
}

// remember stores an idempotency key and reports whether it was already there
// within the window (an older one is overwritten).
func (s *Store) remember(ctx context.Context, tx *sql.Tx, clientID, key, response string, now time.Time) (seen bool, err error) {
	r, err := tx.StmtContext(ctx, s.intake.remember).ExecContext(ctx, clientID, key, ms(now), response, ms(now.Add(-IdempotencyWindow)))
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n == 0, nil
}
