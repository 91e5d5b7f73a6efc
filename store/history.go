package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// History: the outbox as operators and clients see it: deliveries and their
// attempts, replay, and the figures for metrics.

// MessageID is a delivery's webhook-id: "msg_" and its id, the same on every
// attempt so a receiver can drop repeats; from the delivery's rev-th change after an
// attempt (new events taken in: revision), "_" and rev too, so the message that
// carries them is not dropped as a repeat.
func MessageID(deliveryID int64, rev int) string {
	id := "msg_" + strconv.FormatInt(deliveryID, 10)
	if rev > 0 {
		id += "_" + strconv.Itoa(rev)
	}
	return id
}

// ParseMessageID is the delivery id and revision of a webhook-id MessageID made;
// ok is false for any other text.
func ParseMessageID(s string) (deliveryID int64, rev int, ok bool) {
	raw, found := strings.CutPrefix(s, "msg_")
	if !found {
		return 0, 0, false
	}
	idText, revText, hasRev := strings.Cut(raw, "_")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return 0, 0, false
	}
	if hasRev {
		if rev, err = strconv.Atoi(revText); err != nil || rev <= 0 {
			return 0, 0, false
		}
	}
	if MessageID(id, rev) != s {
		return 0, 0, false // not as MessageID writes it: a sign, a leading zero
	}
	return id, rev, true
}

// revNext is the SQL of a row's next msg_rev, which it takes when it takes in new
// events once its webhook-id was sent: after an attempt, or a call cut short by a
// shutdown (released, its attempt undone, but its first_attempt_at kept: the
// request may have reached the receiver). Written with CASE, no function: the
// single event's fan-out merges with it and must need no statement journal
// (qFanOut).
const revNext = "CASE WHEN msg_rev > " + revFloor + " OR id >= " + revBelow + " THEN CASE WHEN msg_rev IS NULL THEN 1 ELSE msg_rev + 1 END ELSE " + revFloor + " + 1 END"

// revFloor and revBelow are the SQL of the lineage row's revision floor: a
// delivery whose id is below revBelow (one the database held when Lineage took it
// for a copy) is at revision revFloor at least, past any the original can have
// given it. Both are 0 in a database that never moved (or has no lineage row).
const (
	revFloor = "coalesce((SELECT rev_floor FROM lineage WHERE id = 1), 0)"
	revBelow = "coalesce((SELECT rev_below FROM lineage WHERE id = 1), 0)"
)

// revNow and revOfD are the SQL of a delivery's revision, as its webhook-id
// carries it (MessageID): its msg_rev, raised to the lineage's floor. revNow reads
// the row of a statement on deliveries alone, revOfD delivery d's.
const (
	revNow = "CASE WHEN msg_rev > " + revFloor + " OR id >= " + revBelow + " THEN coalesce(msg_rev, 0) ELSE " + revFloor + " END"
	revOfD = "CASE WHEN d.msg_rev > " + revFloor + " OR d.id >= " + revBelow + " THEN coalesce(d.msg_rev, 0) ELSE " + revFloor + " END"
)

// revised sets msg_rev in an UPDATE (or an upsert's) of a row that takes in new
// events (revNext).
const revised = "msg_rev = CASE WHEN attempts > 0 OR first_attempt_at IS NOT NULL THEN " + revNext + " ELSE msg_rev END"

// Delivery is an outbox row as operators see it.
type Delivery struct {
	ID int64
	// SubscriptionID is the row id of its subscription; 0 once that was removed.
	SubscriptionID int64
	// SubscriptionUID is its subscription's public id (the webhook's id), also
	// after the subscription was removed.
	SubscriptionUID string
	ClientID        string // the subscription's client, if a client's
	OrgID           int64  // the subscription's organisation, if an organisation's
	// ClientName and OrgName name them for display; empty once the client or
	// organisation is gone.
	ClientName string
	OrgName    string
	Format     string // the subscription's payload format
	Target     string
	// RemovedAt is when its subscription was removed (zero while it exists): the
	// delivery is kept as history until retention and cannot be sent again.
	RemovedAt    time.Time
	Subject      string
	EventType    string
	State        State
	DueAt        time.Time
	Attempts     int // every attempt made, replays included
	AttemptBase  int // attempts made before the last replay
	EventCount   int
	FirstEventAt time.Time
	LastEventAt  time.Time
	LastStatus   int
	LastError    string
	DoneAt       time.Time
	ReplayedAt   time.Time // zero when never replayed
	MsgRev       int       // its message's revision (MessageID)
}

// StateName is the word for a delivery's state, its State's, except that a pending
// row that has been tried since it was last replayed is "failed".
func (d Delivery) StateName() string {
	if d.State == StatePending && d.Attempts > d.AttemptBase {
		return failedName
	}
	return d.State.String()
}

// DeliveryFilter chooses deliveries: every field narrows the choice, and the zero
// filter chooses all. The command line, the admin and platform APIs and the console
// use it as it is; Check says what is wrong with one, naming the field.
type DeliveryFilter struct {
	// Visible limits the choice to what one principal may see (the zero Visibility:
	// everything); the rest of the filter narrows it further, and a webhook it names
	// that Visible does not see is as unknown as a made-up one.
	Visible        Visibility
	ID             int64     // only this delivery
	State          string    // one of StateNames
	Orcid          string    // only this record's
	Webhook        string    // only this subscription's, by its public id (a removed one's too)
	Platform       bool      // Webhook names a platform webhook (format standard): another subscription's id is not found
	SubscriptionID int64     // only this subscription's, by its row id
	ClientID       string    // only the subscriptions of this client, by id or name (a removed client's by id; removed subscriptions too)
	OrgID          int64     // only the subscriptions of this organisation (removed ones too)
	Since          time.Time // only those whose last event is at or after this time
	Until          time.Time // only those whose last event is before this time
	BeforeID       int64     // only ids below this: the next page of a list, newest first
	Limit          int       // at most this many (default 100)
}

// Check validates the filter's values without looking at the database; Deliveries
// also checks that the client, organisation and webhook it names exist.
func (f DeliveryFilter) Check() error {
	if f.State != "" && !slices.Contains(StateNames, f.State) {
		last := len(StateNames) - 1
		return invalid("state", fmt.Sprintf("%q: use %s or %s", f.State, strings.Join(StateNames[:last], ", "), StateNames[last]))
	}
	if f.Orcid != "" {
		if err := CheckOrcid("orcid", f.Orcid); err != nil {
			return err
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return invalid("until", fmt.Sprintf("must be later than since (%s)", f.Since.UTC().Format(time.RFC3339)))
	}
	if f.Limit < 0 || f.ID < 0 || f.BeforeID < 0 || f.OrgID < 0 || f.SubscriptionID < 0 {
		return invalid("", "numbers in a delivery filter must not be negative")
	}
	return f.Visible.check()
}

// deliveryColumns and deliveryJoins read deliveries (d) with their subscription,
// live (s) or removed (r), and the names of its owner (a removed subscription's
// owner only while it is the one the subscription had, not a later one with the
// same id).
const (
	deliveryColumns = `d.id, coalesce(d.subscription_id, 0), coalesce(s.uid, r.uid), coalesce(s.client_id, r.client_id, ''),
	coalesce(s.org_id, r.org_id, 0), coalesce(c.name, ''), coalesce(o.name, ''), coalesce(s.format, r.format),
	coalesce(s.target, r.target), coalesce(r.removed_at, 0),
	d.subject, d.event_type, d.state, d.due_at, d.attempts, d.attempt_base, d.event_count, d.first_event_at, d.last_event_at,
	d.last_status, d.last_error, coalesce(d.done_at, 0), coalesce(d.replayed_at, 0), ` + revOfD
	deliveryJoins = ` LEFT JOIN subscriptions s ON s.id = d.subscription_id
	LEFT JOIN removed_subscriptions r ON r.id = d.removed_subscription_id
	LEFT JOIN clients c ON c.id = coalesce(s.client_id, r.client_id) AND c.created_at <= coalesce(r.removed_at, c.created_at)
	LEFT JOIN organisations o ON o.id = coalesce(s.org_id, r.org_id) AND o.created_at <= coalesce(r.removed_at, o.created_at)`
)

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var removed, due, first, last, doneAt, replayed int64
	err := row.Scan(&d.ID, &d.SubscriptionID, &d.SubscriptionUID, &d.ClientID, &d.OrgID, &d.ClientName, &d.OrgName, &d.Format, &d.Target, &removed,
		&d.Subject, &d.EventType, &d.State, &due, &d.Attempts, &d.AttemptBase, &d.EventCount, &first, &last,
		&d.LastStatus, &d.LastError, &doneAt, &replayed, &d.MsgRev)
	d.RemovedAt, d.DueAt, d.FirstEventAt, d.LastEventAt = fromMS(removed), fromMS(due), fromMS(first), fromMS(last)
	d.DoneAt, d.ReplayedAt = fromMS(doneAt), fromMS(replayed)
	return d, err
}

// where turns the filter into SQL conditions on the deliveries row d alone (so a
// page of ids is chosen through d's indexes before anything is joined), after
// checking it and that what it names exists (an unknown client, organisation or
// webhook is an error naming the field, never an empty list). each tests
// ownership row by row (ownedDeliveries); so does a filter whose own index
// chooses the rows (one delivery, one webhook's), since gathering the owner's
// subscriptions first read all of them (a million, for a client with a
// registration per researcher) to test the few rows of that index.
func (f DeliveryFilter) where(ctx context.Context, q queryRower, each bool) ([]string, []any, error) {
	if err := f.Check(); err != nil {
		return nil, nil, err
	}
	each = each || f.ID != 0 || f.Webhook != "" || f.SubscriptionID != 0
	where := []string{"1=1"}
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	and := func(c cond) { add(c.sql, c.args...) }
	if !f.Visible.All() {
		and(ownedDeliveries(f.Visible.ClientID, f.Visible.OrgID, each))
	}
	if f.ClientID != "" {
		id, err := filterClient(ctx, q, f.ClientID)
		if err != nil {
			return nil, nil, err
		}
		f.ClientID = id
		and(ownedDeliveries(f.ClientID, 0, each))
	}
	if f.OrgID != 0 {
		var ok bool
		err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM organisations WHERE id = ?1 UNION ALL
			SELECT 1 FROM removed_subscriptions WHERE org_id = ?1)`, f.OrgID).Scan(&ok)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, invalid("org", fmt.Sprintf("no organisation %d", f.OrgID))
		}
		and(ownedDeliveries("", f.OrgID, each))
	}
	if f.Webhook != "" {
		// Within the client's subscriptions when a client is given, and within what
		// Visible sees: another's webhook is as unknown as a made-up one.
		var live, removed conds
		live.add("s.uid = ?", f.Webhook)
		removed.add("r.uid = ?", f.Webhook)
		if f.Platform {
			live.add("s.format = ?", FormatStandard)
			removed.add("r.format = ?", FormatStandard)
		}
		for _, v := range []Visibility{f.Visible, {ClientID: f.ClientID}} {
			if !v.All() {
				live.and(ownedLive("s", v.ClientID, v.OrgID))
				removed.and(ownedRemoved("r", v.ClientID, v.OrgID))
			}
		}
		var liveID, removedID int64
		err := q.QueryRowContext(ctx, `SELECT coalesce((SELECT s.id FROM subscriptions s`+live.where()+`), 0),
			coalesce((SELECT r.id FROM removed_subscriptions r`+removed.where()+`), 0)`,
			append(live.args, removed.args...)...).Scan(&liveID, &removedID)
		switch {
		case err != nil:
			return nil, nil, err
		case liveID != 0:
			add("d.subscription_id = ?", liveID)
		case removedID != 0:
			add("d.removed_subscription_id = ?", removedID)
		default:
			return nil, nil, invalid("webhook", "no webhook "+Quote(f.Webhook))
		}
	}
	switch f.State {
	case StatePending.String():
		add("d.state = 0 AND d.attempts = d.attempt_base")
	case failedName:
		add("d.state = 0 AND d.attempts > d.attempt_base")
	case StateInFlight.String():
		// Through their own index: they are few (the dispatcher's claims), and
		// tested on each row in id order they were looked for among every
		// delivery kept (0.13 s for a million, to find none).
		add("d.state = 1 AND d.id IN (SELECT id FROM deliveries INDEXED BY deliveries_in_flight WHERE state = 1)")
	case StateDelivered.String():
		add("d.state = 2")
	case StateDead.String():
		add("d.state = 3")
	}
	if f.ID != 0 {
		add("d.id = ?", f.ID)
	}
	if f.Orcid != "" {
		add("d.subject = ?", f.Orcid)
	}
	if f.SubscriptionID != 0 {
		add("d.subscription_id = ?", f.SubscriptionID)
	}
	if !f.Since.IsZero() {
		add("d.last_event_at >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		add("d.last_event_at < ?", ms(f.Until))
	}
	if f.BeforeID != 0 {
		add("d.id < ?", f.BeforeID)
	}
	return where, args, nil
}

// filterClient is the id of the client a filter names by id, else by name; a
// removed client's history by the id it had.
func filterClient(ctx context.Context, q queryRower, client string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT coalesce((SELECT id FROM clients WHERE id = ?1), (SELECT id FROM clients WHERE name = ?1),
		(SELECT client_id FROM removed_subscriptions WHERE client_id = ?1 LIMIT 1), '')`, client).Scan(&id)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", invalid("client", "no client "+Quote(client))
	}
	return id, nil
}

// deliveriesWindow is how many of the newest delivery ids an owner's list reads
// in id order before it falls back on gathering and sorting (Deliveries).
var deliveriesWindow int64 = 1000

// Deliveries lists the outbox rows f chooses, newest first, with what they belong
// to (also when that was removed).
//
// An owner's list (a client's, an organisation's) tests ownership as "a live
// webhook of the owner's or a removed one that was": two indexes, which SQLite
// reads in full and then sorts, so a page cost a sort of all the owner's kept
// deliveries (a week's history, for an owner who has most of them). So such a
// list first walks the newest deliveriesWindow ids in order, testing each row,
// and gathers and sorts only when that window did not fill the page: then only
// the rows below it. An owner of a large share of the subscriptions (bigOwner)
// walks on down the ids instead, to the page's last row: gathering its rows read
// all of them; one of fewer than bigOwnerGather walks deliveriesWalk ids more at
// most, and then gathers.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	where, args, err := f.where(ctx, s.read, false)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	owned := !f.Visible.All() || f.ClientID != "" || f.OrgID != 0
	if !owned || f.ID != 0 || f.Webhook != "" || f.SubscriptionID != 0 {
		return s.deliveriesPage(ctx, "", where, args, f.Limit) // an index chooses the rows
	}
	hi := f.BeforeID
	if hi == 0 {
		if err := s.read.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) + 1 FROM deliveries").Scan(&hi); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
	}
	lo := max(hi-deliveriesWindow, 1)
	each, eachArgs, err := f.where(ctx, s.read, true)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	page, err := s.deliveriesPage(ctx, "NOT INDEXED", append(each, "d.id >= ?", "d.id < ?"), append(eachArgs, lo, hi), f.Limit)
	if err != nil || len(page) == f.Limit || lo == 1 {
		return page, err
	}
	hint := ""
	big, few, err := s.bigOwner(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if big && few {
		// A walk tests the owner of each row that meets the rest of the filter:
		// an owner with few of those rows (a client of 20,000 quiet webhooks
		// beside one that has most of the traffic) walked every delivery kept, 5 s
		// for a million. Past deliveriesWalk ids, its rows are few enough to gather.
		next := max(lo-deliveriesWalk, 1)
		more, err := s.deliveriesPage(ctx, "NOT INDEXED", append(each, "d.id >= ?", "d.id < ?"), append(eachArgs, next, lo), f.Limit-len(page))
		if page = append(page, more...); err != nil || len(page) == f.Limit || next == 1 {
			return page, err
		}
		lo = next
	} else if big {
		where, args, hint = each, eachArgs, "NOT INDEXED" // walk on down, in id order
	}
	rest, err := s.deliveriesPage(ctx, hint, append(where, "d.id < ?"), append(args, lo), f.Limit-len(page))
	if err != nil {
		return nil, err
	}
	return append(page, rest...), nil
}

// bigOwnerShare and bigOwnerMin make an owner big (bigOwner): one subscription
// in bigOwnerShare of them, and at least bigOwnerMin. A big owner with fewer
// than bigOwnerGather subscriptions walks at most deliveriesWalk ids past the
// first window of its list of deliveries, and then gathers its rows: finding
// them through each of its subscriptions costs less than testing the owner of
// every row walked, when so few of them are its own.
var (
	bigOwnerShare  int64 = 100
	bigOwnerMin    int64 = 10000
	bigOwnerGather int64 = 100000
	deliveriesWalk int64 = 10000
)

// bigOwner reports whether the owners f names (its Visible, client and
// organisation) have one live subscription in bigOwnerShare between them, and at
// least bigOwnerMin; and whether they have fewer than bigOwnerGather. Gathering
// such an owner's deliveries and sorting them (their list of subscriptions
// first) reads every one it has, several seconds for a client with a
// registration per researcher, a million of them; while its share of the rows
// makes a walk down the ids in order come to a page's rows soon.
func (s *Store) bigOwner(ctx context.Context, f DeliveryFilter) (big, few bool, err error) {
	var owners []string
	var args []any
	add := func(c cond) {
		owners = append(owners, c.sql)
		args = append(args, c.args...)
	}
	if !f.Visible.All() {
		add(ownedLive("s2", f.Visible.ClientID, f.Visible.OrgID))
	}
	if f.ClientID != "" {
		id, err := filterClient(ctx, s.read, f.ClientID)
		if err != nil {
			return false, false, err
		}
		add(ownedLive("s2", id, 0))
	}
	if f.OrgID != 0 {
		add(ownedLive("s2", "", f.OrgID))
	}
	var all int64
	if err := s.read.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM subscriptions").Scan(&all); err != nil {
		return false, false, err
	}
	need := max(all/bigOwnerShare, bigOwnerMin)
	if len(owners) == 0 || all < need {
		return false, false, nil
	}
	var n int64
	err = s.read.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM subscriptions s2 WHERE "+strings.Join(owners, " OR ")+" LIMIT ?)",
		append(args, max(need, bigOwnerGather))...).Scan(&n)
	return n >= need, n < bigOwnerGather, err
}

// deliveriesPageQuery is deliveriesPage's query, its last argument the limit. The
// page's ids come first, then what they belong to: the joins are made for the
// page's rows only.
func deliveriesPageQuery(hint string, where []string) string {
	return "SELECT " + deliveryColumns + " FROM (SELECT d.id FROM deliveries d " + hint + " WHERE " +
		strings.Join(where, " AND ") + " ORDER BY d.id DESC LIMIT ?) page JOIN deliveries d ON d.id = page.id" + deliveryJoins +
		" ORDER BY d.id DESC"
}

// deliveriesPage reads the newest limit deliveries that meet the conditions where
// (on d, with args), choosing them with hint ("NOT INDEXED": in id order, from
// the table alone) or as SQLite sees fit ("").
func (s *Store) deliveriesPage(ctx context.Context, hint string, where []string, args []any, limit int) ([]Delivery, error) {
	rows, err := s.read.QueryContext(ctx, deliveriesPageQuery(hint, where), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Delivery returns the one delivery f.ID, within the rest of f (a client's, a
// webhook's); NotFound when there is none there.
func (s *Store) Delivery(ctx context.Context, f DeliveryFilter) (Delivery, error) {
	if f.ID <= 0 {
		return Delivery{}, invalid("id", "a delivery id is a positive number")
	}
	ds, err := s.Deliveries(ctx, f)
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, deliveryNotFound(f.ID)
	}
	return ds[0], nil
}

func deliveryNotFound(id int64) error { return notFound(fmt.Sprintf("delivery %d not found", id)) }

// Attempt is one logged try of a delivery.
type Attempt struct {
	DeliveryID int64
	Attempt    int
	StartedAt  time.Time
	Duration   time.Duration
	Status     int
	Error      string
	Response   string
	// Target is where the attempt went, when known: a failed attempt's URL
	// (Target.CalledURL) as it was then.
	Target string
}

// MessageID is the delivery's webhook-id as its next call (or its last) carries it.
func (d Delivery) MessageID() string { return MessageID(d.ID, d.MsgRev) }

// Elsewhere is where attempt a went when that is another URL than the delivery's
// webhook has now (its URL, or with the record's iD appended): the webhook's URL
// changed since. Else "".
func (d Delivery) Elsewhere(a Attempt) string {
	if a.Target == "" || a.Target == d.Target || a.Target == strings.TrimSuffix(d.Target, "/")+"/"+d.Subject {
		return ""
	}
	return a.Target
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
	rows, err := s.read.QueryContext(ctx, `SELECT delivery_id, attempt, started_at, duration_ms, status, error, response, coalesce(target, '')
		FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?1))
		UNION ALL
		SELECT id, attempts, ok_started_at, ok_duration_ms, last_status, '', ok_response, ''
		FROM deliveries WHERE id IN (SELECT value FROM json_each(?1)) AND ok_started_at IS NOT NULL
		ORDER BY 1, 3, 2`, string(ids))
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &started, &dur, &a.Status, &a.Error, &a.Response, &a.Target); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		a.StartedAt, a.Duration = fromMS(started), time.Duration(dur)*time.Millisecond
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
	}
	return out, rows.Err()
}

// ReplayResult is what Replay did.
type ReplayResult struct {
	Replayed int // deliveries due again now
	// Deactivated counts the failed or dead deliveries the filter chose but left as
	// they are, because their webhook is deactivated (activate it, then replay).
	Deactivated int
	// NotMembers counts those left as they are because they were not sent when
	// their record left the organisation, which it has not joined again.
	NotMembers int
	// Stopped is set when an error ended a bulk replay after some of its batches
	// were written: the counts are theirs, and the rest was not replayed.
	Stopped bool
}

// ReplayDetail says what a bulk replay by f chose and what it did, as an audit
// entry's detail.
func (f DeliveryFilter) ReplayDetail(res ReplayResult) string {
	parts := []string{"since " + f.Since.UTC().Format(time.RFC3339)}
	if !f.Until.IsZero() {
		parts = append(parts, "until "+f.Until.UTC().Format(time.RFC3339))
	}
	for _, p := range [][2]string{{"state", f.State}, {"orcid", f.Orcid}, {"webhook", f.Webhook}, {"client", f.ClientID}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	if f.OrgID != 0 {
		parts = append(parts, "org "+strconv.FormatInt(f.OrgID, 10))
	}
	detail := strings.Join(parts, ", ") + ": " + strconv.Itoa(res.Replayed) + " replayed, " +
		strconv.Itoa(res.Deactivated) + " left (webhook deactivated)"
	if res.Stopped {
		detail += "; " + ReplayStopped
	}
	return detail
}

// ReplayStopped says what a bulk replay that stopped part way did not do
// (ReplayResult.Stopped).
const ReplayStopped = "stopped part way by an error: the rest was not replayed (replay again for it)"

// ReplayOwner is whose audit a bulk replay by f belongs in besides the operator's:
// the client or organisation it names, else, narrowed to one webhook, that
// webhook's owner (a removed one's as it was). Nothing when f names neither.
func (s *Store) ReplayOwner(ctx context.Context, f DeliveryFilter) (clientID string, orgID int64) {
	clientID, orgID = f.ClientID, f.OrgID
	if clientID != "" {
		if c, err := s.Client(ctx, clientID); err == nil { // by id or name
			clientID = c.ID
		}
	}
	if f.Webhook != "" && clientID == "" && orgID == 0 {
		if ds, err := s.Deliveries(ctx, DeliveryFilter{Webhook: f.Webhook, Platform: f.Platform, Limit: 1}); err == nil && len(ds) > 0 {
			clientID, orgID = ds[0].ClientID, ds[0].OrgID
		} else if sub, err := s.Subscription(ctx, f.Webhook); err == nil {
			clientID, orgID = sub.ClientID, sub.OrgID
		}
	}
	return clientID, orgID
}

// replayBatch is how many deliveries a bulk replay replays a transaction. Its rows
// are chosen first, in a read transaction, and then replayed by id a batch at a
// time: every other write of hookd (the intake, the dispatch loop's turns,
// registrations) waits while a batch is written, so it waits for one batch, not
// for the choice and every row of the replay (a second and more, for an owner
// with a registration per researcher). A variable for the tests.
var replayBatch = 256

// replayNext, when set, is called before each batch of a bulk replay is written,
// with the ids it chose from that batch's on (all of them, the first time: between
// the choice and the first write). A hook for the tests.
var replayNext func(rest []int64)

// Replay makes deliveries due now again: a dead or delivered row becomes pending with
// a fresh attempt budget (its attempt numbers go on); a failed pending row is made
// due at once. With f.ID it replays that one delivery, and says why when it cannot:
// not found (or not in f's scope), in flight, of a deactivated webhook, of a removed
// one. Without, it replays every failed or dead delivery f chooses, which must set
// Since, not in the future (a bulk recovery is bounded in time), and counts those
// of deactivated webhooks it left alone. Removed webhooks' deliveries are history:
// never replayed.
//
// A bulk replay chooses its rows, then replays them replayBatch at a time, each
// transaction checking every row again: one that changed since it was chosen (it
// was claimed, it finished, its webhook was deactivated or removed) is left alone,
// or counted as what it is now. An error after some batches (a store fault, ctx
// ended) leaves those replayed, and the result counts them, Stopped: replaying
// again takes the rest, as what was replayed is no longer failed or dead.
func (s *Store) Replay(ctx context.Context, f DeliveryFilter) (ReplayResult, error) {
	if f.ID != 0 {
		return s.replayOne(ctx, f)
	}
	if f.Since.IsZero() {
		return ReplayResult{}, invalid("since", "is required: every failed or dead delivery whose last event is at or after it is sent again")
	}
	if f.Since.After(s.Now()) {
		// A time to come (a year mistyped, tomorrow's date) replays nothing, which
		// reads as if nothing had failed.
		return ReplayResult{}, invalid("since", fmt.Sprintf("%s is in the future, so no delivery's last event is at or after it and none would be replayed: "+
			"give a time before now (a date, or how long ago: 2h, 7d); nothing was replayed", f.Since.UTC().Format(time.RFC3339)))
	}
	if !ReplayableState(f.State) {
		return ReplayResult{}, invalid("state", fmt.Sprintf("%q: a replay takes %s or %s deliveries", f.State, failedName, StateDead))
	}
	res, err := s.replayBulk(ctx, f)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	return res, nil
}

// replayOne replays the one delivery f.ID in one transaction, or says why it cannot.
func (s *Store) replayOne(ctx context.Context, f DeliveryFilter) (ReplayResult, error) {
	var res ReplayResult
	now := ms(s.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = ReplayResult{}
		where, args, err := f.where(ctx, tx, false)
		if err != nil {
			return err
		}
		chosen, err := replayRows(ctx, tx, "deliveries d", where, args)
		if err != nil {
			return err
		}
		ids, err := f.replayable(chosen, &res)
		if err != nil {
			return err
		}
		if len(chosen) == 0 {
			return deliveryNotFound(f.ID)
		}
		_, err = s.replayIDs(ctx, tx, ids, now, nil, &res)
		return err
	})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	return res, nil
}

// replayBulk replays every failed or dead delivery f chooses (Replay): the rows are
// chosen in a read transaction, and replayed replayBatch at a time, each batch's
// rows chosen again by id in its write transaction.
func (s *Store) replayBulk(ctx context.Context, f DeliveryFilter) (ReplayResult, error) {
	var res ReplayResult
	// A big owner's rows are chosen through the states' indexes, testing each
	// row's owner: gathering every subscription of a client with a registration
	// per researcher first took a second, to replay none.
	big, _, err := s.bigOwner(ctx, f)
	if err != nil {
		return res, err
	}
	ids, each, eachArgs, err := s.replayChoose(ctx, f, big)
	if err != nil {
		return res, Classify(err)
	}
	rest := make(map[int64]bool, len(ids)) // chosen, and not replayed yet
	for _, id := range ids {
		rest[id] = true
	}
	now := ms(s.Now())
	written := false // a batch was
	for first := true; len(ids) > 0; first = false {
		if !first {
			s.yield.pause() // beside the daemon, its writes go between the batches
		}
		if replayNext != nil {
			replayNext(ids)
		}
		var batch []int64
		for len(ids) > 0 && len(batch) < replayBatch {
			if rest[ids[0]] { // else replayed already, with a finished row of its pair
				batch = append(batch, ids[0])
			}
			ids = ids[1:]
		}
		if len(batch) == 0 {
			continue
		}
		list, err := json.Marshal(batch)
		if err != nil {
			return res, err
		}
		var part ReplayResult
		var done []int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			part = ReplayResult{}
			// The batch's rows, read by id, that f still chooses (each tests every
			// row's owner on the row), with what they are now.
			chosen, err := replayRows(ctx, tx, replayBatchFrom, each, append([]any{string(list)}, eachArgs...))
			if err != nil {
				return err
			}
			todo, err := f.replayable(chosen, &part)
			if err != nil {
				return err
			}
			// A finished row is replayed into its pair's waiting row (replayInto),
			// which, failed, the replay may have chosen too: it is replayed with
			// the finished one, as one transaction replaying both did, when f
			// still chooses it; a later batch would find it no longer failed.
			also := map[int64]bool{}
			var later []int64
			for _, id := range todo {
				also[id] = true
			}
			for _, r := range chosen {
				if r.waiting != 0 && rest[r.waiting] && !slices.Contains(batch, r.waiting) {
					later = append(later, r.waiting)
				}
			}
			if len(later) > 0 {
				laterList, _ := json.Marshal(later)
				rows, err := replayRows(ctx, tx, replayBatchFrom, each, append([]any{string(laterList)}, eachArgs...))
				if err != nil {
					return err
				}
				more, err := f.replayable(rows, &ReplayResult{}) // counted in their own batch, if left
				if err != nil {
					return err
				}
				for _, id := range more {
					also[id] = true
				}
			}
			done, err = s.replayIDs(ctx, tx, todo, now, also, &part)
			return err
		})
		if err != nil {
			res.Stopped = written
			return res, err
		}
		for _, id := range batch {
			delete(rest, id)
		}
		for _, id := range done {
			delete(rest, id)
		}
		written = true
		res.Replayed += part.Replayed
		res.Deactivated += part.Deactivated
		res.NotMembers += part.NotMembers
	}
	return res, nil
}

// replayChoose chooses the rows of a bulk replay by f, in a read transaction: the
// ids of the failed or dead deliveries f chooses, in id order, and the conditions
// (on d, with their args) that choose them again row by row, as each batch does.
func (s *Store) replayChoose(ctx context.Context, f DeliveryFilter, big bool) (ids []int64, each []string, eachArgs []any, err error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, nil, err
	}
	defer tx.Rollback()
	where, args, err := f.where(ctx, tx, big)
	if err != nil {
		return nil, nil, nil, err
	}
	each, eachArgs = slices.Clone(where), args
	if !big {
		if each, eachArgs, err = f.where(ctx, tx, true); err != nil {
			return nil, nil, nil, err
		}
	}
	if f.State == "" {
		const either = "(d.state = 3 OR (d.state = 0 AND d.attempts > d.attempt_base))"
		where, each = append(where, either), append(each, either)
	}
	ids, err = queryColumn[int64](ctx, tx, "SELECT d.id FROM deliveries d WHERE "+strings.Join(where, " AND ")+" ORDER BY d.id", args...)
	return ids, each, eachArgs, err
}

// replayRow is what a replay reads of a delivery it may replay.
type replayRow struct {
	id                    int64
	state                 State
	uid, reason           string
	removed, active, left bool
	continued             string // the delivery that carries its events, when it ended in one
	waiting               int64  // a finished one's: its pair's waiting row, if there is one
}

// replayBatchFrom is what a batch of a bulk replay reads its rows from: their ids
// (a JSON array, the first argument), each row then read by its id.
const replayBatchFrom = "json_each(?) j CROSS JOIN deliveries d ON d.id = j.value"

// replayRowsQuery is replayRows' query.
func replayRowsQuery(from string, where []string) string {
	return `SELECT d.id, d.state, coalesce(s.uid, r.uid), d.removed_subscription_id IS NOT NULL,
			coalesce(s.active, 0), coalesce(s.reason, ''),
			coalesce(d.last_error = '` + notSentNoMember + `' AND s.org_id IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM members m WHERE m.org_id = s.org_id AND m.orcid = d.subject), 0),
			CASE WHEN d.state = 3 AND d.last_error LIKE '` + continuedAs + `%' THEN substr(d.last_error, ` + strconv.Itoa(len(continuedAs)+1) + `) ELSE '' END,
			CASE WHEN d.state IN (2, 3) THEN coalesce((SELECT w.id FROM deliveries w
				WHERE w.subscription_id = d.subscription_id AND w.subject = d.subject AND w.state = 0), 0) ELSE 0 END
			FROM ` + from + ` LEFT JOIN subscriptions s ON s.id = d.subscription_id
			LEFT JOIN removed_subscriptions r ON r.id = d.removed_subscription_id
			WHERE ` + strings.Join(where, " AND ") + " ORDER BY d.id"
}

// replayRows reads what a replay needs to know of the deliveries d that meet the
// conditions where (with args), from from (naming the deliveries d), in id order.
// left: a delivery that was not sent because its record left the organisation,
// which it has not joined again.
func replayRows(ctx context.Context, tx *sql.Tx, from string, where []string, args []any) ([]replayRow, error) {
	rows, err := tx.QueryContext(ctx, replayRowsQuery(from, where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var chosen []replayRow
	for rows.Next() {
		var r replayRow
		if err := rows.Scan(&r.id, &r.state, &r.uid, &r.removed, &r.active, &r.reason, &r.left, &r.continued, &r.waiting); err != nil {
			return nil, err
		}
		chosen = append(chosen, r)
	}
	return chosen, rows.Err()
}

// replayable is which of the rows a replay by f chose it replays, counting in res
// those it leaves for their webhook being deactivated or their record having left
// the organisation. A replay of one delivery (f.ID) says why it cannot replay it.
func (f DeliveryFilter) replayable(chosen []replayRow, res *ReplayResult) ([]int64, error) {
	var ids []int64
	for _, r := range chosen {
		switch {
		case f.ID != 0 && r.state == StateInFlight:
			return nil, &Error{Code: Conflict, Value: r.uid, Message: fmt.Sprintf(
				"delivery %d is being attempted now: wait for its outcome, and replay it if it fails", r.id)}
		case r.removed && f.ID != 0:
			return nil, &Error{Code: Conflict, Value: r.uid, Message: fmt.Sprintf(
				"delivery %d belongs to webhook %s, which was removed: its deliveries are kept as history and cannot be sent again", r.id, r.uid)}
		case r.removed:
		case !r.active && f.ID != 0:
			why := ""
			if r.reason != "" {
				why = " (" + r.reason + ")"
			}
			// ReasonTime finds the reason's time in it (replayRefusedDeactivated).
			return nil, &Error{Code: Conflict, Field: "status", Value: r.uid, Message: fmt.Sprintf(
				"delivery %d belongs to webhook %s, which is deactivated%s: activate the webhook first, then replay", r.id, r.uid, why)}
		case !r.active:
			res.Deactivated++
		case r.left && f.ID != 0:
			return nil, &Error{Code: Conflict, Value: r.uid, Message: fmt.Sprintf(
				"delivery %d was not sent because its record left the organisation: it is sent again only once the record is a member again", r.id)}
		case r.left:
			res.NotMembers++
		case r.continued != "" && f.ID != 0:
			return nil, &Error{Code: Conflict, Value: r.uid, Message: fmt.Sprintf(
				"delivery %d was continued as delivery %s, which carries its events: replay that one", r.id, r.continued)}
		case r.continued != "": // its events are in the one it continued as, which this replay takes when it failed
		default:
			ids = append(ids, r.id)
		}
	}
	return ids, nil
}

// replayIDs replays the deliveries ids in tx, due at now, and counts them in res;
// their webhooks' runs of failures end. A waiting row that a finished one is
// replayed into is replayed too, then, when it is one of also (a bulk replay's
// rows, of this batch or a later one, that it replays), and not again in its
// turn. It returns the rows it replayed.
func (s *Store) replayIDs(ctx context.Context, tx *sql.Tx, ids []int64, now int64, also map[int64]bool, res *ReplayResult) ([]int64, error) {
	var done []int64
	taken := map[int64]bool{}
	c := newTxStmts(tx) // the same few statements for every row
	for _, id := range ids {
		if taken[id] {
			continue // replayed already, with the finished row replayed into it (below)
		}
		taken[id] = true
		done = append(done, id)
		// A finished row whose pair has a row waiting (one failed and waiting for
		// its retry, or made by an event since) goes into that one, due now: the
		// pair has one waiting row at most, and folding the waiting one into this
		// would delete it with its attempts. This row keeps its history as it is.
		into, err := s.replayInto(ctx, c, id, now)
		if err != nil {
			return nil, err
		}
		if into == 0 {
			if err := s.replayRow(ctx, c, id, now); err != nil {
				return nil, err
			}
			continue
		}
		// The waiting row may be one the replay replays too: now, as it would
		// be in its turn.
		if also[into] && !taken[into] {
			taken[into] = true
			done = append(done, into)
			if err := s.replayRow(ctx, c, into, now); err != nil {
				return nil, err
			}
		}
	}
	res.Replayed += len(done)
	// A replay is a fresh start for the webhooks too: their run of failures,
	// which may have begun days ago, ends here, or the first failure after the
	// replay would deactivate a webhook past disable_after at once.
	if len(done) > 0 {
		list, _ := json.Marshal(done)
		subs, err := queryColumn[int64](ctx, tx, `UPDATE subscriptions SET failing_since = NULL WHERE failing_since IS NOT NULL
			AND id IN (SELECT subscription_id FROM deliveries WHERE id IN (SELECT value FROM json_each(?)))
			RETURNING id`, string(list))
		if err != nil {
			return nil, err
		}
		for _, id := range subs {
			// Counted as a change: deliveries claimed with the run still on go
			// back unsent and are claimed again without it.
			s.targetCache.forget(id)
		}
	}
	return done, nil
}

// replayRow replays the delivery id, finished or waiting for its retry, in c's
// transaction: it is pending, due at now, with a fresh attempt budget.
func (s *Store) replayRow(ctx context.Context, c *txStmts, id, now int64) error {
	// A delivered row starts over: keep its success in the attempts log.
	if _, err := c.exec(ctx, `INSERT INTO attempts(delivery_id, attempt, started_at, duration_ms, status, response)
		SELECT id, attempts, ok_started_at, ok_duration_ms, last_status, ok_response FROM deliveries
		WHERE id = ? AND ok_started_at IS NOT NULL`, id); err != nil {
		return err
	}
	// A replayed row, finished or waiting for its retry, gets a fresh attempt
	// budget: the backoff and give_up_after count from here, while its attempt
	// numbers go on (an operator replays once the receiver is mended).
	if _, err := c.exec(ctx, `UPDATE deliveries SET ok_started_at = NULL, ok_duration_ms = 0, ok_response = '', not_sent = '',
		attempt_base = attempts, first_attempt_at = NULL, done_at = NULL, replayed_at = ?
		WHERE id = ?`, now, id); err != nil {
		return err
	}
	return s.backToPending(ctx, c.tx, id, now, 0, 0)
}

// replayInto replays the finished delivery id into the row waiting for the same
// webhook and record, if there is one: that row is due at now, with a fresh attempt
// budget, and carries id's events too; id is marked replayed and otherwise left as
// it is. It returns that row's id, 0 when there is none.
func (s *Store) replayInto(ctx context.Context, c *txStmts, id, now int64) (int64, error) {
	st, err := c.stmt(ctx, `UPDATE deliveries SET due_at = min(deliveries.due_at, ?2),
			attempt_base = deliveries.attempts, first_attempt_at = NULL,
			event_count = deliveries.event_count + d.event_count,
			first_event_at = min(deliveries.first_event_at, d.first_event_at),
			last_event_at = max(deliveries.last_event_at, d.last_event_at),
			event_type = CASE WHEN d.event_type = 'CREATED' THEN 'CREATED' ELSE deliveries.event_type END,
			`+revised+`
		FROM (SELECT subscription_id, subject, event_count, first_event_at, last_event_at, event_type FROM deliveries
			WHERE id = ?1 AND state IN (2, 3)) d
		WHERE deliveries.subscription_id = d.subscription_id AND deliveries.subject = d.subject
			AND deliveries.state = 0 AND deliveries.id != ?1
		RETURNING deliveries.id`)
	if err != nil {
		return 0, err
	}
	var into int64 // the pair has one waiting row at most
	switch err := st.QueryRowContext(ctx, id, now).Scan(&into); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, err
	}
	_, err = c.exec(ctx, "UPDATE deliveries SET replayed_at = ? WHERE id = ?", now, id)
	return into, err
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
	Pending  int
	InFlight int
	Dead     int
	// OldestDueAge is how long the oldest due delivery has been due: for one
	// handed back unattempted (its host busy), since the due time it had then,
	// also while it is claimed again.
	OldestDueAge time.Duration
	// Inactive counts webhooks hookd switched off by itself (a 410, failing past
	// disable_after) and not reactivated: not those switched off on purpose (by
	// their owner, an operator or an organisation's settings, hookd's upstream
	// registration without [upstream]) nor those being removed. Failing counts
	// those still on whose deliveries have been failing since their last success.
	Inactive int
	Failing  int
}

// qGauges reads the outbox's and the webhooks' figures at ?1, each through an
// index: the oldest due is the sooner of the oldest due_at and the oldest
// waiting_since (a row handed back unattempted is due again a tick later, and
// keeps when it first was), ?1 when there is neither. A row handed back is claimed
// again at each turn it is due, and is in flight until the next turn hands it back:
// the in-flight rows' waiting_since counts too (they are few, the dispatcher's
// capacity, and read through their index), or a backlog its host cannot take,
// claimed whole, would be gone from the age a turn out of every few.
var qGauges = `SELECT
		(SELECT count(*) FROM deliveries WHERE state = 0),
		(SELECT count(*) FROM deliveries WHERE state = 1),
		(SELECT count(*) FROM deliveries WHERE state = 3),
		min(coalesce((SELECT min(due_at) FROM deliveries WHERE state = 0 AND due_at <= ?1), ?1),
			coalesce((SELECT min(waiting_since) FROM deliveries WHERE state = 0 AND waiting_since IS NOT NULL), ?1),
			coalesce((SELECT min(waiting_since) FROM deliveries INDEXED BY deliveries_in_flight WHERE state = 1), ?1)),
		(SELECT count(*) FROM subscriptions INDEXED BY subscriptions_inactive WHERE active = 0) -
			(SELECT count(*) FROM subscriptions INDEXED BY subscriptions_off_on_purpose WHERE ` + offOnPurpose + `),
		(SELECT count(*) FROM subscriptions WHERE failing_since IS NOT NULL AND active = 1)`

// offOnPurpose is the condition of the subscriptions switched off on purpose (the
// Gauges' Inactive leaves them out): none given, by an operator, being removed,
// hookd's upstream registration without [upstream]. It is the condition of the
// index subscriptions_off_on_purpose, written out as literals, so SQLite can tell
// that it implies it: reading the reason of each of half a million webhooks
// switched off took half a second a reading.
var offOnPurpose = "active = 0 AND reason IN ('', " + sqlText(ReasonOperator) + ", " + sqlText(reasonRemoving) + ", " +
	sqlText(reasonUpstreamUnconfigured) + ")"

// sqlText is s as an SQL string literal.
func sqlText(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Gauges reads the outbox's and the webhooks' figures in one read transaction.
func (s *Store) Gauges(ctx context.Context) (Gauges, error) {
	var g Gauges
	var oldest sql.NullInt64
	now := ms(s.Now())
	err := s.read.QueryRowContext(ctx, qGauges, now).Scan(&g.Pending, &g.InFlight, &g.Dead, &oldest, &g.Inactive, &g.Failing)
	if err != nil {
		return Gauges{}, fmt.Errorf("outbox gauges: %w", err)
	}
	if oldest.Valid {
		g.OldestDueAge = time.Duration(now-oldest.Int64) * time.Millisecond
	}
	return g, nil
}
