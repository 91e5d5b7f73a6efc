package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Owner limits the console's listings to what one principal may see: the
// subscriptions of a client, of an organisation, or of either. The zero Owner
// (an operator's) limits nothing.
type Owner struct {
	ClientID string
	OrgID    int64
}

// All reports whether the owner limits nothing.
func (o Owner) All() bool { return o.ClientID == "" && o.OrgID == 0 }

// Scopes are the per-minute figures' scopes of what the owner sees.
func (o Owner) Scopes() []string {
	if o.All() {
		return []string{ScopeAll}
	}
	var out []string
	if o.ClientID != "" {
		out = append(out, ClientScope(o.ClientID))
	}
	if o.OrgID != 0 {
		out = append(out, OrgScope(o.OrgID))
	}
	return out
}

// where appends the owner's condition on the subscription alias s.
func (o Owner) where(conds []string, args []any) ([]string, []any) {
	switch {
	case o.All():
	case o.ClientID != "" && o.OrgID != 0:
		conds = append(conds, "(s.client_id = ? OR s.org_id = ?)")
		args = append(args, o.ClientID, o.OrgID)
	case o.ClientID != "":
		conds = append(conds, "s.client_id = ?")
		args = append(args, o.ClientID)
	default:
		conds = append(conds, "s.org_id = ?")
		args = append(args, o.OrgID)
	}
	return conds, args
}

// WebhookRow is a subscription as the console lists it, with its owner's name.
type WebhookRow struct {
	Subscription
	ClientName string
	OrgName    string
}

// WebhookQuery filters the console's list of webhooks (subscriptions of every
// format). Empty fields do not filter.
type WebhookQuery struct {
	Visible     Owner
	ClientID    string
	OrgID       int64
	Orcid       string // webhooks that cover this record (ORCID-style, platform, organisation)
	Format      string
	Status      string // "active" or "deactivated"
	URLContains string
	Before      int64 // paging: only rows with a smaller internal id
	Limit       int
}

const webhookRowColumns = `s.id, s.uid, coalesce(s.client_id, ''), coalesce(s.org_id, 0), s.format, s.target, coalesce(s.orcid, ''),
	coalesce(s.types, ''), s.description, coalesce(s.headers, ''), s.auth_type, s.auth_username, s.auth_client_id, s.auth_token_url,
	s.append_orcid, s.active, s.reason, s.failing_since, s.created_at, s.updated_at, coalesce(c.name, ''), coalesce(o.name, '')`

const webhookRowFrom = ` FROM subscriptions s LEFT JOIN clients c ON c.id = s.client_id LEFT JOIN organisations o ON o.id = s.org_id `

func scanWebhookRow(row interface{ Scan(...any) error }) (WebhookRow, error) {
	var w WebhookRow
	var clientName, orgName string
	sub, err := scanSubscription(scanTail{row: row, tail: []any{&clientName, &orgName}})
	if err != nil {
		return WebhookRow{}, err
	}
	w.Subscription, w.ClientName, w.OrgName = sub, clientName, orgName
	return w, nil
}

// scanTail scans a row whose leading columns are read by another scanner and whose
// last columns go to tail.
type scanTail struct {
	row  interface{ Scan(...any) error }
	tail []any
}

func (s scanTail) Scan(dest ...any) error { return s.row.Scan(append(dest, s.tail...)...) }

// ConsoleWebhooks lists webhooks newest first, at most q.Limit (default 50).
func (s *Store) ConsoleWebhooks(ctx context.Context, q WebhookQuery) ([]WebhookRow, error) {
	conds, args := q.Visible.where(nil, nil)
	if q.ClientID != "" {
		conds = append(conds, "s.client_id = ?")
		args = append(args, q.ClientID)
	}
	if q.OrgID != 0 {
		conds = append(conds, "s.org_id = ?")
		args = append(args, q.OrgID)
	}
	if q.Orcid != "" {
		// As the intake's fan-out: this record's, every record's, and its organisations'.
		conds = append(conds, `(s.orcid = ? OR (s.orcid IS NULL AND s.org_id IS NULL AND s.format = 'standard')
			OR (s.org_id IS NOT NULL AND s.org_id IN (SELECT org_id FROM members WHERE orcid = ?)))`)
		args = append(args, q.Orcid, q.Orcid)
	}
	if q.Format != "" {
		conds = append(conds, "s.format = ?")
		args = append(args, q.Format)
	}
	switch q.Status {
	case "":
	case "active":
		conds = append(conds, "s.active = 1")
	case "deactivated":
		conds = append(conds, "s.active = 0")
	default:
		return nil, invalid("status", fmt.Sprintf("%q: use active or deactivated", q.Status))
	}
	if q.URLContains != "" {
		conds = append(conds, "instr(lower(s.target), lower(?)) > 0")
		args = append(args, q.URLContains)
	}
	if q.Before > 0 {
		conds = append(conds, "s.id < ?")
		args = append(args, q.Before)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	args = append(args, q.Limit)
	rows, err := s.read.QueryContext(ctx, "SELECT "+webhookRowColumns+webhookRowFrom+whereClause(conds)+" ORDER BY s.id DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	var out []WebhookRow
	for rows.Next() {
		w, err := scanWebhookRow(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// ConsoleWebhook returns one webhook of any format by its public id.
func (s *Store) ConsoleWebhook(ctx context.Context, uid string) (WebhookRow, error) {
	w, err := scanWebhookRow(s.read.QueryRowContext(ctx, "SELECT "+webhookRowColumns+webhookRowFrom+" WHERE s.uid = ?", uid))
	if errors.Is(err, sql.ErrNoRows) {
		return WebhookRow{}, fmt.Errorf("webhook %s: %w", uid, ErrNotFound)
	}
	if err != nil {
		return WebhookRow{}, fmt.Errorf("get webhook: %w", err)
	}
	return w, nil
}

// DeliveryRow is a delivery as the console lists it, with its subscription's format
// and owner.
type DeliveryRow struct {
	Delivery
	Format     string
	ClientID   string
	ClientName string
	OrgID      int64
	OrgName    string
}

// DeliveryQuery filters the console's list of deliveries. Empty fields do not filter.
type DeliveryQuery struct {
	Visible    Owner
	State      string // pending, failed, in-flight, delivered, dead
	Orcid      string
	WebhookUID string
	ClientID   string
	OrgID      int64
	// Since and Until bound the time of the delivery's last event.
	Since time.Time
	Until time.Time
	// Before pages: only deliveries with a smaller id.
	Before int64
	Limit  int
}

// stateCondition is the SQL condition on d of a state word (Delivery.StateName's).
func stateCondition(state string) (string, error) {
	switch state {
	case "pending":
		return "d.state = 0 AND d.attempts = d.attempt_base", nil
	case "failed":
		return "d.state = 0 AND d.attempts > d.attempt_base", nil
	case "in-flight":
		return "d.state = 1", nil
	case "delivered":
		return "d.state = 2", nil
	case "dead":
		return "d.state = 3", nil
	}
	return "", invalid("state", fmt.Sprintf("%q: use pending, failed, in-flight, delivered or dead", state))
}

const deliveryRowColumns = `d.id, d.subscription_id, s.uid, s.target, d.subject, d.event_type, d.state, d.due_at,
	d.attempts, d.attempt_base, d.event_count, d.first_event_at, d.last_event_at, d.last_status, d.last_error, coalesce(d.done_at, 0),
	s.format, coalesce(s.client_id, ''), coalesce(c.name, ''), coalesce(s.org_id, 0), coalesce(o.name, '')`

const deliveryRowFrom = ` FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
	LEFT JOIN clients c ON c.id = s.client_id LEFT JOIN organisations o ON o.id = s.org_id `

func scanDeliveryRow(row interface{ Scan(...any) error }) (DeliveryRow, error) {
	var r DeliveryRow
	d := &r.Delivery
	var due, first, last, doneAt int64
	if err := row.Scan(&d.ID, &d.SubscriptionID, &d.SubscriptionUID, &d.Target, &d.Subject, &d.EventType, &d.State, &due,
		&d.Attempts, &d.AttemptBase, &d.EventCount, &first, &last, &d.LastStatus, &d.LastError, &doneAt,
		&r.Format, &r.ClientID, &r.ClientName, &r.OrgID, &r.OrgName); err != nil {
		return DeliveryRow{}, err
	}
	d.DueAt, d.FirstEventAt, d.LastEventAt, d.DoneAt = fromMS(due), fromMS(first), fromMS(last), fromMS(doneAt)
	return r, nil
}

// ConsoleDeliveries lists deliveries newest first, at most q.Limit (default 50).
func (s *Store) ConsoleDeliveries(ctx context.Context, q DeliveryQuery) ([]DeliveryRow, error) {
	conds, args := q.Visible.where(nil, nil)
	if q.State != "" {
		c, err := stateCondition(q.State)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	if q.Orcid != "" {
		conds = append(conds, "d.subject = ?")
		args = append(args, q.Orcid)
	}
	if q.WebhookUID != "" {
		conds = append(conds, "s.uid = ?")
		args = append(args, q.WebhookUID)
	}
	if q.ClientID != "" {
		conds = append(conds, "s.client_id = ?")
		args = append(args, q.ClientID)
	}
	if q.OrgID != 0 {
		conds = append(conds, "s.org_id = ?")
		args = append(args, q.OrgID)
	}
	if !q.Since.IsZero() {
		conds = append(conds, "d.last_event_at >= ?")
		args = append(args, ms(q.Since))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "d.last_event_at < ?")
		args = append(args, ms(q.Until))
	}
	if q.Before > 0 {
		conds = append(conds, "d.id < ?")
		args = append(args, q.Before)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	args = append(args, q.Limit)
	rows, err := s.read.QueryContext(ctx, "SELECT "+deliveryRowColumns+deliveryRowFrom+whereClause(conds)+" ORDER BY d.id DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []DeliveryRow
	for rows.Next() {
		r, err := scanDeliveryRow(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ConsoleDelivery returns one delivery with its subscription's format and owner.
func (s *Store) ConsoleDelivery(ctx context.Context, id int64) (DeliveryRow, error) {
	r, err := scanDeliveryRow(s.read.QueryRowContext(ctx, "SELECT "+deliveryRowColumns+deliveryRowFrom+" WHERE d.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return DeliveryRow{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeliveryRow{}, fmt.Errorf("get delivery: %w", err)
	}
	return r, nil
}

// RecentAttempts returns the attempt logs of the given deliveries, newest attempt
// first, at most limit in all.
func (s *Store) RecentAttempts(ctx context.Context, deliveryIDs []int64, limit int) ([]Attempt, error) {
	if len(deliveryIDs) == 0 {
		return nil, nil
	}
	ph := "?" + strings.Repeat(", ?", len(deliveryIDs)-1)
	var args []any
	for _, id := range deliveryIDs {
		args = append(args, id)
	}
	args = append(args, args...)
	args = append(args, limit)
	rows, err := s.read.QueryContext(ctx, `SELECT delivery_id, attempt, started_at, duration_ms, status, error, response
		FROM attempts WHERE delivery_id IN (`+ph+`)
		UNION ALL
		SELECT id, attempts, ok_started_at, ok_duration_ms, last_status, '', ok_response
		FROM deliveries WHERE id IN (`+ph+`) AND ok_started_at IS NOT NULL
		ORDER BY 3 DESC, 1 DESC, 2 DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &started, &dur, &a.Status, &a.Error, &a.Response); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		a.StartedAt, a.Duration = fromMS(started), time.Duration(dur)*time.Millisecond
		out = append(out, a)
	}
	return out, rows.Err()
}

// FiguresCap bounds the counts of an owner's deliveries and of a failing webhook's:
// past it the overview says "more than" instead of counting a large backlog on
// every refresh.
const FiguresCap = 10000

// OutboxFigures are the overview's counts for what one owner sees.
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

// OutboxFigures counts the deliveries an owner sees, each through an index: for all
// of hookd the state indexes (as the metrics do); for an owner, the pending and
// in-flight indexes per subscription, so the cost follows the owner's own backlog,
// and each count stops at FiguresCap+1.
func (s *Store) OutboxFigures(ctx context.Context, v Owner) (OutboxFigures, error) {
	var f OutboxFigures
	var oldest sql.NullInt64
	now := ms(s.Now())
	var err error
	if v.All() {
		err = s.read.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM deliveries WHERE state = 0),
			(SELECT count(*) FROM deliveries WHERE state = 1),
			(SELECT count(*) FROM deliveries WHERE state = 3),
			(SELECT min(due_at) FROM deliveries WHERE state = 0 AND due_at <= ?)`, now).
			Scan(&f.Pending, &f.InFlight, &f.Dead, &oldest)
	} else {
		f.RetryingKnown = true
		err = s.read.QueryRowContext(ctx, `WITH mine AS (
			SELECT id FROM subscriptions WHERE client_id = ?1 UNION SELECT id FROM subscriptions WHERE org_id = ?2)
		SELECT
			(SELECT count(*) FROM (SELECT 1 FROM mine JOIN deliveries d ON d.subscription_id = mine.id AND d.state = 0 LIMIT ?4)),
			(SELECT count(*) FROM (SELECT 1 FROM mine JOIN deliveries d ON d.subscription_id = mine.id AND d.state = 0 AND d.attempts > 0 LIMIT ?4)),
			(SELECT count(*) FROM (SELECT 1 FROM mine JOIN deliveries d ON d.subscription_id = mine.id AND d.state = 1 LIMIT ?4)),
			(SELECT count(*) FROM (SELECT 1 FROM deliveries d WHERE d.state = 3 AND d.subscription_id IN mine LIMIT ?4)),
			(SELECT min(d.due_at) FROM mine JOIN deliveries d ON d.subscription_id = mine.id AND d.state = 0 AND d.due_at <= ?3)`,
			v.ClientID, v.OrgID, now, FiguresCap+1).Scan(&f.Pending, &f.Retrying, &f.InFlight, &f.Dead, &oldest)
	}
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
	WebhookRow
	Retrying   int    // deliveries waiting for a retry (at most FailingCap+1)
	Dead       int    // dead deliveries (at most FailingCap+1)
	LastStatus int    // of the last failed attempt of one waiting delivery
	LastError  string // idem
}

// FailingCap bounds the counts of a failing webhook's deliveries, which the
// overview reads for each failing webhook on every refresh.
const FailingCap = 1000

// FailingWebhooks lists the subscriptions an owner sees that are failing now, the
// longest-failing first, at most limit. They are found through a partial index
// that holds only failing subscriptions; the answer shown is that of one waiting
// delivery, found without reading the others.
func (s *Store) FailingWebhooks(ctx context.Context, v Owner, limit int) ([]FailingWebhook, error) {
	conds, args := v.where([]string{"s.failing_since IS NOT NULL"}, nil)
	args = append([]any{FailingCap + 1}, args...)
	args = append(args, limit)
	rows, err := s.read.QueryContext(ctx, "SELECT "+webhookRowColumns+`,
		(SELECT count(*) FROM (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 0 AND d.attempts > 0 LIMIT ?)),
		(SELECT count(*) FROM (SELECT 1 FROM deliveries d WHERE d.state = 3 AND d.subscription_id = s.id LIMIT ?1)),
		coalesce((SELECT d.last_status FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 0 AND d.attempts > 0 LIMIT 1), 0),
		coalesce((SELECT d.last_error FROM deliveries d WHERE d.subscription_id = s.id AND d.state = 0 AND d.attempts > 0 LIMIT 1), '')`+
		webhookRowFrom+whereClause(conds)+" ORDER BY s.failing_since, s.id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("failing webhooks: %w", err)
	}
	defer rows.Close()
	var out []FailingWebhook
	for rows.Next() {
		var f FailingWebhook
		w, err := scanWebhookRow(scanTail{row: rows, tail: []any{&f.Retrying, &f.Dead, &f.LastStatus, &f.LastError}})
		if err != nil {
			return nil, fmt.Errorf("failing webhooks: %w", err)
		}
		f.WebhookRow = w
		out = append(out, f)
	}
	return out, rows.Err()
}

// ConsoleMembers lists an organisation's members by iD after the iD after (for
// paging), at most limit, with their upstream registration state as Members has it.
func (s *Store) ConsoleMembers(ctx context.Context, orgID int64, after string, limit int) ([]Member, error) {
	if _, err := getOrg(ctx, s.read, orgID); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT m.org_id, m.orcid, m.name, m.email, m.eppn, m.created_at,
		CASE WHEN NOT `+upstreamOn+` OR NOT `+covered+` THEN ''
		     WHEN u.registered = 1 THEN 'registered'
		     WHEN coalesce(u.last_error, '') != '' THEN 'failed: ' || u.last_error
		     ELSE 'pending' END
		FROM members m LEFT JOIN upstream_registrations u ON u.orcid = m.orcid
		WHERE m.org_id = ? AND m.orcid > ? ORDER BY m.orcid LIMIT ?`, orgID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		var created int64
		if err := rows.Scan(&m.OrgID, &m.Orcid, &m.Name, &m.Email, &m.EPPN, &created, &m.Upstream); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		m.CreatedAt = fromMS(created)
		out = append(out, m)
	}
	return out, rows.Err()
}
