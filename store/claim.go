package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"hookd/ssrf"
)

// Claim and record: the dispatch loop's side of the outbox. Exchange records the
// outcomes of finished work, returns crashed work to pending and claims due work,
// in one transaction.

// The claim-and-record statements besides claimBatch.
const (
	qExpiredLeases = "SELECT id FROM deliveries WHERE state = 1 AND lease_until < ?"
	// qAnyDue tells whether a claim at ?1 could find anything: a look into the index
	// of due rows, where the claim, finding nothing, costs as much as a few rows'
	// worth (its two walks, its cursors on the table and its nine indexes).
	qAnyDue = "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 0 AND due_at <= ?)"
	// qTwin finds a row's pending twin (0 when there is none), whether the row's
	// subscription was removed, and why it must not be sent again, if it must not.
	qTwin = `SELECT d.state, d.attempts, d.subscription_id IS NULL, d.not_sent, coalesce(t.id, 0), coalesce(t.due_at, 0), coalesce(t.event_count, 0),
		coalesce(t.last_event_at, 0), coalesce(t.event_type, ''), coalesce(t.attempts, 0)
		FROM deliveries d LEFT JOIN deliveries t ON t.subscription_id = d.subscription_id AND t.subject = d.subject
			AND t.state = 0 AND t.id != d.id
		WHERE d.id = ?`
	// qRemovedDone ends a row whose subscription was removed while it was out: it is
	// never pending again.
	qRemovedDone = `UPDATE deliveries SET state = 3, done_at = ?1, lease_until = NULL, attempts = max(attempts + ?2, 0),
		last_error = CASE WHEN last_error = '' THEN ?3 ELSE last_error END, not_sent = '' WHERE id = ?4`
	// qClearNotSent forgets, for a record that is an organisation's member again,
	// what its removal said of the deliveries out on a call (RemoveMembers).
	// Pending rows too: an older hookd running beside a newer one's migration
	// hands a failed row back to pending with the word kept.
	// Each state through its own index: with state IN (0, 1), SQLite could use
	// neither partial index and read every delivery the organisation's webhooks have
	// kept, at every member added (TestClearNotSentPlan).
	qClearNotSent = `UPDATE deliveries SET not_sent = '' WHERE id IN (
		SELECT d.id FROM subscriptions s CROSS JOIN deliveries d INDEXED BY deliveries_one_pending
			ON d.subscription_id = s.id AND d.subject = ?1 AND d.state = 0 WHERE s.org_id = ?2 AND d.not_sent != ''
		UNION ALL
		SELECT d.id FROM subscriptions s CROSS JOIN deliveries d INDEXED BY deliveries_in_flight
			ON d.subscription_id = s.id AND d.subject = ?1 AND d.state = 1 WHERE s.org_id = ?2 AND d.not_sent != '')`
	// qNotSentDone ends a row that must not be sent again (not_sent): dead, saying why.
	qNotSentDone = `UPDATE deliveries SET state = 3, done_at = ?1, lease_until = NULL, attempts = max(attempts + ?2, 0),
		last_error = not_sent, not_sent = '' WHERE id = ?3`
	qDeleteDelivery = "DELETE FROM deliveries WHERE id = ?"
	// qFoldTwin and qToPending set a row's waiting_since as it goes back to pending,
	// by their last parameter, which says it waits on (backToPendingAt): a row handed
	// back unattempted for a next turn (its host busy or stalled) keeps the due time
	// it had when first handed back, the one it was claimed at (the claim leaves
	// due_at as it was); an attempted or replayed row has waited for nothing yet, nor
	// has one handed back to wait for a time hookd was asked to (Outcome.Held), which
	// is due from then as a retry is. A row replayed while it waits (qToPending of a
	// pending row: Replay) keeps it: due now, it still has not been sent.
	qFoldTwin = `UPDATE deliveries SET state = 0, due_at = ?1, lease_until = NULL, attempts = max(attempts + ?2, 0),
		waiting_since = CASE WHEN ?7 THEN coalesce(waiting_since, due_at) END, event_count = event_count + ?3, last_event_at = max(last_event_at, ?4),
		event_type = CASE WHEN ?5 = 'CREATED' THEN 'CREATED' ELSE event_type END,
		msg_rev = CASE WHEN attempts + ?2 > 0 OR first_attempt_at IS NOT NULL THEN ` + revNext + ` ELSE msg_rev END WHERE id = ?6`
	qToPending = "UPDATE deliveries SET state = 0, due_at = ?1, lease_until = NULL, attempts = max(attempts + ?2, 0), waiting_since = CASE WHEN ?4 THEN coalesce(waiting_since, due_at) WHEN state = 0 THEN waiting_since END WHERE id = ?3"
	// An attempt is logged only while its delivery exists: an operator may have purged
	// it during the call.
	qAttempt = `INSERT INTO attempts(delivery_id, attempt, started_at, duration_ms, status, error, response, target)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, nullif(?8, '') WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1)`
	// qThinAttempt forgets attempt ?2 of delivery ?1: the one that falls out of the
	// last attemptsLast as another is logged (attemptsFirst).
	qThinAttempt = "DELETE FROM attempts WHERE delivery_id = ?1 AND attempt = ?2"
	qDone        = `UPDATE deliveries SET state = ?, done_at = ?, lease_until = NULL, last_status = ?, last_error = ?, not_sent = '',
		first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ? AND state = 1 AND ? IN (0, attempts)`
	// qDeliveredOK records one success; the batch's successes share the transaction.
	// Like the other outcomes, it acts only on the claim that made the call (?7, 0:
	// any): a call back after its lease ran out finds the row another claim's, which
	// may carry events this call did not, and whose own outcome decides.
	qDeliveredOK = `UPDATE deliveries SET state = 2, done_at = ?1, lease_until = NULL, last_status = ?2, last_error = '', not_sent = '',
		first_attempt_at = coalesce(first_attempt_at, ?3), ok_started_at = ?3, ok_duration_ms = ?4, ok_response = ?5
		WHERE id = ?6 AND state = 1 AND ?7 IN (0, attempts)`
	// The subscription statements act only while the delivery still belongs to the
	// subscription: one removed during the call may have handed its id on.
	qHealthy = `UPDATE subscriptions SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL
		AND EXISTS (SELECT 1 FROM deliveries WHERE id = ?2 AND subscription_id = ?1)`
	// The outcome statements act on the row of the claim that made the call (its
	// attempt number; 0: a caller that does not say): a call back after its lease ran
	// out finds the row another claim's.
	qFailed = "UPDATE deliveries SET last_status = ?1, last_error = ?2, first_attempt_at = coalesce(first_attempt_at, ?3) WHERE id = ?4 AND state = 1 AND ?5 IN (0, attempts)"
	// qFailing records a failure that started at ?1 in its subscription's run of
	// failures: it begins a run when none is on, or when the run lapsed (runLapsed),
	// and moves the run's due time (failing_due) on to ?5, the retry the failure
	// planned. A failure that is an e-mail address refused for good (?6) begins the
	// run's refusals (refused_since) when none came before it in the run; a run
	// that begins takes its refusals afresh. It returns whether a run began, and
	// whether its refusals did (a row only when it changed one).
	qFailing = `UPDATE subscriptions SET
			failing_since = CASE WHEN ` + runLapsed + ` THEN ?1 ELSE failing_since END,
			failing_due = CASE WHEN ` + runLapsed + ` THEN ?5 ELSE max(coalesce(failing_due, 0), ?5) END,
			refused_since = CASE WHEN ` + runLapsed + ` THEN CASE WHEN ?6 THEN ?1 END
				WHEN ?6 THEN coalesce(refused_since, ?1) ELSE refused_since END
		WHERE id = ?2 AND (` + runLapsed + ` OR coalesce(failing_due, 0) < ?5 OR (?6 AND refused_since IS NULL))
			AND EXISTS (SELECT 1 FROM deliveries WHERE id = ?3 AND subscription_id = ?2)
		RETURNING failing_since = ?1, ?6 AND refused_since = ?1`
	// runLapsed, of a subscription row and a failure at ?1 with a run gap ?4, holds
	// when no run of failures is on, or the one on has lapsed: it planned its last
	// retry more than the gap before ?1. A gap of 0 (a caller that does not say)
	// lets no run lapse.
	runLapsed = `(failing_since IS NULL OR (?4 > 0 AND coalesce(failing_due, 0) + ?4 < ?1))`
	qOwns     = "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = ? AND subscription_id = ?)"
	// qSwitchesOff tells whether deactivate would switch subscription ?2, which
	// delivery ?1 is still of, off (its reason ?3: one deactivated ahead of its removal).
	qSwitchesOff = `SELECT EXISTS (SELECT 1 FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
		WHERE d.id = ?1 AND d.subscription_id = ?2 AND (s.active = 1 OR s.reason = ?3))`
)

// A delivery's attempt log keeps its first attemptsFirst attempts and its last
// attemptsLast. A receiver that answers 429 with "Retry-After: 1" is called every
// second until give_up_after, 259,200 times in the default 72 hours: every
// attempt kept made one delivery's log, and the retention pass's delete of it,
// as long as that.
const (
	attemptsFirst = 10
	attemptsLast  = 40
)

// claimStmts are the dispatch loop's hot statements, prepared once at Open.
type claimStmts struct {
	claim, anyDue, expiredLeases, twin, removedDone, deleteDelivery, foldTwin, toPending *sql.Stmt
	attempt, thinAttempt, done, deliveredOK, healthy, failed, failing                    *sql.Stmt
	clearNotSent                                                                         *sql.Stmt // for putMemberChanged, once a new member
}

func (s *Store) prepareClaim(ctx context.Context) error {
	p := &s.claim
	return s.prepare(ctx, hot{&p.claim, claimBatch}, hot{&p.anyDue, qAnyDue}, hot{&p.expiredLeases, qExpiredLeases}, hot{&p.twin, qTwin},
		hot{&p.removedDone, qRemovedDone},
		hot{&p.deleteDelivery, qDeleteDelivery}, hot{&p.foldTwin, qFoldTwin}, hot{&p.toPending, qToPending},
		hot{&p.attempt, qAttempt}, hot{&p.thinAttempt, qThinAttempt}, hot{&p.done, qDone}, hot{&p.deliveredOK, qDeliveredOK}, hot{&p.healthy, qHealthy},
		hot{&p.failed, qFailed}, hot{&p.failing, qFailing}, hot{&p.clearNotSent, qClearNotSent})
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
	// RefusedSince, of an organisation's e-mail, is when the SMTP relay first
	// refused its address for good in that run (zero when it has not): what
	// disable_after counts from for it, which a fault of the relay never switches off.
	RefusedSince time.Time
	// validUntil, when set, is when SigningSecrets lose the rotated-out secret: the
	// target cache must not serve this target from then on.
	validUntil int64
	// seq is the target cache's count of changes when the target was read
	// (targetCache.changedSince).
	seq int64
	// SigningSecrets are the whsec_ secrets to sign with: the current one first, then
	// a rotated-out one during its overlap.
	SigningSecrets []string
	// parsed is URL parsed once when the target is loaded (nil when it does not parse).
	parsed *url.URL
	// orgID is the organisation that owns the subscription (0: none).
	orgID int64
	// scope is the per-minute figures' scope of the subscription's owner
	// (ownerScope), made once as the target is read.
	scope string
	// inactive is set for a deactivated subscription, reason says why: what it still
	// had waiting is not sent but dies when claimed (claimRows).
	inactive bool
	reason   string
	// removing is set (with inactive) when the subscription's client or
	// organisation is being removed: what it has waiting dies when claimed, "not
	// sent: webhook removed", as its removal would have it.
	removing bool
	// unusable says why the subscription cannot be called (a secret that does not
	// open with this key, headers that do not read): its deliveries die when
	// claimed, with that error, and the others' go on (claimRows).
	unusable error
}

// ownerScope is the per-minute figures' scope of the subscription's owner ("" when
// it has none), as qStatsOwners finds it.
func (t *Target) ownerScope() string {
	switch {
	case t.orgID != 0:
		return OrgScope(t.orgID)
	case t.ClientID != "":
		return ClientScope(t.ClientID)
	}
	return ""
}

// ParsedURL returns the target's URL parsed (ParseTargetURL): a copy the caller may change.
func (t *Target) ParsedURL() (*url.URL, error) {
	if t.parsed == nil {
		return ParseTargetURL(t.URL)
	}
	u := *t.parsed
	return &u, nil
}

// EmailHost is the host of every e-mail target: the one SMTP relay they all go
// through, which the per-host limit bounds as one receiver. (No HostKey is it:
// those all have a port.)
const EmailHost = "smtp-relay"

// Host is the host of the target's URL as one receiver (HostKey), the whole URL
// if it does not parse; EmailHost for an e-mail.
func (t *Target) Host() string {
	if t.Format == FormatEmail {
		return EmailHost
	}
	if t.parsed != nil {
		return HostKey(t.parsed)
	}
	if u, err := ParseTargetURL(t.URL); err == nil {
		return HostKey(u)
	}
	return t.URL
}

// ParseTargetURL parses a webhook's URL as hookd calls it: the request's target
// keeps every escape the URL has (a %2F stays %2F, as SPEC's exact round trip
// asks) and escapes what a request line cannot hold as it is (a space, a byte
// beyond ASCII, "|"), as a browser does. url.Parse alone gives up the URL's own
// escapes for a path that also holds such a byte (so a%2Fb went out as a/b), and
// sends a query as it is written.
func ParseTargetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.RawPath != "" {
		u.RawPath = escapeRaw(u.RawPath)
	}
	u.RawQuery = escapeRaw(u.RawQuery)
	return u, nil
}

// escapeRaw percent-encodes the bytes of an already escaped path or query that a
// request line cannot carry as they are, and leaves the rest, its escapes too.
func escapeRaw(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; needsEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// needsEscape: a control, a space, a byte beyond ASCII, or one of "<>\^`{|}.
func needsEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0
}

// HostKey is a URL's host and port as one receiver, however the URL writes it: the
// name in lower case (an address in its canonical form; a name in another script in
// its IDNA form, xn--…, which the resolver is asked for) and the port, the scheme's
// default when none is written. The delivery's per-host limit counts calls by it,
// so LOCALHOST:80 and localhost are one host. A name's final dot stays: "intranet."
// is an absolute name, "intranet" one the resolver's search list may complete
// otherwise, and the transport dials the key.
func HostKey(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port != "" && port[0] != '0' && !strings.ContainsFunc(host, func(r rune) bool { return r == ':' || r >= utf8.RuneSelf || 'A' <= r && r <= 'Z' }) {
		return u.Host // already so (an ASCII name in lower case, or an IPv4 address, with its port): no copy
	}
	// The name the dialer looks up (Go's resolver takes no other), converted as the
	// guard checked it and as Go's own transport dials it: from the host as written,
	// since lower case first would change some (ẞ, İ) into other names.
	if a, err := ssrf.ASCIIHost(host); err == nil {
		host = a
	}
	host = strings.ToLower(host)
	if n, err := strconv.Atoi(port); err == nil && port != "" {
		port = strconv.Itoa(n) // "0080" is 80, as the dialer reads it
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	}
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// Claimed is one delivery taken for an attempt, with its lease.
type Claimed struct {
	ID        int64
	Subject   string
	EventType string
	// Attempt is the attempt's number in the delivery's log: 1 for the first, and
	// counting on after a replay.
	Attempt int
	// Try is the attempt's number since the delivery was last replayed (1 for the
	// first): the backoff counts from it.
	Try          int
	EventCount   int
	FirstEventAt time.Time
	LastEventAt  time.Time
	FirstAttempt time.Time // zero before the first attempt is recorded
	// Rev is the message's revision (MessageID): how often the delivery took in
	// new events after an attempt.
	Rev int
	// LeaseUntil is when the claim's lease ends: past it, a turn takes the row back
	// as crashed work, to be claimed and sent again.
	LeaseUntil time.Time
	Target     *Target
}

// reclaimEvery is how often at most a turn looks for expired leases.
const reclaimEvery = time.Second

// reclaim returns in-flight rows whose lease has ended (crashed work) to pending,
// folding in a pending twin when one exists.
func (s *Store) reclaim(ctx context.Context, tx *sql.Tx, now int64) (int, error) {
	rows, err := tx.StmtContext(ctx, s.claim.expiredLeases).QueryContext(ctx, now)
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
		if err := s.backToPending(ctx, tx, id, now, 0, 0); err != nil {
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
// A row whose subscription was removed meanwhile becomes dead instead. With claim
// (a call's outcome: the attempt number its claim gave the row; 0 otherwise), a
// row that is no longer in flight under that claim is left as it is: its lease ran
// out (the clock jumped past it) and another claim took it, may be calling it, or
// may have delivered it.
func (s *Store) backToPending(ctx context.Context, tx *sql.Tx, id, due int64, attemptDelta, claim int) error {
	return s.backToPendingAt(ctx, tx, id, due, attemptDelta, claim, false, attemptDelta < 0)
}

// backToPendingAt is backToPending; with retry (a failed call's outcome, due its
// retry time), due is the earliest the pair goes out again even when a twin waits
// with an earlier time: events that came during the failed call wait for the
// backoff, or the receiver's Retry-After, as those that come after it do (they
// merge into the waiting row and keep its time). With waits, the row keeps how
// long it has waited (waiting_since: qToPending).
func (s *Store) backToPendingAt(ctx context.Context, tx *sql.Tx, id, due int64, attemptDelta, claim int, retry, waits bool) error {
	var state State
	var attempts int
	var removed bool
	var notSent string
	var twin, twinDue, twinCount, twinLast, twinAttempts int64
	var twinType string
	err := tx.StmtContext(ctx, s.claim.twin).QueryRowContext(ctx, id).Scan(&state, &attempts, &removed, &notSent, &twin, &twinDue, &twinCount, &twinLast, &twinType, &twinAttempts)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // the row is gone
	case err != nil:
		return err
	case claim != 0 && (state != StateInFlight || attempts != claim):
		return nil
	case removed:
		_, err = tx.StmtContext(ctx, s.claim.removedDone).ExecContext(ctx, ms(s.Now()), attemptDelta, notSentRemoved, id)
		return err
	case notSent != "" && state == StateInFlight:
		if _, err = tx.ExecContext(ctx, qNotSentDone, ms(s.Now()), attemptDelta, id); err == nil && s.notSentTo != nil {
			*s.notSentTo = append(*s.notSentTo, notSentRow{id, notSent}) // told once the turn commits
		}
		return err
	case twin == 0:
		_, err = tx.StmtContext(ctx, s.claim.toPending).ExecContext(ctx, due, attemptDelta, id, waits)
		return err
	case twinAttempts > 0:
		// The waiting twin has a history of its own (a finished row replayed while
		// this one was out): it carries this row's events, due at the sooner of
		// the two, and this row ends here, its own history kept.
		return s.continueIn(ctx, tx, id, twin, due, attemptDelta, retry, waits)
	}
	if _, err := tx.StmtContext(ctx, s.claim.deleteDelivery).ExecContext(ctx, twin); err != nil {
		return err
	}
	if !retry {
		due = min(due, twinDue)
	}
	_, err = tx.StmtContext(ctx, s.claim.foldTwin).ExecContext(ctx, due, attemptDelta, twinCount, twinLast, twinType, id, waits)
	return err
}

// continueIn ends the row id (back from a call, or handed back) in its waiting twin,
// which has attempts of its own and so cannot be folded into it: the twin carries
// id's events, due at the sooner of the two (after a failed call, the later: retry);
// id ends dead ("continued as delivery N") with its attempts, attemptDelta applied.
// With waits (id handed back unsent), how long id has waited goes with its events:
// the twin is as old as the older of the two (waiting_since).
func (s *Store) continueIn(ctx context.Context, tx *sql.Tx, id, twin, due int64, attemptDelta int, retry, waits bool) error {
	pick := "min" // the sooner of the two; after a failed call, the later (backToPendingAt)
	if retry {
		pick = "max"
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET due_at = `+pick+`(deliveries.due_at, ?3),
			event_count = deliveries.event_count + d.event_count,
			first_event_at = min(deliveries.first_event_at, d.first_event_at),
			last_event_at = max(deliveries.last_event_at, d.last_event_at),
			event_type = CASE WHEN d.event_type = 'CREATED' THEN 'CREATED' ELSE deliveries.event_type END,
			waiting_since = CASE WHEN ?4 THEN min(coalesce(deliveries.waiting_since, d.waited), d.waited) ELSE deliveries.waiting_since END,
			`+revised+`
		FROM (SELECT event_count, first_event_at, last_event_at, event_type, coalesce(waiting_since, due_at) AS waited FROM deliveries WHERE id = ?1) d
		WHERE deliveries.id = ?2`, id, twin, due, waits); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?1, lease_until = NULL, attempts = max(attempts + ?2, 0),
		last_error = ?3 WHERE id = ?4`, ms(s.Now()), attemptDelta, continuedAs+strconv.FormatInt(twin, 10), id)
	return err
}

// continuedAs begins the last error of a row that ended in its twin (continueIn),
// followed by the twin's id: a replay leaves such a row, whose events the twin
// carries.
const continuedAs = "continued as delivery "

// CalledURL is the URL a delivery of t for the record subject calls: its URL, with
// the record's iD appended for a webhook that asks for it (append-orcid).
func (t *Target) CalledURL(subject string) string {
	if t.AppendOrcid {
		return strings.TrimSuffix(t.URL, "/") + "/" + subject
	}
	return t.URL
}

// claimBatch is the one statement that takes due work: due pending rows whose pair
// has nothing in flight, leased until lease_until: the ?3 oldest and the ?4 newest.
// The newest make a fresh event's delivery go out at once even behind a backlog
// (one busy host's backlog must not delay another host's callbacks); the oldest
// make the backlog drain in order. The limits are written "?3 + 0": SQLite plans
// with the value of a bare bound LIMIT, so every new value (the free capacity
// changes from turn to turn) recompiled the statement, ~120 µs each time.
const claimBatch = `
UPDATE deliveries SET state = 1, lease_until = ?1, attempts = attempts + 1
WHERE id IN (
	SELECT id FROM (SELECT x.id FROM deliveries x
		WHERE x.state = 0 AND x.due_at <= ?2
		  AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.state = 1 AND f.subscription_id = x.subscription_id AND f.subject = x.subject)
		ORDER BY x.due_at LIMIT ?3 + 0)
	UNION ALL
	SELECT id FROM (SELECT x.id FROM deliveries x
		WHERE x.state = 0 AND x.due_at <= ?2
		  AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.state = 1 AND f.subscription_id = x.subscription_id AND f.subject = x.subject)
		ORDER BY x.due_at DESC LIMIT ?4 + 0))
RETURNING id, subscription_id, subject, event_type, attempts, attempts - attempt_base, event_count, first_event_at, last_event_at,
	coalesce(first_attempt_at, 0), ` + revNow

// claimNewest is the share of a claim that goes to the newest due rows.
func claimNewest(limit int) int { return limit / 4 }

// ClaimNewest takes up to limit of the newest due deliveries with a lease, in a
// turn of its own: a short transaction that the dispatch loop takes between two
// long ones when events arrived meanwhile, so their deliveries go out without
// waiting for a whole turn of another host's backlog.
func (s *Store) ClaimNewest(ctx context.Context, limit int, lease time.Duration) ([]Claimed, error) {
	return s.exchange(ctx, nil, 0, limit, lease)
}

// Claim reclaims crashed work and then takes up to limit due deliveries with a lease,
// in one transaction, returning them with their targets.
func (s *Store) Claim(ctx context.Context, limit int, lease time.Duration) ([]Claimed, error) {
	return s.Exchange(ctx, nil, limit, lease)
}

// Exchange is the dispatch loop's one transaction: it records the outcomes of
// finished work, returns crashed work (expired leases) to pending, and claims up to
// limit due deliveries with a lease, returning them with their targets. It goes
// through the group writer ahead of the calls waiting there, so a turn and the
// intake calls waiting at the same moment share one commit, and a turn waits for
// at most the group being written; alone, it commits without an fsync (groupTurn,
// beginGroup).
func (s *Store) Exchange(ctx context.Context, outcomes []Outcome, limit int, lease time.Duration) ([]Claimed, error) {
	newest := claimNewest(max(limit, 0))
	return s.exchange(ctx, outcomes, max(limit, 0)-newest, newest, lease)
}

// exchange is Exchange claiming up to oldest of the oldest due rows and up to newest
// of the newest.
func (s *Store) exchange(ctx context.Context, outcomes []Outcome, oldest, newest int, lease time.Duration) ([]Claimed, error) {
	limit := oldest + newest
	var out []Claimed
	var cleared []int64   // subscriptions whose mark the commit may forget (markedFailing)
	var told []notSentRow // rows that ended unsent (not_sent), told of once committed
	err := s.groupTurn(ctx, len(outcomes)+limit, func(ctx context.Context, tx *sql.Tx) error {
		// The time of the transaction, not of the call: events stored earlier in the
		// same group are due by it.
		now := ms(s.Now())
		out, cleared, told = out[:0], cleared[:0], told[:0]
		s.notSentTo = &told
		defer func() { s.notSentTo = nil }()
		var err error
		if cleared, err = s.record(ctx, tx, outcomes, now, cleared); err != nil {
			return fmt.Errorf("record outcomes: %w", err)
		}
		if err := s.addStats(ctx, tx, outcomes, now); err != nil {
			return err
		}
		if limit <= 0 {
			return nil
		}
		if last := s.reclaimedAt.Load(); now-last >= reclaimEvery.Milliseconds() || now < last {
			// Leases last minutes: a look for expired ones once a second is enough,
			// and saves each turn a walk over every in-flight row.
			if _, err := s.reclaim(ctx, tx, now); err != nil {
				return fmt.Errorf("reclaim leases: %w", err)
			}
			s.reclaimedAt.Store(now)
		}
		if s.claimedNone.Load() {
			// The last turn's claim found nothing, as every turn's does in a
			// trickle of events (their own transactions claim them) and while
			// idle: ask first.
			var due bool
			if err := tx.StmtContext(ctx, s.claim.anyDue).QueryRowContext(ctx, now).Scan(&due); err != nil {
				return fmt.Errorf("claim deliveries: %w", err)
			}
			if !due {
				return nil
			}
		}
		var found int
		out, found, err = s.claimRows(ctx, tx, out, now, oldest, newest, lease)
		s.claimedNone.Store(err == nil && found == 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.forgetMarks(cleared)
	if s.NotSent != nil {
		for _, n := range told {
			s.NotSent(n.id, n.why)
		}
	}
	return out, nil
}

// claimRows claims, in tx, up to oldest of the oldest due rows and up to newest of
// the newest, with a lease from now, and appends them to out with their targets.
// found is how many due rows it took: those appended, and those of webhooks that
// cannot be called, which die instead (killClaimed).
func (s *Store) claimRows(ctx context.Context, tx *sql.Tx, out []Claimed, now int64, oldest, newest int, lease time.Duration) (_ []Claimed, found int, err error) {
	rows, err := tx.StmtContext(ctx, s.claim.claim).QueryContext(ctx, now+lease.Milliseconds(), now, oldest, newest)
	if err != nil {
		return out, 0, fmt.Errorf("claim deliveries: %w", err)
	}
	start := len(out)
	until := fromMS(now + lease.Milliseconds())
	subs := map[int64]*Target{}
	var subIDs []int64 // each claimed row's subscription, in order
	var subID, first, last, firstAttempt int64
	for rows.Next() {
		// Scanned in place: a row scanned into a variable of its own would be one
		// more allocation each.
		out = append(out, Claimed{})
		c := &out[len(out)-1]
		if err := rows.Scan(&c.ID, &subID, &c.Subject, &c.EventType, &c.Attempt, &c.Try, &c.EventCount, &first, &last, &firstAttempt, &c.Rev); err != nil {
			rows.Close()
			return out[:len(out)-1], 0, err
		}
		c.FirstEventAt, c.LastEventAt, c.FirstAttempt, c.LeaseUntil = fromMS(first), fromMS(last), fromMS(firstAttempt), until
		subs[subID] = nil
		subIDs = append(subIDs, subID)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return out, 0, err
	}
	if err := rows.Close(); err != nil {
		return out, 0, err
	}
	found = len(out) - start
	if err := s.cachedTargets(ctx, tx, subs, now); err != nil {
		return out, 0, err
	}
	kept := out[:start]
	var dead, gone []int64
	type broken struct{ uid, why string }
	var unusable map[broken][]int64 // deliveries by webhook and why; made at the first
	for i, c := range out[start:] {
		switch c.Target = subs[subIDs[i]]; {
		case c.Target.removing:
			gone = append(gone, c.ID)
		case c.Target.inactive:
			dead = append(dead, c.ID)
		case c.Target.unusable != nil:
			why := "not sent: webhook " + c.Target.UID + " cannot be called: " + c.Target.unusable.Error() +
				"; restore the database's key (auth.secret_key_file) or give the webhook a new secret, then replay"
			if unusable == nil {
				unusable = map[broken][]int64{}
			}
			k := broken{c.Target.UID, why}
			unusable[k] = append(unusable[k], c.ID)
		default:
			kept = append(kept, c)
		}
	}
	for k, ids := range unusable {
		if s.Unusable != nil {
			s.afterCommit(func() { s.Unusable(k.uid, k.why) })
		}
		// One webhook that cannot be called holds up nobody else's deliveries:
		// its own die, unsent, saying why, and are replayable once it is mended.
		if err := s.killClaimed(ctx, tx, now, ids, "?3", k.why); err != nil {
			return out, 0, err
		}
	}
	if len(gone) > 0 {
		// Its owner is being removed: the webhook is sent nothing more, and its
		// removal would have turned it dead so.
		if err := s.killClaimed(ctx, tx, now, gone, "?3", notSentRemoved); err != nil {
			return out, 0, err
		}
	}
	if len(dead) > 0 {
		// Left waiting by a deactivation that turned only a batch dead (killBatch).
		if err := s.killClaimed(ctx, tx, now, dead, sqlNotSentDeactivated); err != nil {
			return out, 0, err
		}
	}
	return kept, found, nil
}

// killClaimed makes claimed rows die now, unsent, their attempt not counted, with
// lastError (an SQL expression; its own arguments follow ?1 now and ?2 the ids).
// Their turn counts them as claimed (ClaimKilled), or it would take the queue for
// empty.
func (s *Store) killClaimed(ctx context.Context, tx *sql.Tx, now int64, ids []int64, lastError string, args ...any) error {
	b, _ := json.Marshal(ids)
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?1, lease_until = NULL, attempts = attempts - 1,
		last_error = `+lastError+` WHERE id IN (SELECT value FROM json_each(?2))`, append([]any{now, string(b)}, args...)...); err != nil {
		return err
	}
	s.afterCommit(func() { s.claimKilled.Add(int64(len(ids))) })
	return nil
}

// ClaimKilled is how many claimed deliveries have died unsent so far because their
// webhook had been deactivated (killBatch): a turn that claimed fewer rows than it
// asked for may still have found that many due.
func (s *Store) ClaimKilled() int64 { return s.claimKilled.Load() }

// scanTarget reads one row of qTargets and opens its secrets.
func (s *Store) scanTarget(row interface{ Scan(...any) error }, now int64) (*Target, error) {
	var t Target
	var headers string
	var authSecret, apikey, signing, previous []byte
	var previousUntil, failing, refused int64
	var active bool
	if err := row.Scan(&t.SubscriptionID, &t.UID, &t.ClientID, &t.orgID, &t.Format, &t.URL, &headers,
		&t.Auth.Type, &t.Auth.Username, &t.Auth.ClientID, &t.Auth.TokenURL, &authSecret, &t.AppendOrcid, &apikey,
		&signing, &previous, &previousUntil, &failing, &refused, &active, &t.reason, &t.removing); err != nil {
		return nil, err
	}
	t.inactive = !active || t.removing
	t.scope = t.ownerScope()
	t.FailingSince = fromMS(failing)
	t.RefusedSince = fromMS(refused)
	if u, err := ParseTargetURL(t.URL); err == nil {
		t.parsed = u
	}
	if headers != "" {
		if err := json.Unmarshal([]byte(headers), &t.Headers); err != nil {
			t.unusable = fmt.Errorf("its custom headers do not read: %w", err)
			return &t, nil
		}
	}
	var err error
	if t.Auth.Secret, err = s.box.OpenString(authSecret); err != nil {
		t.unusable = fmt.Errorf("its callback credentials: %w", err)
		return &t, nil
	}
	if t.APIKey, err = s.box.OpenString(apikey); err != nil {
		t.unusable = fmt.Errorf("its apikey: %w", err)
		return &t, nil
	}
	if previousUntil <= now {
		previous = nil // the rotation overlap is over
	} else {
		t.validUntil = previousUntil
	}
	for i, sealed := range [][]byte{signing, previous} {
		if len(sealed) == 0 {
			continue
		}
		sig, err := s.box.OpenString(sealed)
		switch {
		case err != nil && i == 1:
			continue // a rotated-out secret that does not open only stops signing early: a rotation mends a webhook
		case err != nil:
			t.unusable, t.SigningSecrets = fmt.Errorf("its signing secret: %w", err), nil
			return &t, nil
		}
		t.SigningSecrets = append(t.SigningSecrets, sig)
	}
	return &t, nil
}

// Outcome is the result of one attempt, recorded by Exchange.
type Outcome struct {
	DeliveryID     int64
	SubscriptionID int64
	// SubscriptionUID is the subscription's public id, the one logs name it by.
	SubscriptionUID string
	Kind            OutcomeKind
	Attempt         int
	StartedAt       time.Time
	Duration        time.Duration
	Status          int    // HTTP status; 0 when there was no response
	Error           string // what went wrong, for the attempt log
	Response        string // the first bytes of the response body
	// Target is where a failed attempt went (CalledURL), for the attempt log.
	Target string
	// Sent marks a release of a call cut short (a shutdown): not an attempt, but
	// its request may have reached the receiver.
	Sent bool
	// Held marks a release due at a time hookd was asked to wait for (the
	// upstream's Retry-After, given to another call), not at a next turn: like a
	// retry, the delivery is due from then, and how long it waited before is not
	// kept (waiting_since), as it is for one its host could not take.
	Held    bool
	RetryAt time.Time
	// WasFailing says the subscription was failing when the delivery was claimed, so a
	// success must clear its failing_since.
	WasFailing bool
	// FailingSince is when the subscription's run of failures began, for an
	// OutcomeDeactivate: the reason it is deactivated names it. For a Refused one
	// (an organisation's e-mail) it is when the run's refusals began.
	FailingSince time.Time
	// Refused marks the failure of an e-mail whose address the SMTP relay refused
	// for good: the first in its subscription's run of failures begins the run's
	// refusals, which disable_after counts for an organisation's e-mail (a fault
	// of the relay neither begins nor ends them).
	Refused bool
	// RunGap, for a failure, is how long after the latest retry its subscription's
	// run of failures planned the failure may come and still continue that run
	// (the dispatcher's retry_max_delay): one that comes later, after a silence
	// with nothing tried, begins a new run. Zero lets no run lapse.
	RunGap time.Duration
	// RunDue, for a failure that ended its delivery where it would have been
	// retried (an e-mail whose address the SMTP relay refused for good, dead at
	// once), is when those retries would have ended: its subscription's run of
	// failures holds until then, as they would have held it, so that the next
	// refusal continues the run rather than beginning a new one.
	RunDue time.Time
	// Deactivated is set by the store for an OutcomeGone or OutcomeDeactivate that
	// switched its subscription off: only the first of the outcomes that would,
	// not one for a subscription already off (by an earlier outcome, of the same
	// turn or before) or removed, so a deactivation is told once.
	Deactivated bool
}

// record writes outcomes: the attempt log, each delivery's new state, and the
// subscriptions' health.
func (s *Store) record(ctx context.Context, tx *sql.Tx, outcomes []Outcome, now int64, cleared []int64) ([]int64, error) {
	if len(outcomes) == 0 {
		return cleared, nil
	}
	delivered := tx.StmtContext(ctx, s.claim.deliveredOK) // bound to tx once, not per row
	for i := range outcomes {
		o := &outcomes[i] // what is applied is written back: the caller's figures and notices follow it
		if o.Kind == OutcomeDelivered {
			if _, err := delivered.ExecContext(ctx, now, o.Status, ms(o.StartedAt), o.Duration.Milliseconds(), o.Response, o.DeliveryID, o.Attempt); err != nil {
				return cleared, err
			}
			if marked := s.marked(o.SubscriptionID); o.WasFailing || marked {
				if _, err := tx.StmtContext(ctx, s.claim.healthy).ExecContext(ctx, o.SubscriptionID, o.DeliveryID); err != nil {
					return cleared, err
				}
				if marked {
					cleared = append(cleared, o.SubscriptionID) // forgotten once committed
				}
				s.targetCache.refresh(o.SubscriptionID)
			}
			continue
		}
		if o.Kind == OutcomeReleased {
			if o.Sent {
				// Its attempt is undone, but the receiver may have had the request: what
				// the row takes in from now on is a new message (revised).
				if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET first_attempt_at = coalesce(first_attempt_at, ?1)
					WHERE id = ?2 AND state = 1 AND attempts = ?3`, ms(o.StartedAt), o.DeliveryID, o.Attempt); err != nil {
					return cleared, err
				}
			}
			if err := s.backToPendingAt(ctx, tx, o.DeliveryID, ms(o.RetryAt), -1, o.Attempt, false, !o.Held); err != nil {
				return cleared, err
			}
			continue
		}
		if o.Kind == OutcomeDeactivate {
			// Decided on the run of failures the claim saw; one that ended during the
			// call (a success, a replay) does not deactivate: the delivery is retried.
			// Nor does one that lapsed before this failure (the webhook was not tried
			// for longer than the run's gap): this failure begins a new run.
			// An e-mail refused for good is decided on the run's refusals, which
			// began with the run's first refusal.
			var since, due, refused sql.NullInt64
			if err := tx.QueryRowContext(ctx, "SELECT failing_since, failing_due, refused_since FROM subscriptions WHERE id = ?", o.SubscriptionID).Scan(&since, &due, &refused); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return cleared, err
			}
			lapsed := o.RunGap > 0 && due.Int64+o.RunGap.Milliseconds() < ms(o.StartedAt)
			run := since
			if o.Refused {
				run = refused
			}
			if !since.Valid || !run.Valid || run.Int64 != ms(o.FailingSince) || lapsed {
				o.Kind = OutcomeRetry
				if o.RetryAt.IsZero() {
					o.RetryAt = s.Now()
				}
			}
		}
		if o.Kind == OutcomeGone && o.Target != "" {
			// Decided on the address the call went to: a webhook moved during the call
			// (a new URL committed while the old one answered) is not deactivated for
			// what its old address said. The delivery is retried at the new one.
			moved, err := movedSince(ctx, tx, o.SubscriptionID, o.DeliveryID, o.Target)
			if err != nil {
				return cleared, err
			}
			if moved {
				o.Kind, o.RetryAt = OutcomeRetry, s.Now()
				o.Error = "HTTP 410 Gone from " + o.Target + ", which the webhook no longer calls (its URL changed during the call): not deactivated"
			}
		}
		msg := o.Error
		if o.Kind == OutcomeGone {
			// Its attempt says it switched its webhook off only when it does: not
			// for the calls in flight when a first 410 switched it off, nor for a
			// webhook removed during the call.
			var switches bool
			if err := tx.QueryRowContext(ctx, qSwitchesOff, o.DeliveryID, o.SubscriptionID, reasonRemoving).Scan(&switches); err != nil {
				return cleared, err
			}
			if switches {
				msg += "; subscription deactivated"
			}
			o.Error = msg // as its log line says it too
		}
		if o.Kind == OutcomeDeactivate {
			// The attempt log and the reason both say since when it has been failing.
			msg = reasonFailingSince + o.FailingSince.UTC().Format(time.RFC3339) + " (last: " + o.Error + ")"
		}
		if _, err := tx.StmtContext(ctx, s.claim.attempt).ExecContext(ctx, o.DeliveryID, o.Attempt, ms(o.StartedAt), o.Duration.Milliseconds(), o.Status, msg, o.Response, o.Target); err != nil {
			return cleared, err
		}
		if o.Attempt > attemptsFirst+attemptsLast {
			if _, err := tx.StmtContext(ctx, s.claim.thinAttempt).ExecContext(ctx, o.DeliveryID, o.Attempt-attemptsLast); err != nil {
				return cleared, err
			}
		}
		switch o.Kind {
		case OutcomeRetry:
			if _, err := tx.StmtContext(ctx, s.claim.failed).ExecContext(ctx, o.Status, msg, ms(o.StartedAt), o.DeliveryID, o.Attempt); err != nil {
				return cleared, err
			}
			if err := s.backToPendingAt(ctx, tx, o.DeliveryID, ms(o.RetryAt), 0, o.Attempt, true, false); err != nil {
				return cleared, err
			}
			if marked, err := s.markFailing(ctx, tx, *o, ms(o.StartedAt)); err != nil {
				return cleared, err
			} else if marked {
				// Marked again after a success in this turn: the mark stays.
				cleared = slices.DeleteFunc(cleared, func(id int64) bool { return id == o.SubscriptionID })
			}
		case OutcomeDead, OutcomeGone, OutcomeDeactivate:
			if _, err := tx.StmtContext(ctx, s.claim.done).ExecContext(ctx, StateDead, now, o.Status, msg, ms(o.StartedAt), o.DeliveryID, o.Attempt); err != nil {
				return cleared, err
			}
			if marked, err := s.markFailing(ctx, tx, *o, ms(o.StartedAt)); err != nil {
				return cleared, err
			} else if marked {
				// Marked again after a success in this turn: the mark stays.
				cleared = slices.DeleteFunc(cleared, func(id int64) bool { return id == o.SubscriptionID })
			}
			if o.Kind == OutcomeDead {
				continue
			}
			o.Deactivated = false
			var owns bool
			if err := tx.QueryRowContext(ctx, qOwns, o.DeliveryID, o.SubscriptionID).Scan(&owns); err != nil {
				return cleared, err
			}
			if !owns {
				continue // the subscription was removed during the call: nothing to deactivate
			}
			reason := msg
			if o.Kind == OutcomeGone {
				reason = reasonGoneAt + fromMS(ms(o.StartedAt)).Format(time.RFC3339)
			} else {
				cleared = append(cleared, o.SubscriptionID) // no success will come to clear it
			}
			wasOn, err := s.deactivate(ctx, tx, o.SubscriptionID, reason, now)
			if err != nil {
				return cleared, err
			}
			if !wasOn {
				continue // turned off already, by an earlier outcome of the turn or before it
			}
			o.Deactivated = true
			if err := s.unregisterUncovered(ctx, tx, o.SubscriptionID, now); err != nil {
				return cleared, err
			}
		default:
			return cleared, fmt.Errorf("unknown outcome kind %d", int(o.Kind))
		}
	}
	return cleared, nil
}

// movedSince reports whether subscription subID no longer calls called for
// delivery deliveryID: its URL (or its append-orcid) changed since the call. A
// subscription removed meanwhile has not moved: the outcome finds it gone.
func movedSince(ctx context.Context, tx *sql.Tx, subID, deliveryID int64, called string) (bool, error) {
	var t Target
	var subject string
	err := tx.QueryRowContext(ctx, `SELECT s.target, s.append_orcid, d.subject FROM subscriptions s
		JOIN deliveries d ON d.subscription_id = s.id WHERE s.id = ? AND d.id = ?`, subID, deliveryID).Scan(&t.URL, &t.AppendOrcid, &subject)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return t.CalledURL(subject) != called, nil
}

// qEndLapsedRuns ends the runs of failures whose latest planned retry is more
// than ?1 before ?2. It reads only the failing subscriptions (subscriptions_failing),
// never every registration, once a minute.
const qEndLapsedRuns = `UPDATE subscriptions SET failing_since = NULL
	WHERE failing_since IS NOT NULL AND coalesce(failing_due, 0) + ?1 < ?2 RETURNING id`

// EndLapsedRuns ends the runs of failures that lapsed: those of webhooks hookd
// has not tried for longer than gap (the dispatcher's retry_max_delay) after the
// latest retry their failures planned (their deliveries died, or are waiting
// behind a backlog for that long, or hookd was stopped): the failures seen then
// say nothing of the webhook now, and it no longer shows as failing. A failure
// that comes later begins a new run (markFailing). It returns how many it ended.
func (s *Store) EndLapsedRuns(ctx context.Context, gap time.Duration) (int, error) {
	if gap <= 0 {
		return 0, nil
	}
	var ended []int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		ended, err = queryColumn[int64](ctx, tx, qEndLapsedRuns, gap.Milliseconds(), ms(s.Now()))
		for _, id := range ended {
			s.targetCache.refresh(id)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("end lapsed runs of failures: %w", err)
	}
	return len(ended), nil
}

// maxMarkedFailing bounds Store.markedFailing.
const maxMarkedFailing = 100000

// marked reports whether this process marked a subscription failing and has not
// seen a success of it committed since.
func (s *Store) marked(subID int64) bool {
	s.failingMu.Lock()
	defer s.failingMu.Unlock()
	_, ok := s.markedFailing[subID]
	return ok
}

// forgetMarks forgets the marks of subscriptions whose success (or deactivation)
// has been committed: only then, for a turn that rolls back records its outcomes
// again, and its success must find the mark still there.
func (s *Store) forgetMarks(ids []int64) {
	if len(ids) == 0 {
		return
	}
	s.failingMu.Lock()
	defer s.failingMu.Unlock()
	for _, id := range ids {
		delete(s.markedFailing, id)
	}
}

// markFailing records a failed outcome, which started at at, in its
// subscription's run of failures: it begins one if none is on or the one on
// lapsed (Outcome.RunGap), and otherwise moves the run's due time on to the retry
// the outcome planned (the failure itself for one that ended the delivery, or its
// Outcome.RunDue). A Refused outcome begins the run's refusals when none came
// before it in the run. It reports whether it began a run (and marked it).
func (s *Store) markFailing(ctx context.Context, tx *sql.Tx, o Outcome, at int64) (marked bool, err error) {
	subID := o.SubscriptionID
	due := at
	if o.Kind == OutcomeRetry {
		due = max(due, ms(o.RetryAt))
	}
	if !o.RunDue.IsZero() {
		due = max(due, ms(o.RunDue))
	}
	var began, refusals bool
	err = tx.StmtContext(ctx, s.claim.failing).QueryRowContext(ctx, at, subID, o.DeliveryID, o.RunGap.Milliseconds(), due, o.Refused).Scan(&began, &refusals)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the run goes on as it was (or the subscription is gone)
	}
	if err != nil {
		return false, err
	}
	if refusals && !began {
		s.targetCache.refresh(subID) // the next claim reads since when its address has been refused
	}
	if began {
		s.targetCache.refresh(subID)
		s.failingMu.Lock()
		if s.markedFailing == nil || len(s.markedFailing) >= maxMarkedFailing {
			s.markedFailing = map[int64]struct{}{} // past the bound, start over: only a race is lost
		}
		s.markedFailing[subID] = struct{}{} // kept if the group rolls back: a success then clears nothing
		s.failingMu.Unlock()
		return true, nil
	}
	return false, nil
}
