package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Payload formats of a subscription.
const (
	FormatEmpty    = "empty"    // ORCID's bare POST with no body
	FormatHub      = "hub"      // the ORCID Hub's organisation JSON
	FormatStandard = "standard" // Standard Webhooks JSON of the platform API
	FormatEmail    = "email"    // an e-mail to an address
	FormatUpstream = "upstream" // hookd's own registration of a record's webhook at an upstream ORCID API
)

// Auth is how hookd authenticates to a callback. Secret (a password or client
// secret) is filled only by the methods that open it for a delivery.
type Auth struct {
	Type     string // basic, client_credential or noauth
	Username string
	ClientID string
	TokenURL string
	Secret   string
}

// Subscription says who gets told about which records, and how.
type Subscription struct {
	ID           int64
	UID          string
	ClientID     string
	OrgID        int64
	Format       string
	Target       string
	Orcid        string // only this record; empty (with OrgID 0) means every record
	Types        []string
	Description  string
	Headers      map[string]string
	Auth         Auth
	AppendOrcid  bool
	Active       bool
	Reason       string
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// ClientName and OrgName name its owner for display; Subscriptions and
	// Subscription fill them in.
	ClientName string
	OrgName    string
}

// Status is the word for whether a subscription is active: "active" or "deactivated".
func (s Subscription) Status() string {
	if s.Active {
		return "active"
	}
	return "deactivated"
}

const subscriptionColumns = `id, uid, coalesce(client_id, ''), coalesce(org_id, 0), format, target, coalesce(orcid, ''),
	coalesce(types, ''), description, coalesce(headers, ''), auth_type, auth_username, auth_client_id, auth_token_url,
	append_orcid, active, reason, failing_since, created_at, updated_at`

// namedSubscriptions reads subscriptionColumns and the names of the owner (the
// table is not aliased: its columns are named as in subscriptionColumns).
const namedSubscriptions = "SELECT " + subscriptionColumns + `,
	coalesce((SELECT c.name FROM clients c WHERE c.id = subscriptions.client_id), ''),
	coalesce((SELECT o.name FROM organisations o WHERE o.id = subscriptions.org_id), '')
	FROM subscriptions`

// scanNamedSubscription reads a row of namedSubscriptions, with tail scanning what
// the query adds after it.
func scanNamedSubscription(row interface{ Scan(...any) error }, tail ...any) (Subscription, error) {
	var client, org string
	sub, err := scanSubscription(scanTail{row: row, tail: append([]any{&client, &org}, tail...)})
	sub.ClientName, sub.OrgName = client, org
	return sub, err
}

// scanTail scans a row whose leading columns are read by another scanner and whose
// last columns go to tail.
type scanTail struct {
	row  interface{ Scan(...any) error }
	tail []any
}

func (s scanTail) Scan(dest ...any) error { return s.row.Scan(append(dest, s.tail...)...) }

// The ORCID registration's statements.
// newSubscriptionID is the id of a new subscription: one above the highest ever
// given (id_marks, migration 18), so no id is used twice, whatever was removed.
const newSubscriptionID = "(SELECT value + 1 FROM id_marks WHERE name = 'subscriptions')"

// spelledAs is the condition that a row's target is a callback's receiver under
// any spelling of its scheme and host: "lower(substr(target, 1, N)) ||
// substr(target, N + 1) = C" holds for a target that is the canonical URL C
// (CanonicalURL, parameter c) in any spelling of its first N characters (parameter
// n), its scheme and host; with N = 0, for C alone. SQLite's lower() folds ASCII
// letters alone, as CanonicalURL does. It is ORed with the same for C with its
// scheme's default port written out (parameters p and pn, receiverSpellings),
// under which an older hookd kept "http://example.com:80/x".
func spelledAs(n, c, pn, p int) string {
	return fmt.Sprintf("(lower(substr(target, 1, ?%[1]d)) || substr(target, ?%[1]d + 1) = ?%[2]d"+
		" OR lower(substr(target, 1, ?%[3]d)) || substr(target, ?%[3]d + 1) = ?%[4]d)", n, c, pn, p)
}

const qOrcidWebhook = "SELECT " + subscriptionColumns + " FROM subscriptions WHERE format = 'empty' AND orcid = ? AND target = ?"

var (
	// A new registration (uid, client, canonical callback, orcid, created, updated,
	// the callback's head length, then the callback with its default port and that
	// one's head length), unless one exists under any spelling of the callback's
	// scheme, host and default port (an older hookd kept them as sent), or the
	// client has as many active webhooks for the record as ?10 (FanOutCaps), counted
	// through the record's index (qRecordCount).
	qPutOrcidWebhook = `INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, created_at, updated_at)
		SELECT ` + newSubscriptionID + `, ?1, ?2, 'empty', ?3, ?4, ?5, ?6
		WHERE NOT EXISTS (SELECT 1 FROM subscriptions INDEXED BY subscriptions_orcid_webhook
			WHERE format = 'empty' AND orcid = ?4 AND ` + spelledAs(7, 3, 9, 8) + `)
		AND (SELECT count(*) FROM subscriptions INDEXED BY subscriptions_by_orcid
			WHERE orcid = ?4 AND active = 1 AND client_id = ?2) < ?10
		ON CONFLICT(orcid, target) WHERE format = 'empty' DO NOTHING
		RETURNING ` + subscriptionColumns
	// The registration of (orcid, canonical callback) under any spelling of its
	// scheme, host and default port, which an older hookd kept as sent (orcid, head
	// length, canonical callback, callback as given, the caller's client, the
	// callback with its default port's head length, that callback): the caller's
	// own first, then the one spelled as given, then the canonical one.
	qOrcidWebhookSpelled = "SELECT " + subscriptionColumns + " FROM subscriptions INDEXED BY subscriptions_orcid_webhook" +
		" WHERE format = 'empty' AND orcid = ?1 AND " + spelledAs(2, 3, 6, 7) +
		" ORDER BY coalesce(client_id, '') = ?5 DESC, target = ?4 DESC, target = ?3 DESC, id LIMIT 1"
	// The ids of a client's registrations of (orcid, canonical callback) under
	// every spelling of its scheme, host and default port (orcid, head length,
	// canonical callback, the client, the callback with its default port's head
	// length, that callback): an older hookd kept one for each spelling sent.
	qOrcidWebhookTwins = "SELECT id FROM subscriptions INDEXED BY subscriptions_orcid_webhook" +
		" WHERE format = 'empty' AND orcid = ?1 AND " + spelledAs(2, 3, 5, 6) + " AND client_id = ?4"
)

// subscriptionStmts are the ORCID registration's hot statements, prepared once at Open.
type subscriptionStmts struct {
	orcidWebhook, putOrcidWebhook *sql.Stmt
}

func (s *Store) prepareSubscriptions(ctx context.Context) error {
	p := &s.subs
	return s.prepare(ctx, hot{&p.orcidWebhook, qOrcidWebhook}, hot{&p.putOrcidWebhook, qPutOrcidWebhook})
}

// scanSubscription reads a row of subscriptionColumns.
func scanSubscription(row interface{ Scan(...any) error }) (Subscription, error) {
	var sub Subscription
	var types, headers string
	var failing sql.NullInt64
	var created, updated int64
	err := row.Scan(&sub.ID, &sub.UID, &sub.ClientID, &sub.OrgID, &sub.Format, &sub.Target, &sub.Orcid,
		&types, &sub.Description, &headers, &sub.Auth.Type, &sub.Auth.Username, &sub.Auth.ClientID, &sub.Auth.TokenURL,
		&sub.AppendOrcid, &sub.Active, &sub.Reason, &failing, &created, &updated)
	if err != nil {
		return Subscription{}, err
	}
	sub.Types = strings.FieldsFunc(types, func(r rune) bool { return r == ',' })
	if headers != "" {
		if err := json.Unmarshal([]byte(headers), &sub.Headers); err != nil {
			return Subscription{}, fmt.Errorf("subscription %d headers: %w", sub.ID, err)
		}
	}
	sub.FailingSince = nullMS(failing)
	sub.CreatedAt, sub.UpdatedAt = fromMS(created), fromMS(updated)
	return sub, nil
}

func querySubscriptions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) ([]Subscription, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+subscriptionColumns+" FROM subscriptions "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// orcidWebhook finds the ORCID-style registration of (orcid, callback), whoever
// owns it, under any spelling of the callback's scheme and host: client clientID's
// own first (spelled), as an older hookd may have kept another client's of the
// same receiver under another spelling.
func (s *Store) orcidWebhook(ctx context.Context, tx *sql.Tx, clientID, orcid, callback string) (Subscription, error) {
	target, head, ported, portedHead := receiverSpellings(callback)
	sub, err := scanSubscription(tx.StmtContext(ctx, s.subs.orcidWebhook).QueryRowContext(ctx, orcid, target))
	if spelled(err, sub, clientID, callback, target, head) { // one an older hookd kept as it was sent
		sub, err = scanSubscription(tx.QueryRowContext(ctx, qOrcidWebhookSpelled, orcid, head, target, callback, clientID, portedHead, ported))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, errNoOrcidWebhook
	}
	return sub, err
}

// spelled reports whether the registration of a callback's canonical spelling
// target (sub, or err) may not be the one client clientID names by callback, and
// another spelling of its scheme and host (head, canonicalURL's) is looked for:
// there is none, it is another client's, or the callback was given in another
// spelling, which an older hookd may have kept as it was sent.
func spelled(err error, sub Subscription, clientID, callback, target string, head int) bool {
	if head == 0 {
		return false
	}
	return errors.Is(err, sql.ErrNoRows) || err == nil && (sub.ClientID != clientID || callback != target)
}

// The answers about another client's or a missing ORCID-style registration, in the
// words ORCID's API uses.
var (
	errNoOrcidWebhook    = notFound("no webhook with this callback is registered for this ORCID iD")
	errOrcidWebhookTaken = &Error{Code: Forbidden, Message: "this webhook was registered by another client"}
)

// PutOrcidWebhook registers callback for the record orcid on behalf of a client, as
// ORCID's PUT does. It reports whether the registration is new. Registering an
// existing one again reactivates it (if hookd had deactivated it) and changes nothing
// else. When another client registered the same (orcid, callback), it changes nothing
// and returns created false with a zero Subscription, as ORCID answers 204 then.
// The callback is kept with its scheme and host in lower case and without its
// scheme's default port (CanonicalURL), and one registered in another case of
// them, or with the port written out, is the same registration. A new
// registration, or a reactivation, of a client that has as many active webhooks
// for the record as FanOutCaps.PerRecord allows is a Conflict that changes
// nothing; registering an active one again is not.
func (s *Store) PutOrcidWebhook(ctx context.Context, clientID, orcid, callback string) (sub Subscription, created bool, err error) {
	now := ms(s.Now())
	target, head, ported, portedHead := receiverSpellings(callback)
	// A refusal by the cap writes nothing: it is the call's answer, not an error
	// of its group, which would roll back the other calls' writes (the intake's
	// among them) and run them again, for each PUT of a client at its cap.
	var refused error
	err = s.group(ctx, func(ctx context.Context, tx *sql.Tx) error {
		refused = nil // fn may run again (groupFn)
		// A new registration is one statement; only an existing one needs more.
		sub, err = scanSubscription(tx.StmtContext(ctx, s.subs.putOrcidWebhook).QueryRowContext(ctx, newUID(), clientID, target, orcid, now, now, head, ported, portedHead, s.caps.PerRecord))
		if created = err == nil; created || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		sub, err = s.orcidWebhook(ctx, tx, clientID, orcid, callback)
		switch {
		case errors.Is(err, errNoOrcidWebhook):
			// None was made, and none is there: the client is at its cap.
			if refused, err = s.refusedByCap(ctx, tx, clientID, orcid); refused != nil || err != nil {
				return err
			}
			return fmt.Errorf("no registration was made for %s, and none is there", orcid)
		case err != nil:
			return err
		case sub.ClientID != clientID:
			// As at ORCID, which finds a registration by iD and callback alone: another
			// client's PUT is answered as a repeat and changes nothing.
			sub = Subscription{}
			return nil
		case !sub.Active:
			if refused, err = s.refusedByCap(ctx, tx, clientID, orcid); refused != nil || err != nil {
				return err
			}
			if err := s.reactivate(ctx, tx, sub.ID, now); err != nil {
				return err
			}
			sub.Active, sub.Reason, sub.FailingSince = true, "", time.Time{}
		}
		return nil
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return Subscription{}, false, fmt.Errorf("register webhook: %w", err)
	}
	return sub, created, nil
}

// OrcidWebhook returns a client's registration of callback for orcid (under any
// spelling of the callback's scheme and host): ErrNotFound when there is none,
// ErrForbidden when another client owns it.
func (s *Store) OrcidWebhook(ctx context.Context, clientID, orcid, callback string) (Subscription, error) {
	st, err := s.readStmt(ctx, qOrcidWebhook)
	if err != nil {
		return Subscription{}, fmt.Errorf("get webhook: %w", err)
	}
	target, head, ported, portedHead := receiverSpellings(callback)
	sub, err := scanSubscription(st.QueryRowContext(ctx, orcid, target))
	if spelled(err, sub, clientID, callback, target, head) { // one an older hookd kept as it was sent
		if st, err = s.readStmt(ctx, qOrcidWebhookSpelled); err != nil {
			return Subscription{}, fmt.Errorf("get webhook: %w", err)
		}
		sub, err = scanSubscription(st.QueryRowContext(ctx, orcid, head, target, callback, clientID, portedHead, ported))
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Subscription{}, errNoOrcidWebhook
	case err != nil:
		return Subscription{}, fmt.Errorf("get webhook: %w", err)
	case sub.ClientID != clientID:
		return Subscription{}, errOrcidWebhookTaken
	}
	return sub, nil
}

// qOrcidWebhooksWhere chooses a client's registrations for one record, through the
// record's index: left to choose, SQLite took the client's index and read every
// registration the client has (a million for a large institution) on each call.
const qOrcidWebhooksWhere = "INDEXED BY subscriptions_orcid_webhook WHERE format = 'empty' AND orcid = ?2 AND client_id = ?1 ORDER BY id"

// OrcidWebhooks lists a client's registrations for one record.
func (s *Store) OrcidWebhooks(ctx context.Context, clientID, orcid string) ([]Subscription, error) {
	subs, err := querySubscriptions(ctx, s.read, qOrcidWebhooksWhere, clientID, orcid)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return subs, nil
}

// DeleteOrcidWebhook removes a client's registration. Its deliveries stay as the
// history of a removed subscription (waiting ones become dead) until retention.
// The client's registrations of the callback under other spellings of its
// scheme, host and default port, which an older hookd kept apart, go with it:
// they are the one registration, and one left would still be called.
func (s *Store) DeleteOrcidWebhook(ctx context.Context, clientID, orcid, callback string) error {
	ctx = removal(ctx) // it may remove webhooks (removeSubscriptions)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		sub, err := s.orcidWebhook(ctx, tx, clientID, orcid, callback)
		if err != nil {
			return err
		}
		if sub.ClientID != clientID {
			return errOrcidWebhookTaken
		}
		ids := []int64{sub.ID}
		if target, head, ported, portedHead := receiverSpellings(callback); head > 0 {
			twins, err := queryColumn[int64](ctx, tx, qOrcidWebhookTwins, orcid, head, target, clientID, portedHead, ported)
			if err != nil {
				return err
			}
			for _, id := range twins {
				if id != sub.ID {
					ids = append(ids, id)
				}
			}
		}
		return s.removeSubscriptions(ctx, tx, ids, ms(s.Now()))
	})
	if err != nil {
		return fmt.Errorf("unregister webhook: %w", err)
	}
	return nil
}

// Formats lists the payload formats a subscription can have.
var Formats = []string{FormatEmpty, FormatStandard, FormatHub, FormatEmail, FormatUpstream}

// Statuses are the words of Subscription.Status.
var Statuses = []string{"active", "deactivated"}

// SubscriptionFilter chooses subscriptions of every kind: each field narrows the
// choice, and the zero filter chooses all. The command line, the admin API and the
// console use it as it is.
type SubscriptionFilter struct {
	// Visible limits the choice to what one principal may see (the zero
	// Visibility: everything).
	Visible     Visibility
	ClientID    string // only this client's, by id or name
	OrgID       int64  // only this organisation's
	Orcid       string // only those for this one record
	Covers      string // only those that cover this record: its own, those of every record, its organisations'
	Format      string // only this payload format (Formats)
	Status      string // only active or only deactivated ones (Statuses)
	URLContains string // only those whose URL contains this, in any case
	// NewestFirst lists the newest first (BeforeID pages it) instead of the oldest
	// first (AfterID pages it).
	NewestFirst bool
	AfterID     int64 // only those after this row id: the next page of a list, oldest first
	BeforeID    int64 // only those before this row id: the next page of a list, newest first
	Limit       int   // at most this many; 0 for all
}

// Check validates the filter's values without looking at the database.
func (f SubscriptionFilter) Check() error {
	for _, o := range []struct{ field, id string }{{"orcid", f.Orcid}, {"covers", f.Covers}} {
		if o.id != "" {
			if err := CheckOrcid(o.field, o.id); err != nil {
				return err
			}
		}
	}
	if f.Format != "" && !slices.Contains(Formats, f.Format) {
		return invalid("format", fmt.Sprintf("%q: use one of %s", f.Format, strings.Join(Formats, ", ")))
	}
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return invalid("status", Quote(f.Status)+": use active or deactivated")
	}
	if f.Limit < 0 || f.OrgID < 0 || f.AfterID < 0 || f.BeforeID < 0 {
		return invalid("", "numbers in a webhook filter must not be negative")
	}
	return f.Visible.check()
}

// Subscriptions lists the subscriptions f chooses, oldest first unless
// f.NewestFirst, with their owners' names. A client or organisation it names that
// does not exist is an error naming the field.
func (s *Store) Subscriptions(ctx context.Context, f SubscriptionFilter) ([]Subscription, error) {
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	if f.ClientID != "" {
		if _, err := s.Client(ctx, f.ClientID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, invalid("client", "no client "+Quote(f.ClientID))
			}
			return nil, err
		}
	}
	if f.OrgID != 0 {
		if err := orgExists(ctx, s.read, f.OrgID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, invalid("org", fmt.Sprintf("no organisation %d", f.OrgID))
			}
			return nil, err
		}
	}
	q, args := f.query()
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		sub, err := scanNamedSubscription(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// NewestSubscriptionID is the row id of the newest subscription, 0 when there is
// none: where a list of them newest first, read a range of ids at a time,
// begins.
func (s *Store) NewestSubscriptionID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.read.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM subscriptions").Scan(&id); err != nil {
		return 0, fmt.Errorf("newest subscription: %w", err)
	}
	return id, nil
}

// query is the SQL of Subscriptions for f, and its arguments.
func (f SubscriptionFilter) query() (string, []any) {
	var w conds
	if !f.Visible.All() {
		w.and(ownedLive("subscriptions", f.Visible.ClientID, f.Visible.OrgID))
	}
	if f.ClientID != "" {
		w.add("client_id = "+qFilterClient, f.ClientID, f.ClientID, f.ClientID)
	}
	// The rows of a few, chosen through their own small index, in the page's
	// range of ids: the platform webhooks, a client's or everyone's
	// (subscriptions_platform: 0.25 s to find those made before a million
	// ORCID-style registrations, and 0.5 s for the deactivated among them), the
	// organisations' webhooks and e-mail (subscriptions_org_all: only theirs have
	// an organisation), hookd's upstream registration, an owner's deactivated
	// webhooks (subscriptions_off_by_client, an organisation's own few). As
	// conditions on each row, they were tested on every subscription of the
	// client in id order (a million, for a client with a registration per
	// researcher, to find none), or on every subscription (0.25 s for the one
	// organisation's webhook among a million).
	// Those of an index with no equality to seek name it (from): SQLite otherwise
	// read the subscriptions in id order below the page's start.
	type fewRows struct {
		cond
		from string
	}
	var few []fewRows
	switch {
	case f.Format == FormatHub || f.Format == FormatEmail:
		few = append(few, fewRows{cond{"org_id IS NOT NULL AND format = ?", []any{f.Format}}, " INDEXED BY subscriptions_org_all"})
	case f.Format == FormatUpstream:
		few = append(few, fewRows{cond{"format = 'upstream'", nil}, " INDEXED BY subscriptions_upstream"})
	case f.Format != FormatStandard:
	case f.ClientID != "":
		few = append(few, fewRows{cond: cond{"format = 'standard' AND client_id = " + qFilterClient, []any{f.ClientID, f.ClientID, f.ClientID}}})
	case f.Visible.ClientID != "" && f.Visible.OrgID == 0: // a client's own, in the console
		few = append(few, fewRows{cond: cond{"format = 'standard' AND client_id = ?", []any{f.Visible.ClientID}}})
	case f.Visible.All() && f.OrgID == 0: // everyone's
		few = append(few, fewRows{cond{"format = 'standard'", nil}, " INDEXED BY subscriptions_platform"})
	}
	// The deactivated ones may be half of a million webhooks: gathered first
	// (0.1 s), and then tested for an owner's (0.4 s for a client of 20,000).
	// When nothing else chooses the rows, their index (one client's, or
	// everyone's) is read in id order, to the page's last row; else they are an
	// owner's few when there is an owner.
	hint := ""
	if f.Status == "deactivated" {
		oneClient := f.ClientID != "" || f.Visible.ClientID != "" && f.Visible.OrgID == 0
		alone := len(few) == 0 && f.Orcid == "" && f.Covers == "" && f.Format == ""
		switch {
		case oneClient && alone && f.OrgID == 0: // its index read in id order, as the operator's
			hint = " INDEXED BY subscriptions_off_by_client"
		case f.Orcid != "" || f.Covers != "":
			// A record's few, read through its indexes, each tested: gathering the
			// deactivated ones first read all of them, or all of an owner's.
		case f.ClientID != "":
			few = append(few, fewRows{cond: cond{"active = 0 AND client_id = " + qFilterClient, []any{f.ClientID, f.ClientID, f.ClientID}}})
		case f.OrgID != 0:
			few = append(few, fewRows{cond: cond{"active = 0 AND org_id = ?", []any{f.OrgID}}})
		case !f.Visible.All():
			owner := ownedLive("subscriptions", f.Visible.ClientID, f.Visible.OrgID)
			few = append(few, fewRows{cond: cond{"active = 0 AND " + owner.sql, owner.args}})
		case len(few) > 0: // each of the other few tested
		case alone:
			hint = " INDEXED BY subscriptions_inactive"
		default:
			few = append(few, fewRows{cond: cond{"active = 0", nil}})
		}
	}
	for _, c := range few {
		var in conds
		in.and(c.cond)
		if f.AfterID != 0 {
			in.add("id > ?", f.AfterID)
		}
		if f.BeforeID != 0 {
			in.add("id < ?", f.BeforeID)
		}
		w.add("id IN (SELECT id FROM subscriptions"+c.from+in.where()+")", in.args...)
	}
	if f.OrgID != 0 {
		w.add("org_id = ?", f.OrgID)
	}
	if f.Orcid != "" {
		w.and(recordCond(f.Orcid))
	}
	if f.Covers != "" {
		// As the intake's fan-out: the record's own (active or not), every record's,
		// its organisations'; each through its own index. As conditions on each
		// row they were tested on every subscription of a client in id order (a
		// million, for a client with a registration per researcher: a second).
		w.add(`id IN (SELECT id FROM subscriptions WHERE orcid = ? AND active = 1
			UNION ALL SELECT id FROM subscriptions INDEXED BY subscriptions_off_by_orcid WHERE active = 0 AND orcid = ?
			UNION ALL SELECT id FROM subscriptions WHERE format = 'standard' AND orcid IS NULL AND org_id IS NULL
			UNION ALL SELECT id FROM subscriptions WHERE org_id IN (SELECT m.org_id FROM members m WHERE m.orcid = ?))`, f.Covers, f.Covers, f.Covers)
	}
	if f.Format != "" {
		w.add("format = ?", f.Format)
	}
	switch f.Status { // literals: subscriptions_inactive's condition is implied
	case "active":
		w.add("active = 1")
	case "deactivated":
		w.add("active = 0")
	}
	if f.URLContains != "" {
		w.add("instr(lower(target), lower(?)) > 0", f.URLContains)
	}
	if f.AfterID != 0 {
		w.add("id > ?", f.AfterID)
	}
	if f.BeforeID != 0 {
		w.add("id < ?", f.BeforeID)
	}
	order := " ORDER BY id"
	if f.NewestFirst {
		order += " DESC"
	}
	if f.Limit > 0 {
		order += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return namedSubscriptions + hint + w.where() + order, w.args
}

// qFilterClient is the id of the client a filter names by id or by name, given
// three times.
const qFilterClient = "(SELECT id FROM clients WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1)"

// recordCond chooses the subscriptions for one record, active or not. Both of the
// record's indexes are partial (active ones; ORCID-style ones), so "orcid = ?"
// alone read every subscription; this reads the record's active ones through
// subscriptions_by_orcid and the deactivated ones through
// subscriptions_off_by_orcid (through subscriptions_inactive, it read every
// deactivated one: 0.4 s with half a million of them).
func recordCond(orcid string) cond {
	return cond{`id IN (SELECT id FROM subscriptions WHERE orcid = ? AND active = 1
		UNION ALL SELECT id FROM subscriptions INDEXED BY subscriptions_off_by_orcid WHERE active = 0 AND orcid = ?)`, []any{orcid, orcid}}
}

// Operator actions: what an operator may do to any subscription, whoever owns it.

// ReasonOperator is the reason of a subscription an operator deactivated.
const ReasonOperator = "deactivated by an operator"

// The reasons of a subscription hookd switched off itself, for failing and for a
// 410 Gone, begin with these words and the time (RFC 3339, UTC); the attempt
// that switched it off says the first as its error too. ReasonTime finds the time.
const (
	reasonFailingSince = "deliveries failed continuously since "
	reasonGoneAt       = "the target answered 410 Gone at "
)

// notSentDeactivatedWith begins the last error of a delivery left unsent by a
// deactivation that gave a reason: the reason follows, in brackets.
const notSentDeactivatedWith = "not sent: subscription deactivated ("

// replayRefusedDeactivated is how a replay of one delivery refused for its webhook
// being deactivated begins, "delivery ID belongs to webhook UID, which is
// deactivated (", the reason following in brackets when there is one.
var replayRefusedDeactivated = regexp.MustCompile(`^delivery [0-9]+ belongs to webhook [0-9a-f-]+, which is deactivated \(`)

// ReasonTime finds the time a text names when it begins with the reason hookd
// gave a subscription it switched off (the subscription's Reason, the error of the
// attempt that switched it off, the last error of a delivery the deactivation
// left unsent, or the refusal to replay one of its deliveries), so that a page can
// show that time as it shows others, in its reader's zone: the text is before,
// then t, then after. ok is false for a text that names no such time; what
// follows the reason's own words (the receiver's answer) is never read for one.
// The time ends at a space (" (last: …") or at the bracket that closes a reason
// quoted in a delivery's error or a refusal ("… at TIME)").
func ReasonTime(text string) (before string, t time.Time, after string, ok bool) {
	rest := strings.TrimPrefix(text, notSentDeactivatedWith)
	if m := replayRefusedDeactivated.FindString(text); m != "" {
		rest = text[len(m):]
	}
	for _, words := range []string{reasonFailingSince, reasonGoneAt} {
		if !strings.HasPrefix(rest, words) {
			continue
		}
		at := len(text) - len(rest) + len(words)
		end := strings.IndexAny(text[at:], " )")
		if end < 0 {
			end = len(text) - at
		}
		t, err := time.Parse(time.RFC3339, text[at:at+end])
		if err != nil {
			return "", time.Time{}, "", false
		}
		return text[:at], t, text[at+end:], true
	}
	return "", time.Time{}, "", false
}

// Subscription returns any subscription by its public id, with its owner's names.
// One that was removed is NotFound, saying when it was removed.
func (s *Store) Subscription(ctx context.Context, uid string) (Subscription, error) {
	sub, err := scanNamedSubscription(s.read.QueryRowContext(ctx, namedSubscriptions+" WHERE uid = ?", uid))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, subscriptionNotFound(ctx, s.read, uid)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("get webhook: %w", err)
	}
	return sub, nil
}

// subscriptionNotFound says that no subscription has the public id uid, and when it
// was removed if it was.
func subscriptionNotFound(ctx context.Context, q queryRower, uid string) error {
	var removed int64
	if err := q.QueryRowContext(ctx, "SELECT removed_at FROM removed_subscriptions WHERE uid = ?", uid).Scan(&removed); err == nil {
		return notFound(fmt.Sprintf("webhook %s was removed at %s; its deliveries are kept until retention", uid,
			fromMS(removed).Format(time.RFC3339)))
	}
	return webhookNotFound(uid)
}

// operated finds a subscription an operator may act on: any but hookd's own
// upstream registration, which follows [upstream] in the configuration.
func operated(ctx context.Context, tx *sql.Tx, uid string) (Subscription, error) {
	sub, err := scanSubscription(tx.QueryRowContext(ctx, "SELECT "+subscriptionColumns+" FROM subscriptions WHERE uid = ?", uid))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Subscription{}, subscriptionNotFound(ctx, tx, uid)
	case err != nil:
		return Subscription{}, err
	case sub.Format == FormatUpstream:
		return Subscription{}, &Error{Code: Conflict, Value: uid, Message: fmt.Sprintf(
			"webhook %s is hookd's own registration at the upstream ORCID API: it follows [upstream] in the configuration", uid)}
	}
	return sub, nil
}

// SetSubscriptionActive deactivates or activates any subscription but hookd's own
// upstream registration (whoever may do so is the caller's to decide). A
// deactivation gives reason (ReasonOperator for an operator's, "" for the owner's
// own, as the platform API's) and makes its pending deliveries dead (replayable);
// activating does not send them by itself. Activating a client's webhook that
// would take the client past its cap (FanOutCaps) is a Conflict that changes
// nothing.
func (s *Store) SetSubscriptionActive(ctx context.Context, uid string, active bool, reason string) (Subscription, error) {
	sub, _, err := s.SwitchSubscription(ctx, uid, active, reason)
	return sub, err
}

// SwitchSubscription is SetSubscriptionActive, and says whether the call changed
// the subscription: changed is false when it was active, or deactivated, already
// (a second click, a page of another tab), which the call leaves as it was, its
// reason too.
func (s *Store) SwitchSubscription(ctx context.Context, uid string, active bool, reason string) (sub Subscription, changed bool, err error) {
	if active {
		if err := s.killBacklogFirst(ctx, "uid = ? AND format <> ?", uid, FormatUpstream); err != nil {
			return Subscription{}, false, fmt.Errorf("set webhook status: %w", err)
		}
	}
	now := ms(s.Now())
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		changed = false // fn may run again (inTx)
		cur, err := operated(ctx, tx, uid)
		if err != nil {
			return err
		}
		switch {
		case active && !cur.Active && cur.ClientID != "":
			// A client's webhook: within the client's cap of its kind.
			if err = s.roomFor(ctx, tx, cur.ClientID, cur.Orcid, ""); err == nil {
				err, changed = s.reactivate(ctx, tx, cur.ID, now), true
			}
		case active && !cur.Active:
			err, changed = s.reactivate(ctx, tx, cur.ID, now), true
		case !active && cur.on():
			changed, err = s.deactivate(ctx, tx, cur.ID, reason, now)
		}
		if err != nil {
			return err
		}
		if cur.OrgID != 0 { // an organisation's webhook or e-mail: its records' upstream registrations follow
			if err := s.syncOrgUpstream(ctx, tx, cur.OrgID, now); err != nil {
				return err
			}
		}
		sub, err = scanSubscription(tx.QueryRowContext(ctx, "SELECT "+subscriptionColumns+" FROM subscriptions WHERE id = ?", cur.ID))
		return err
	})
	if err != nil {
		return Subscription{}, false, fmt.Errorf("set webhook status: %w", err)
	}
	if err := s.finishUpstreamLeft(ctx); err != nil {
		return sub, changed, fmt.Errorf("set webhook status: %w", err)
	}
	return sub, changed, nil
}

// RemoveSubscription removes any subscription, as an operator; its deliveries stay
// as history until retention (removeSubscriptions).
func (s *Store) RemoveSubscription(ctx context.Context, uid string) error {
	ctx = removal(ctx) // it may remove webhooks (removeSubscriptions)
	now := ms(s.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := operated(ctx, tx, uid)
		if err != nil {
			return err
		}
		if err := s.removeSubscriptions(ctx, tx, []int64{cur.ID}, now); err != nil {
			return err
		}
		if cur.OrgID != 0 {
			return s.syncOrgUpstream(ctx, tx, cur.OrgID, now)
		}
		return nil
	})
	if err == nil {
		err = s.finishUpstreamLeft(ctx)
	}
	if err != nil {
		return fmt.Errorf("remove webhook: %w", err)
	}
	return nil
}

// Notice is what hookd tells a subscription's owner when it deactivates it.
type Notice struct {
	To     string // the owner's address: the organisation's technical contact or the client's e-mail
	UID    string
	Target string
	Reason string
	OrgID  int64  // set for an organisation's webhook or e-mail
	Format string // FormatEmpty, FormatStandard, FormatHub or FormatEmail
}

// DeactivationNotice returns the notice for a deactivated subscription; To is empty
// when its owner has no e-mail address.
func (s *Store) DeactivationNotice(ctx context.Context, subID int64) (Notice, error) {
	var n Notice
	err := s.read.QueryRowContext(ctx, `SELECT coalesce(o.tech_contact_email, c.email, ''), s.uid, s.target, s.reason,
		coalesce(s.org_id, 0), s.format
		FROM subscriptions s LEFT JOIN clients c ON c.id = s.client_id LEFT JOIN organisations o ON o.id = s.org_id
		WHERE s.id = ?`, subID).Scan(&n.To, &n.UID, &n.Target, &n.Reason, &n.OrgID, &n.Format)
	if errors.Is(err, sql.ErrNoRows) {
		return Notice{}, notFound(fmt.Sprintf("subscription %d not found", subID))
	}
	if err != nil {
		return Notice{}, fmt.Errorf("deactivation notice: %w", err)
	}
	return n, nil
}

// killBatch bounds how many waiting deliveries a deactivation turns dead in its own
// transaction. A webhook for every record whose endpoint has failed for days may
// have one waiting for each record, 100,000 of them, and turning them all dead at
// once held every other write for a second (BENCHMARKS.md). The rest die as they
// are claimed (claimRows) or in the retention pass (KillInactivePending), a batch
// at a time; none of them is sent.
var killBatch = 500

// notSentDeactivated is the last error of a delivery that was waiting when its
// subscription was deactivated for reason; one deactivated ahead of its removal
// (reasonRemoving) says the webhook was removed.
func notSentDeactivated(reason string) string {
	if reason == reasonRemoving {
		return notSentRemoved
	}
	return strings.TrimSuffix(notSentDeactivatedWith+reason+")", " ()")
}

// deactivate turns a subscription off with a reason; its pending deliveries become
// dead (replayable), so reactivating it does not send them by itself: up to
// killBatch of them here, the rest later (killBatch). It reports whether the
// subscription was on (Subscription.on) until this call.
func (s *Store) deactivate(ctx context.Context, tx *sql.Tx, subID int64, reason string, now int64) (wasOn bool, err error) {
	s.targetCache.forget(subID)
	// One deactivated ahead of its removal (reasonRemoving) is deactivated anew, so
	// that a removal that then fails does not activate it again (undoKill).
	r, err := tx.ExecContext(ctx, "UPDATE subscriptions SET active = 0, reason = ?, updated_at = ? WHERE id = ? AND (active = 1 OR reason = ?)",
		reason, now, subID, reasonRemoving)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?1, last_error = ?2
		WHERE id IN (SELECT id FROM deliveries WHERE subscription_id = ?3 AND state = 0 LIMIT ?4)`,
		now, notSentDeactivated(reason), subID, killBatch)
	return n > 0, err
}

// reactivate turns a subscription on again and clears why hookd had turned it off.
// What its deactivation left waiting dies first, as the deactivation said.
func (s *Store) reactivate(ctx context.Context, tx *sql.Tx, subID int64, now int64) error {
	s.targetCache.forget(subID)
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?1, last_error = `+sqlNotSentDeactivated+`
		WHERE subscription_id = ?2 AND state = 0 AND (SELECT active FROM subscriptions WHERE id = ?2) = 0`, now, subID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "UPDATE subscriptions SET active = 1, reason = '', failing_since = NULL, updated_at = ? WHERE id = ?", now, subID)
	return err
}

// killBacklogFirst turns dead, killBatch a transaction, what the deactivated
// subscriptions that where (a condition on subscriptions, with its arguments)
// selects still have waiting, ahead of a call that may activate them again. The
// activation turns them dead in its own transaction otherwise (reactivate), and
// 100,000 of them held every other write for most of a second. They die either
// way: the retention pass turns them dead (KillInactivePending) if no activation
// comes, so a call refused after this has changed nothing that mattered.
func (s *Store) killBacklogFirst(ctx context.Context, where string, args ...any) error {
	ids, err := queryColumn[int64](ctx, s.read, "SELECT id FROM subscriptions WHERE active = 0 AND ("+where+")", args...)
	if err != nil || len(ids) == 0 {
		return err
	}
	b, _ := json.Marshal(ids)
	err = s.execBatches(ctx, killBatch, &s.aheadMoves, func(tx *sql.Tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?2, last_error = `+sqlNotSentDeactivated+`
			WHERE id IN (SELECT d.id FROM subscriptions s CROSS JOIN deliveries d INDEXED BY deliveries_one_pending
				ON d.subscription_id = s.id AND d.state = 0
				WHERE s.id IN (SELECT value FROM json_each(?1)) AND s.active = 0 LIMIT ?3)`, string(b), ms(s.Now()), killBatch)
	})
	if err != nil {
		return fmt.Errorf("turn the waiting deliveries of deactivated webhooks dead: %w", err)
	}
	return nil
}

// sqlNotSentDeactivated is notSentDeactivated in SQL, for the deliveries row
// deliveries, from its subscription's reason.
const sqlNotSentDeactivated = `(SELECT CASE s.reason WHEN '' THEN 'not sent: subscription deactivated'
	WHEN '` + reasonRemoving + `' THEN '` + notSentRemoved + `'
	ELSE '` + notSentDeactivatedWith + `' || s.reason || ')' END
	FROM subscriptions s WHERE s.id = deliveries.subscription_id)`

// qInactivePending finds up to ?1 waiting deliveries of deactivated subscriptions.
const qInactivePending = `SELECT d.id FROM subscriptions s INDEXED BY subscriptions_inactive
	CROSS JOIN deliveries d INDEXED BY deliveries_one_pending ON d.subscription_id = s.id AND d.state = 0
	WHERE s.active = 0 LIMIT ?1`

// KillInactivePending turns dead up to limit deliveries still waiting for deactivated
// subscriptions (killBatch), and returns how many. The retention pass calls it
// until it finds fewer than limit.
func (s *Store) KillInactivePending(ctx context.Context, limit int) (int, error) {
	ids, err := queryColumn[int64](ctx, s.read, qInactivePending, limit)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	b, _ := json.Marshal(ids)
	now := ms(s.Now())
	var n int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Each still waiting, and its subscription still off, when this runs.
		r, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?2, last_error = `+sqlNotSentDeactivated+`
			WHERE id IN (SELECT value FROM json_each(?1)) AND state = 0
				AND (SELECT active FROM subscriptions s WHERE s.id = deliveries.subscription_id) = 0`, string(b), now)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("kill waiting deliveries of deactivated webhooks: %w", err)
	}
	return int(n), nil
}

// on reports whether a deactivation would change the subscription: it is active,
// or deactivated only ahead of its removal (reasonRemoving).
func (s Subscription) on() bool { return s.Active || s.Reason == reasonRemoving }

// newUID makes a subscription's public id: a time-ordered UUID (version 7), so a new
// subscription's entry lands at the end of the uid index instead of on a random
// page of it (one page fewer to read and write per registration at 1M rows).
func newUID() string { return uuid.Must(uuid.NewV7()).String() }
