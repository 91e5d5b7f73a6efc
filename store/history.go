package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// History: the outbox as operators and clients see it: deliveries and their
// attempts, replay, and the figures for metrics.

// MessageID is a delivery's webhook-id ("msg_" and its id), the same on every attempt
// so a receiver can drop repeats.
func MessageID(deliveryID int64) string { return "msg_" + strconv.FormatInt(deliveryID, 10) }

// Delivery is an outbox row as operators see it.
type Delivery struct {
	ID              int64
	SubscriptionID  int64
	SubscriptionUID string
	Target          string
	Subject         string
	EventType       string
	State           State
	DueAt           time.Time
	Attempts        int
	EventCount      int
	FirstEventAt    time.Time
	LastEventAt     time.Time
	LastStatus      int
	LastError       string
	DoneAt          time.Time
}

// StateName is the word for a delivery's state, its State's, except that a pending
// row that has been tried is "failed".
func (d Delivery) StateName() string {
	if d.State == StatePending && d.Attempts > 0 {
		return failedName
	}
	return d.State.String()
}

// DeliveryFilter narrows Deliveries.
type DeliveryFilter struct {
	State          string // one of StateNames; empty for all
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
	case StatePending.String():
		where = append(where, "d.state = 0 AND d.attempts = 0")
	case failedName:
		where = append(where, "d.state = 0 AND d.attempts > 0")
	case StateInFlight.String():
		where = append(where, "d.state = 1")
	case StateDelivered.String():
		where = append(where, "d.state = 2")
	case StateDead.String():
		where = append(where, "d.state = 3")
	default:
		last := len(StateNames) - 1
		return nil, invalid("state", fmt.Sprintf("%q: use %s or %s", f.State, strings.Join(StateNames[:last], ", "), StateNames[last]))
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
	logs, err := s.AttemptsOf(ctx, []int64{deliveryID})
	return logs[deliveryID], err
}

// AttemptsOf returns the attempt logs of several deliveries, each oldest first, in
// one query: a list of deliveries shows their logs without a query each.
func (s *Store) AttemptsOf(ctx context.Context, deliveryIDs []int64) (map[int64][]Attempt, error) {
	out := map[int64][]Attempt{}
	if len(deliveryIDs) == 0 {
		return out, nil
	}
	ids, err := json.Marshal(deliveryIDs)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	// A delivered row keeps its successful attempt in its own columns.
	rows, err := s.read.QueryContext(ctx, `SELECT delivery_id, attempt, started_at, duration_ms, status, error, response
		FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?1))
		UNION ALL
		SELECT id, attempts, ok_started_at, ok_duration_ms, last_status, '', ok_response
		FROM deliveries WHERE id IN (SELECT value FROM json_each(?1)) AND ok_started_at IS NOT NULL
		ORDER BY 1, 3, 2`, string(ids))
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &started, &dur, &a.Status, &a.Error, &a.Response); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		a.StartedAt, a.Duration = fromMS(started), time.Duration(dur)*time.Millisecond
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
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
			return notFound(fmt.Sprintf("delivery %d (not in flight, of an active subscription) not found", f.ID))
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
	out := map[string]int{}
	for _, st := range []State{StatePending, StateInFlight, StateDelivered, StateDead} {
		out[st.String()] = 0
	}
	for rows.Next() {
		var state State
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[state.String()] = n
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
