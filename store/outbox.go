package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Delivery states.
const (
	StatePending   = 0
	StateInFlight  = 1
	StateDelivered = 2
	StateDead      = 3
)

// Event types.
const (
	EventUpdated = "UPDATED"
	EventCreated = "CREATED"
)

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
}

// fanOut inserts or merges one pending delivery per matching active subscription.
// The partial unique index deliveries_one_pending is the deduplication: a second
// event for a pending (subscription, record) pair merges into it and keeps its due time.
const fanOut = `
INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
SELECT s.id, ?1, ?2, 0, ?3, ?4, ?4
FROM (
	SELECT id FROM subscriptions WHERE orcid = ?1 AND active = 1
	UNION ALL
	SELECT id FROM subscriptions WHERE orcid IS NULL AND org_id IS NULL AND active = 1
	UNION ALL
	SELECT s.id FROM members m JOIN subscriptions s ON s.org_id = m.org_id AND s.active = 1 WHERE m.orcid = ?1
) x JOIN subscriptions s ON s.id = x.id
WHERE s.types IS NULL OR instr(s.types, ',' || ?2 || ',') > 0
ON CONFLICT(subscription_id, subject) WHERE state = 0 DO UPDATE SET
	last_event_at = excluded.last_event_at,
	event_count = event_count + 1,
	event_type = CASE WHEN excluded.event_type = 'CREATED' THEN 'CREATED' ELSE event_type END`

// The outbox's other hot statements, prepared once at Open.
const (
	qIdemLookup = "SELECT response FROM idempotency WHERE client_id = ? AND key = ? AND created_at > ?"
	qRemember   = `INSERT INTO idempotency(client_id, key, created_at, response) VALUES (?, ?, ?, ?)
		ON CONFLICT(client_id, key) DO UPDATE SET created_at = excluded.created_at, response = excluded.response
		WHERE created_at <= ?`
	qExpiredLeases = "SELECT id FROM deliveries WHERE state = 1 AND lease_until < ?"
	qTwin          = `SELECT t.id, t.due_at, t.event_count, t.last_event_at, t.event_type
		FROM deliveries d JOIN deliveries t ON t.subscription_id = d.subscription_id AND t.subject = d.subject AND t.state = 0
		WHERE d.id = ? AND t.id != d.id`
	qDeleteDelivery = "DELETE FROM deliveries WHERE id = ?"
	qFoldTwin       = `UPDATE deliveries SET state = 0, due_at = ?, lease_until = NULL, attempts = max(attempts + ?, 0),
		event_count = event_count + ?, last_event_at = max(last_event_at, ?),
		event_type = CASE WHEN ? = 'CREATED' THEN 'CREATED' ELSE event_type END WHERE id = ?`
	qToPending = "UPDATE deliveries SET state = 0, due_at = ?, lease_until = NULL, attempts = max(attempts + ?, 0) WHERE id = ?"
	qTargets   = `SELECT s.id, s.uid, coalesce(s.client_id, ''), s.format, s.target, coalesce(s.headers, ''),
		s.auth_type, s.auth_username, s.auth_client_id, s.auth_token_url, s.auth_secret, s.append_orcid, s.apikey,
		coalesce(s.signing_secret, c.signing_secret), s.previous_secret, coalesce(s.previous_until, 0), coalesce(s.failing_since, 0)
		FROM subscriptions s LEFT JOIN clients c ON c.id = s.client_id WHERE s.id IN (SELECT value FROM json_each(?))`
	// An attempt is logged only while its delivery exists: a subscription deleted
	// during the call took its deliveries with it.
	qAttempt = `INSERT INTO attempts(delivery_id, attempt, started_at, duration_ms, status, error, response)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1)`
	qDone = `UPDATE deliveries SET state = ?, done_at = ?, lease_until = NULL, last_status = ?, last_error = ?,
		first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ? AND state = 1`
	// qDeliveredOK records one success; the batch's successes share the transaction.
	qDeliveredOK = `UPDATE deliveries SET state = 2, done_at = ?1, lease_until = NULL, last_status = ?2, last_error = '',
		first_attempt_at = coalesce(first_attempt_at, ?3), ok_started_at = ?3, ok_duration_ms = ?4, ok_response = ?5
		WHERE id = ?6 AND state = 1`
	qHealthy = "UPDATE subscriptions SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL"
	qFailed  = "UPDATE deliveries SET last_status = ?, last_error = ?, first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ?"
	qFailing = "UPDATE subscriptions SET failing_since = ? WHERE id = ? AND failing_since IS NULL"
	qClaim   = claimBatch
)

var hotQueries = []string{fanOut, qIdemLookup, qRemember, qExpiredLeases, qTwin, qDeleteDelivery, qFoldTwin,
	qToPending, qTargets, qAttempt, qDone, qHealthy, qDeliveredOK, qFailed, qFailing, qClaim,
	qOrcidWebhook, qPutOrcidWebhook, qSavepoint, qRelease, qRollbackTo}

// Intake records events in one transaction: each fans out to the matching
// subscriptions as outbox rows, due window after the first event of their row.
// With a non-empty key, a repeat of the same client and key within 24 h changes
// nothing and returns the first answer.
func (s *Store) Intake(ctx context.Context, clientID, key string, events []Event, window time.Duration) (IntakeResult, error) {
	for i, ev := range events {
		if ev.Type == "" {
			events[i].Type = EventUpdated
		} else if ev.Type != EventUpdated && ev.Type != EventCreated {
			return IntakeResult{}, invalidf("event type %q: must be UPDATED or CREATED", ev.Type)
		}
	}
	now := s.Now()
	var res IntakeResult
	err := s.group(ctx, func(tx *sql.Tx) error {
		res = IntakeResult{}
		if key != "" {
			var stored string
			err := s.stmt(ctx, tx, qIdemLookup).QueryRowContext(ctx, clientID, "req:"+key, ms(now.Add(-IdempotencyWindow))).Scan(&stored)
			if err == nil {
				if err := json.Unmarshal([]byte(stored), &res); err != nil {
					return err
				}
				res.Replayed = true
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		ins := s.stmt(ctx, tx, fanOut)
		due := ms(now.Add(window))
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
			r, err := ins.ExecContext(ctx, ev.Orcid, ev.Type, due, ms(now))
			if err != nil {
				return err
			}
			n, _ := r.RowsAffected()
			res.Deliveries += int(n)
			res.Accepted++
		}
		if key != "" {
			b, _ := json.Marshal(res)
			if _, err := s.remember(ctx, tx, clientID, "req:"+key, string(b), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return IntakeResult{}, fmt.Errorf("intake: %w", err)
	}
	return res, nil
}

// remember stores an idempotency key and reports whether it was already there
// within the window (an older one is overwritten).
func (s *Store) remember(ctx context.Context, tx *sql.Tx, clientID, key, response string, now time.Time) (seen bool, err error) {
	r, err := s.stmt(ctx, tx, qRemember).ExecContext(ctx, clientID, key, ms(now), response, ms(now.Add(-IdempotencyWindow)))
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n == 0, nil
}

// Target is everything a worker needs to call a subscription, secrets opened.
type Target struct {
	SubscriptionID int64
	UID            string
	ClientID       string
	Format         string
	URL            string
	Headers        map[string]string
	Auth           Auth
	AppendOrcid    bool
	APIKey         string
	// FailingSince is when the subscription's current run of failures began (zero when healthy).
	FailingSince time.Time
	// validUntil, when set, is when SigningSecrets lose the rotated-out secret: the
	// target cache must not serve this target from then on.
	validUntil int64
	// SigningSecrets are the whsec_ secrets to sign with: the current one first, then
	// a rotated-out one during its overlap.
	SigningSecrets []string
	// parsed is URL parsed once when the target is loaded (nil when it does not parse).
	parsed *url.URL
}

// ParsedURL returns the target's URL parsed: a copy the caller may change.
func (t *Target) ParsedURL() (*url.URL, error) {
	if t.parsed == nil {
		return url.Parse(t.URL)
	}
	u := *t.parsed
	return &u, nil
}

// Host is the host:port of the target's URL (the whole URL if it does not parse).
func (t *Target) Host() string {
	if t.parsed != nil {
		return t.parsed.Host
	}
	if u, err := url.Parse(t.URL); err == nil {
		return u.Host
	}
	return t.URL
}

// Claimed is one delivery taken for an attempt, with its lease.
type Claimed struct {
	ID           int64
	Subject      string
	EventType    string
	Attempt      int // 1 for the first attempt
	EventCount   int
	FirstEventAt time.Time
	LastEventAt  time.Time
	FirstAttempt time.Time // zero before the first attempt is recorded
	Target       *Target
}

// reclaim returns in-flight rows whose lease has ended (crashed work) to pending,
// folding in a pending twin when one exists.
func (s *Store) reclaim(ctx context.Context, tx *sql.Tx, now int64) (int, error) {
	rows, err := s.stmt(ctx, tx, qExpiredLeases).QueryContext(ctx, now)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.backToPending(ctx, tx, id, now, 0); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// backToPending makes an in-flight (or finished) row pending again, due at due. If a
// pending twin exists for the same pair (an event came in meanwhile), the twin is
// folded into this row: its events are added and the earlier due time wins, so the
// pair still has one pending row and the row keeps its attempt history and webhook-id.
// A negative attemptDelta undoes the claim's attempt count (a release, not a try).
func (s *Store) backToPending(ctx context.Context, tx *sql.Tx, id, due int64, attemptDelta int) error {
	var twin, twinDue, twinCount, twinLast int64
	var twinType string
	err := s.stmt(ctx, tx, qTwin).QueryRowContext(ctx, id).Scan(&twin, &twinDue, &twinCount, &twinLast, &twinType)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = s.stmt(ctx, tx, qToPending).ExecContext(ctx, due, attemptDelta, id)
		return err
	case err != nil:
		return err
	}
	if _, err := s.stmt(ctx, tx, qDeleteDelivery).ExecContext(ctx, twin); err != nil {
		return err
	}
	_, err = s.stmt(ctx, tx, qFoldTwin).ExecContext(ctx, min(due, twinDue), attemptDelta, twinCount, twinLast, twinType, id)
	return err
}

// claimBatch is the one statement that takes due work: the oldest due pending rows
// whose pair has nothing in flight, leased until lease_until. The limit is written
// "?3 + 0" on purpose: SQLite plans with the value of a bare bound LIMIT, so every
// new value (the free capacity changes from turn to turn) recompiled the statement,
// ~120 µs each time on the dispatch loop.
const claimBatch = `
UPDATE deliveries SET state = 1, lease_until = ?1, attempts = attempts + 1
WHERE id IN (
	SELECT x.id FROM deliveries x
	WHERE x.state = 0 AND x.due_at <= ?2
	  AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.state = 1 AND f.subscription_id = x.subscription_id AND f.subject = x.subject)
	ORDER BY x.due_at LIMIT ?3 + 0)
RETURNING id, subscription_id, subject, event_type, attempts, event_count, first_event_at, last_event_at, coalesce(first_attempt_at, 0)`

// Claim reclaims crashed work and then takes up to limit due deliveries with a lease,
// in one transaction, returning them with their targets.
func (s *Store) Claim(ctx context.Context, limit int, lease time.Duration) ([]Claimed, error) {
	return s.Exchange(ctx, nil, limit, lease)
}

// RecordOutcomes writes a batch of outcomes in one transaction: the attempt log, the
// delivery's new state, and the subscription's health.
func (s *Store) RecordOutcomes(ctx context.Context, outcomes []Outcome) error {
	_, err := s.Exchange(ctx, outcomes, 0, 0)
	return err
}

// Exchange is the dispatch loop's one transaction: it records the outcomes of
// finished work, returns crashed work (expired leases) to pending, and claims up to
// limit due deliveries with a lease, returning them with their targets.
func (s *Store) Exchange(ctx context.Context, outcomes []Outcome, limit int, lease time.Duration) ([]Claimed, error) {
	now := ms(s.Now())
	var out []Claimed
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		if err := s.record(ctx, tx, outcomes, now); err != nil {
			return fmt.Errorf("record outcomes: %w", err)
		}
		if err := s.addStats(ctx, tx, outcomes, now); err != nil {
			return err
		}
		if limit <= 0 {
			return nil
		}
		if _, err := s.reclaim(ctx, tx, now); err != nil {
			return fmt.Errorf("reclaim leases: %w", err)
		}
		rows, err := s.stmt(ctx, tx, qClaim).QueryContext(ctx, now+lease.Milliseconds(), now, limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		subs := map[int64]*Target{}
		for rows.Next() {
			var c Claimed
			var subID, first, last, firstAttempt int64
			if err := rows.Scan(&c.ID, &subID, &c.Subject, &c.EventType, &c.Attempt, &c.EventCount, &first, &last, &firstAttempt); err != nil {
				rows.Close()
				return err
			}
			c.FirstEventAt, c.LastEventAt, c.FirstAttempt = fromMS(first), fromMS(last), fromMS(firstAttempt)
			c.Target = &Target{SubscriptionID: subID}
			subs[subID] = nil
			out = append(out, c)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := s.cachedTargets(ctx, tx, subs, now); err != nil {
			return err
		}
		for i := range out {
			out[i].Target = subs[out[i].Target.SubscriptionID]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanTarget reads one row of qTargets and opens its secrets.
func (s *Store) scanTarget(row interface{ Scan(...any) error }, now int64) (*Target, error) {
	var t Target
	var headers string
	var authSecret, apikey, signing, previous []byte
	var previousUntil, failing int64
	if err := row.Scan(&t.SubscriptionID, &t.UID, &t.ClientID, &t.Format, &t.URL, &headers,
		&t.Auth.Type, &t.Auth.Username, &t.Auth.ClientID, &t.Auth.TokenURL, &authSecret, &t.AppendOrcid, &apikey,
		&signing, &previous, &previousUntil, &failing); err != nil {
		return nil, err
	}
	id := t.SubscriptionID
	t.FailingSince = fromMS(failing)
	if u, err := url.Parse(t.URL); err == nil {
		t.parsed = u
	}
	if headers != "" {
		if err := json.Unmarshal([]byte(headers), &t.Headers); err != nil {
			return nil, fmt.Errorf("subscription %d headers: %w", id, err)
		}
	}
	var err error
	if t.Auth.Secret, err = s.box.OpenString(authSecret); err != nil {
		return nil, fmt.Errorf("subscription %d: %w", id, err)
	}
	if t.APIKey, err = s.box.OpenString(apikey); err != nil {
		return nil, fmt.Errorf("subscription %d: %w", id, err)
	}
	if previousUntil <= now {
		previous = nil // the rotation overlap is over
	} else {
		t.validUntil = previousUntil
	}
	for _, sealed := range [][]byte{signing, previous} {
		if len(sealed) == 0 {
			continue
		}
		sig, err := s.box.OpenString(sealed)
		if err != nil {
			return nil, fmt.Errorf("subscription %d: %w", id, err)
		}
		t.SigningSecrets = append(t.SigningSecrets, sig)
	}
	return &t, nil
}

// Outcome kinds: what became of one claimed delivery.
const (
	OutcomeDelivered  = iota // a 2xx
	OutcomeRetry             // a failure; try again at RetryAt
	OutcomeDead              // a failure after give_up_after; keep as dead (replayable)
	OutcomeGone              // a 410: the delivery is dead and its subscription deactivated
	OutcomeReleased          // not attempted (host busy, shutting down): pending again at RetryAt
	OutcomeDeactivate        // a failure that ended disable_after of continuous failure
)

// Outcome is the result of one attempt, recorded by Exchange.
type Outcome struct {
	DeliveryID     int64
	SubscriptionID int64
	Kind           int
	Attempt        int
	StartedAt      time.Time
	Duration       time.Duration
	Status         int    // HTTP status; 0 when there was no response
	Error          string // what went wrong, for the attempt log
	Response       string // the first bytes of the response body
	RetryAt        time.Time
	// WasFailing says the subscription was failing when the delivery was claimed, so a
	// success must clear its failing_since.
	WasFailing bool
}

// record writes outcomes: the attempt log, each delivery's new state, and the
// subscriptions' health.
func (s *Store) record(ctx context.Context, tx *sql.Tx, outcomes []Outcome, now int64) error {
	if len(outcomes) == 0 {
		return nil
	}
	delivered := s.stmt(ctx, tx, qDeliveredOK) // bound to tx once, not per row
	for _, o := range outcomes {
		if o.Kind == OutcomeDelivered {
			if _, err := delivered.ExecContext(ctx, now, o.Status, ms(o.StartedAt), o.Duration.Milliseconds(), o.Response, o.DeliveryID); err != nil {
				return err
			}
			if o.WasFailing {
				if _, err := s.stmt(ctx, tx, qHealthy).ExecContext(ctx, o.SubscriptionID); err != nil {
					return err
				}
				s.targetCache.forget(o.SubscriptionID)
			}
			continue
		}
		if o.Kind == OutcomeReleased {
			if err := s.backToPending(ctx, tx, o.DeliveryID, ms(o.RetryAt), -1); err != nil {
				return err
			}
			continue
		}
		if _, err := s.stmt(ctx, tx, qAttempt).ExecContext(ctx, o.DeliveryID, o.Attempt, ms(o.StartedAt), o.Duration.Milliseconds(), o.Status, o.Error, o.Response); err != nil {
			return err
		}
		switch o.Kind {
		case OutcomeRetry:
			if _, err := s.stmt(ctx, tx, qFailed).ExecContext(ctx, o.Status, o.Error, ms(o.StartedAt), o.DeliveryID); err != nil {
				return err
			}
			if err := s.backToPending(ctx, tx, o.DeliveryID, ms(o.RetryAt), 0); err != nil {
				return err
			}
			if err := s.markFailing(ctx, tx, o.SubscriptionID, ms(o.StartedAt)); err != nil {
				return err
			}
		case OutcomeDead, OutcomeGone, OutcomeDeactivate:
			if _, err := s.stmt(ctx, tx, qDone).ExecContext(ctx, StateDead, now, o.Status, o.Error, ms(o.StartedAt), o.DeliveryID); err != nil {
				return err
			}
			if err := s.markFailing(ctx, tx, o.SubscriptionID, ms(o.StartedAt)); err != nil {
				return err
			}
			switch o.Kind {
			case OutcomeGone:
				if err := s.deactivate(ctx, tx, o.SubscriptionID, fmt.Sprintf("the target answered 410 Gone at %s", fromMS(ms(o.StartedAt)).Format(time.RFC3339)), now); err != nil {
					return err
				}
			case OutcomeDeactivate:
				if err := s.deactivate(ctx, tx, o.SubscriptionID, "deliveries failed continuously since "+o.Error, now); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown outcome kind %d", o.Kind)
		}
	}
	return nil
}

// markFailing notes when a subscription's run of failures began.
func (s *Store) markFailing(ctx context.Context, tx *sql.Tx, subID, at int64) error {
	r, err := s.stmt(ctx, tx, qFailing).ExecContext(ctx, at, subID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n > 0 {
		s.targetCache.forget(subID)
	}
	return nil
}

// deactivate turns a subscription off with a reason; its pending deliveries become
// dead (replayable), so reactivating it does not send them by itself.
func (s *Store) deactivate(ctx context.Context, tx *sql.Tx, subID int64, reason string, now int64) error {
	s.targetCache.forget(subID)
	if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET active = 0, reason = ?, updated_at = ? WHERE id = ? AND active = 1", reason, now, subID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "UPDATE deliveries SET state = 3, done_at = ?, last_error = ? WHERE subscription_id = ? AND state = 0",
		now, strings.TrimSuffix("not sent: subscription deactivated ("+reason+")", " ()"), subID)
	return err
}

// Delivery is an outbox row as operators see it.
type Delivery struct {
	ID              int64
	SubscriptionID  int64
	SubscriptionUID string
	Target          string
	Subject         string
	EventType       string
	State           int
	DueAt           time.Time
	Attempts        int
	EventCount      int
	FirstEventAt    time.Time
	LastEventAt     time.Time
	LastStatus      int
	LastError       string
	DoneAt          time.Time
}

// StateName is the word for a delivery state; a pending row that has been tried is "failed".
func (d Delivery) StateName() string {
	switch d.State {
	case StatePending:
		if d.Attempts > 0 {
			return "failed"
		}
		return "pending"
	case StateInFlight:
		return "in-flight"
	case StateDelivered:
		return "delivered"
	case StateDead:
		return "dead"
	}
	return "unknown"
}

// DeliveryFilter narrows Deliveries.
type DeliveryFilter struct {
	State          string // pending, failed, in-flight, delivered, dead; empty for all
	Orcid          string
	SubscriptionID int64
	ClientID       string
	Limit          int
}

// Deliveries lists outbox rows, newest first.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	where := []string{"1=1"}
	var args []any
	switch f.State {
	case "":
	case "pending":
		where = append(where, "d.state = 0 AND d.attempts = 0")
	case "failed":
		where = append(where, "d.state = 0 AND d.attempts > 0")
	case "in-flight":
		where = append(where, "d.state = 1")
	case "delivered":
		where = append(where, "d.state = 2")
	case "dead":
		where = append(where, "d.state = 3")
	default:
		return nil, invalidf("state %q: use pending, failed, in-flight, delivered or dead", f.State)
	}
	if f.Orcid != "" {
		where = append(where, "d.subject = ?")
		args = append(args, f.Orcid)
	}
	if f.SubscriptionID != 0 {
		where = append(where, "d.subscription_id = ?")
		args = append(args, f.SubscriptionID)
	}
	if f.ClientID != "" {
		where = append(where, "s.client_id = ?")
		args = append(args, f.ClientID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	rows, err := s.read.QueryContext(ctx, `SELECT d.id, d.subscription_id, s.uid, s.target, d.subject, d.event_type, d.state, d.due_at,
		d.attempts, d.event_count, d.first_event_at, d.last_event_at, d.last_status, d.last_error, coalesce(d.done_at, 0)
		FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY d.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var due, first, last, doneAt int64
		if err := rows.Scan(&d.ID, &d.SubscriptionID, &d.SubscriptionUID, &d.Target, &d.Subject, &d.EventType, &d.State, &due,
			&d.Attempts, &d.EventCount, &first, &last, &d.LastStatus, &d.LastError, &doneAt); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.DueAt, d.FirstEventAt, d.LastEventAt, d.DoneAt = fromMS(due), fromMS(first), fromMS(last), fromMS(doneAt)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Attempt is one logged try of a delivery.
type Attempt struct {
	DeliveryID int64
	Attempt    int
	StartedAt  time.Time
	Duration   time.Duration
	Status     int
	Error      string
	Response   string
}

// Attempts returns the attempt log of a delivery, oldest first.
func (s *Store) Attempts(ctx context.Context, deliveryID int64) ([]Attempt, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT delivery_id, attempt, started_at, duration_ms, status, error, response
		FROM attempts WHERE delivery_id = ?1
		UNION ALL
		SELECT id, attempts, ok_started_at, ok_duration_ms, last_status, '', ok_response
		FROM deliveries WHERE id = ?1 AND ok_started_at IS NOT NULL
		ORDER BY 3, 2`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &started, &dur, &a.Status, &a.Error, &a.Response); err != nil {
			return nil, err
		}
		a.StartedAt, a.Duration = fromMS(started), time.Duration(dur)*time.Millisecond
		out = append(out, a)
	}
	return out, rows.Err()
}

// ReplayFilter chooses the deliveries Replay sends again.
type ReplayFilter struct {
	ID             int64     // one delivery (any finished or failed state)
	Since          time.Time // or: every failed or dead delivery whose last event is this recent
	SubscriptionID int64     // optionally only this subscription's
	ClientID       string    // optionally only this client's
}

// Replay makes deliveries due now again: a dead or delivered row becomes pending with
// a fresh attempt budget; a failed pending row is made due at once. It returns how
// many rows it touched. A replay of another client's delivery is ErrNotFound.
func (s *Store) Replay(ctx context.Context, f ReplayFilter) (int, error) {
	now := ms(s.Now())
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n = 0
		where := []string{}
		var args []any
		if f.ID != 0 {
			where = append(where, "d.id = ?", "d.state != 1")
			args = append(args, f.ID)
		} else {
			where = append(where, "(d.state = 3 OR (d.state = 0 AND d.attempts > 0))", "d.last_event_at >= ?")
			args = append(args, ms(f.Since))
		}
		if f.SubscriptionID != 0 {
			where = append(where, "d.subscription_id = ?")
			args = append(args, f.SubscriptionID)
		}
		if f.ClientID != "" {
			where = append(where, "s.client_id = ?")
			args = append(args, f.ClientID)
		}
		rows, err := tx.QueryContext(ctx, `SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
			WHERE s.active = 1 AND `+strings.Join(where, " AND ")+" ORDER BY d.id", args...)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if f.ID != 0 && len(ids) == 0 {
			return fmt.Errorf("delivery %d (not in flight, of an active subscription): %w", f.ID, ErrNotFound)
		}
		for _, id := range ids {
			// A delivered row starts over: keep its success in the attempts log.
			if _, err := tx.ExecContext(ctx, `INSERT INTO attempts(delivery_id, attempt, started_at, duration_ms, status, response)
				SELECT id, attempts, ok_started_at, ok_duration_ms, last_status, ok_response FROM deliveries
				WHERE id = ? AND ok_started_at IS NOT NULL`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET ok_started_at = NULL, ok_duration_ms = 0, ok_response = '' WHERE id = ?`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET attempts = CASE WHEN state = 0 THEN attempts ELSE 0 END,
				first_attempt_at = CASE WHEN state = 0 THEN first_attempt_at ELSE NULL END, done_at = NULL WHERE id = ?`, id); err != nil {
				return err
			}
			if err := s.backToPending(ctx, tx, id, now, 0); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	return n, nil
}

// Counts returns how many deliveries are in each state, by StateName-style words
// ("pending" here includes failed rows awaiting a retry).
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT state, count(*) FROM deliveries GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	names := map[int]string{StatePending: "pending", StateInFlight: "in-flight", StateDelivered: "delivered", StateDead: "dead"}
	out := map[string]int{"pending": 0, "in-flight": 0, "delivered": 0, "dead": 0}
	for rows.Next() {
		var state, n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[names[state]] = n
	}
	return out, rows.Err()
}

// Gauges are the outbox figures for metrics, each read through an index.
type Gauges struct {
	Pending      int
	InFlight     int
	Dead         int
	OldestDueAge time.Duration // how long the oldest due delivery has been due
}

// Gauges reads the outbox figures in one read transaction.
func (s *Store) Gauges(ctx context.Context) (Gauges, error) {
	var g Gauges
	var oldest sql.NullInt64
	now := ms(s.Now())
	err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM deliveries WHERE state = 0),
		(SELECT count(*) FROM deliveries WHERE state = 1),
		(SELECT count(*) FROM deliveries WHERE state = 3),
		(SELECT min(due_at) FROM deliveries WHERE state = 0 AND due_at <= ?)`, now).Scan(&g.Pending, &g.InFlight, &g.Dead, &oldest)
	if err != nil {
		return Gauges{}, fmt.Errorf("outbox gauges: %w", err)
	}
	if oldest.Valid {
		g.OldestDueAge = time.Duration(now-oldest.Int64) * time.Millisecond
	}
	return g, nil
}
