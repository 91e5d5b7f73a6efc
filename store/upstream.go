package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"hookd/secret"
)

// Upstream registration (Hub mode): one subscription of format upstream stands for
// the upstream ORCID API. Its deliveries are not events but work orders, one per
// record: event type UpstreamRegister (PUT the record's webhook upstream) or
// UpstreamUnregister (DELETE it). Its types column lists only those two, so the
// intake's fan-out never matches it. Because they go through the outbox, failed
// registrations are retried, logged and replayable like any delivery.
const (
	UpstreamRegister   = "REGISTER"
	UpstreamUnregister = "UNREGISTER"
)

// upstreamOn is true when upstream registration is configured. The upstream
// subscription has neither a record nor an organisation, so it is in the small
// index of the subscriptions to every record (subscriptions_everything): saying
// so lets SQLite look there rather than read every subscription, on each page of
// members.
const upstreamOn = `EXISTS (SELECT 1 FROM subscriptions WHERE format = 'upstream' AND active = 1 AND orcid IS NULL AND org_id IS NULL)`

// covered is true when the record m.orcid is a member of an organisation with an
// active webhook or e-mail setting.
const covered = `EXISTS (SELECT 1 FROM members m2 JOIN subscriptions s2 ON s2.org_id = m2.org_id
	AND s2.active = 1 AND s2.format IN ('hub', 'email') WHERE m2.orcid = m.orcid)`

// qUpstreamOrder queues (or turns around) a registration work order, due now.
const qUpstreamOrder = `INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
VALUES (?1, ?2, ?3, 0, ?4, ?4, ?4)` + upstreamOrderMerge

// upstreamOrderMerge turns a record's pending work order into the one queued now.
const upstreamOrderMerge = `
ON CONFLICT(subscription_id, subject) WHERE state = 0 DO UPDATE SET
	event_type = excluded.event_type, last_event_at = max(last_event_at, excluded.last_event_at), event_count = event_count + 1`

// qRequeueRegistrations queues a registration, for upstream subscription ?1 at ?2,
// of every record not yet registered that has no work order waiting or in flight.
// Each of the two checks names its state's index: left to choose, SQLite read every
// work order the upstream subscription has kept, for each record
// (TestStateCountPlans).
const qRequeueRegistrations = `INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
SELECT ?1, orcid, 'REGISTER', 0, ?2, ?2, ?2 FROM upstream_registrations WHERE registered = 0
AND NOT EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_one_pending WHERE d.subscription_id = ?1 AND d.subject = orcid AND d.state = 0)
AND NOT EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_in_flight WHERE d.subscription_id = ?1 AND d.subject = orcid AND d.state = 1)`

// qUpstreamSub finds the active upstream subscription, and qUpstreamSubAny the
// upstream subscription, active or not, through its index (subscriptions_upstream).
const (
	qUpstreamSub    = "SELECT id FROM subscriptions WHERE format = 'upstream' AND active = 1 ORDER BY id LIMIT 1"
	qUpstreamSubAny = "SELECT id, target, active, registered_as FROM subscriptions WHERE format = 'upstream' ORDER BY id LIMIT 1"
)

// upstreamSub returns the id of the active upstream subscription, or 0.
func upstreamSub(ctx context.Context, tx *sql.Tx) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, qUpstreamSub).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// syncUpstream brings the upstream registration of each record in line with whether
// an organisation with webhook or e-mail enabled covers it: it queues a registration
// for a newly covered record and an unregistration for one no longer covered. It
// does nothing when upstream registration is off.
func (s *Store) syncUpstream(ctx context.Context, tx *sql.Tx, now int64, orcids ...string) error {
	if len(orcids) == 0 {
		return nil
	}
	subID, err := upstreamSub(ctx, tx)
	if err != nil || subID == 0 {
		return err
	}
	c := newTxStmts(tx)
	for _, id := range orcids {
		var isCovered, hasRow bool
		err := c.scan(ctx, `SELECT `+covered+`, EXISTS (SELECT 1 FROM upstream_registrations WHERE orcid = m.orcid)
			FROM (SELECT ? AS orcid) m`, []any{id}, &isCovered, &hasRow)
		if err != nil {
			return err
		}
		switch {
		case isCovered && !hasRow:
			if _, err := c.exec(ctx, "INSERT INTO upstream_registrations(orcid, updated_at) VALUES (?, ?)", id, now); err != nil {
				return err
			}
			if _, err := c.exec(ctx, qUpstreamOrder, subID, id, UpstreamRegister, now); err != nil {
				return err
			}
		case isCovered && hasRow:
			// An unregistration still pending is turned back into a registration.
			if _, err := c.exec(ctx, `UPDATE deliveries SET event_type = ? WHERE subscription_id = ? AND subject = ?
				AND state = 0 AND event_type = ?`, UpstreamRegister, subID, id, UpstreamUnregister); err != nil {
				return err
			}
		case !isCovered && hasRow:
			if _, err := c.exec(ctx, "DELETE FROM upstream_registrations WHERE orcid = ?", id); err != nil {
				return err
			}
			if _, err := c.exec(ctx, qUpstreamOrder, subID, id, UpstreamUnregister, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// upstreamBatch bounds how many records one write transaction registers or
// unregisters upstream for a change of an organisation's coverage: its webhook or
// e-mail turned on or off by its staff or an operator, or off by hookd itself in a
// turn of the dispatch loop (a 410, failures past disable_after). Every write waits
// for such a transaction, and an organisation with 100,000 members held them for
// seconds. The retention pass queues the rest (QueueUpstreamLeft), a batch a
// transaction.
var upstreamBatch = 500

// unregisterUncovered queues an unregistration of each record the subscription
// subID's organisation has as a member that nothing covers any more, after hookd
// itself turned that subscription off: those among its first upstreamBatch members,
// the rest later (upstreamBatch). A subscription of no organisation, or upstream registration
// off, makes it do nothing.
func (s *Store) unregisterUncovered(ctx context.Context, tx *sql.Tx, subID, now int64) error {
	upID, err := upstreamSub(ctx, tx)
	if err != nil || upID == 0 {
		return err
	}
	var orgID sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT org_id FROM subscriptions WHERE id = ?", subID).Scan(&orgID); err != nil || !orgID.Valid {
		return wrapUpstream(err)
	}
	// An organisation whose other setting still covers its members has none to
	// unregister, and keeps registering those a change of its settings left.
	var covers bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM subscriptions
		WHERE org_id = ? AND active = 1 AND format IN ('hub', 'email'))`, orgID.Int64).Scan(&covers); err != nil || covers {
		return wrapUpstream(err)
	}
	s.register.forget(orgID.Int64)
	return s.startOrg(ctx, tx, &s.unregister, unregisterMembers, upID, orgID.Int64, now)
}

// syncOrgUpstream is syncUpstream for every member of an organisation, after its
// settings changed: registrations or unregistrations, as the organisation now
// covers its members or not, for its first upstreamBatch members, the rest later
// (upstreamBatch).
func (s *Store) syncOrgUpstream(ctx context.Context, tx *sql.Tx, orgID, now int64) error {
	upID, err := upstreamSub(ctx, tx)
	if err != nil || upID == 0 {
		return err
	}
	// An organisation that covers its members now has none to unregister, and one
	// that does not has none to register: another that covers one registered it.
	var covers bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM subscriptions
		WHERE org_id = ? AND active = 1 AND format IN ('hub', 'email'))`, orgID).Scan(&covers); err != nil {
		return wrapUpstream(err)
	}
	if !covers {
		s.register.forget(orgID) // what an earlier change left to register is not wanted now
		return s.startOrg(ctx, tx, &s.unregister, unregisterMembers, upID, orgID, now)
	}
	s.unregister.forget(orgID)
	return s.startOrg(ctx, tx, &s.register, registerMembers, upID, orgID, now)
}

// membersBatch registers or unregisters upstream, as they call for, the next
// limit of organisation orgID's members in iD order after the iD after, queuing
// the work orders for the upstream subscription upID; it returns how many members
// it looked at, and the last iD. A batch bounds what it reads, not only what it
// changes: a batch of members that need nothing costs as little.
type membersBatch func(ctx context.Context, tx *sql.Tx, upID, orgID int64, after string, now int64, limit int) (int, string, error)

// startOrg runs the first batch of orgID's members in tx and, when it was full,
// leaves the rest to the retention pass (left).
func (s *Store) startOrg(ctx context.Context, tx *sql.Tx, left *orgsLeft, batch membersBatch, upID, orgID, now int64) error {
	n, last, err := batch(ctx, tx, upID, orgID, "", now, upstreamBatch)
	if err == nil && n == upstreamBatch {
		left.leave(orgID, last)
	}
	return err
}

// orgsLeft is what changes of organisations' coverage left to register, or to
// unregister, upstream (QueueUpstreamLeft): for each such organisation, the iD its
// members' next batch starts after. It lives in memory: a crash loses it, and the
// daemon's start reconciles every registration (ConfigureUpstream).
type orgsLeft struct {
	mu   sync.Mutex
	orgs map[int64]*orgLeft
	seq  uint64 // the last orgLeft.gen given
}

// orgLeft is one organisation's members left.
type orgLeft struct {
	after string // the last iD done
	// gen tells the changes that left some apart, so a batch under way when another
	// change came (or an entry was forgotten and made again) records nothing.
	gen uint64
}

// leave notes that a change left those of organisation org's members after the
// iD after (its first batch did the others): the retention pass goes on from there.
func (u *orgsLeft) leave(org int64, after string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.orgs == nil {
		u.orgs = map[int64]*orgLeft{}
	}
	u.seq++
	u.orgs[org] = &orgLeft{after: after, gen: u.seq}
}

// forget drops what a change left of organisation org's members, after a change
// that wants the other direction.
func (u *orgsLeft) forget(org int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.orgs, org)
}

// next is the organisation with the lowest id that has members left, and where
// they go on from.
func (u *orgsLeft) next() (org int64, o orgLeft, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, left := range u.orgs {
		if !ok || id < org {
			org, o, ok = id, *left, true
		}
	}
	return org, o, ok
}

// done records a batch of org's members, as of the batch's start (o): the last iD
// it did, or, when it found fewer than it had room for, that none is left. A
// change since (a new generation) wins.
func (u *orgsLeft) done(org int64, o orgLeft, last string, finished bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := u.orgs[org]
	switch {
	case cur == nil || cur.gen != o.gen:
	case finished:
		delete(u.orgs, org)
	default:
		cur.after = last
	}
}

// memberWindow is the range of the next limit of organisation orgID's members in
// iD order after the iD after: how many there are, and the last iD.
func memberWindow(ctx context.Context, tx *sql.Tx, orgID int64, after string, limit int) (int, string, error) {
	var n int
	var last string
	err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(orcid), '') FROM (
		SELECT orcid FROM members WHERE org_id = ? AND orcid > ? ORDER BY orcid LIMIT ?)`, orgID, after, limit).Scan(&n, &last)
	return n, last, wrapUpstream(err)
}

// unregisterMembers forgets the registration of those of the next limit members
// of organisation orgID that are registered and that nothing covers, and queues
// their unregistrations (a membersBatch).
func unregisterMembers(ctx context.Context, tx *sql.Tx, upID, orgID int64, after string, now int64, limit int) (int, string, error) {
	n, last, err := memberWindow(ctx, tx, orgID, after, limit)
	if err != nil || n == 0 {
		return 0, "", err
	}
	gone, err := queryColumn[string](ctx, tx, `DELETE FROM upstream_registrations WHERE orcid IN (
		SELECT m.orcid FROM members m WHERE m.org_id = ?1 AND m.orcid > ?2 AND m.orcid <= ?3
			AND EXISTS (SELECT 1 FROM upstream_registrations r WHERE r.orcid = m.orcid) AND NOT `+covered+`)
		RETURNING orcid`, orgID, after, last)
	if err != nil {
		return 0, "", wrapUpstream(err)
	}
	return n, last, queueOrders(ctx, tx, upID, UpstreamUnregister, gone, now)
}

// registerMembers registers those of the next limit members of organisation
// orgID that are not registered and that an organisation covers, and queues their
// registrations; a registered one's pending unregistration turns back into a
// registration (a membersBatch).
func registerMembers(ctx context.Context, tx *sql.Tx, upID, orgID int64, after string, now int64, limit int) (int, string, error) {
	n, last, err := memberWindow(ctx, tx, orgID, after, limit)
	if err != nil || n == 0 {
		return 0, "", err
	}
	// A registered member whose unregistration is still pending keeps its
	// registration: the order turns back, as syncUpstream turns it for one record.
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET event_type = ?5 WHERE id IN (
		SELECT d.id FROM members m CROSS JOIN deliveries d INDEXED BY deliveries_one_pending
			ON d.subscription_id = ?4 AND d.subject = m.orcid AND d.state = 0
		WHERE m.org_id = ?1 AND m.orcid > ?2 AND m.orcid <= ?3 AND d.event_type = ?6
			AND EXISTS (SELECT 1 FROM upstream_registrations r WHERE r.orcid = m.orcid) AND `+covered+`)`,
		orgID, after, last, upID, UpstreamRegister, UpstreamUnregister); err != nil {
		return 0, "", wrapUpstream(err)
	}
	added, err := queryColumn[string](ctx, tx, `INSERT INTO upstream_registrations(orcid, updated_at)
		SELECT m.orcid, ?4 FROM members m WHERE m.org_id = ?1 AND m.orcid > ?2 AND m.orcid <= ?3
			AND NOT EXISTS (SELECT 1 FROM upstream_registrations r WHERE r.orcid = m.orcid) AND `+covered+`
		RETURNING orcid`, orgID, after, last, now)
	if err != nil {
		return 0, "", wrapUpstream(err)
	}
	return n, last, queueOrders(ctx, tx, upID, UpstreamRegister, added, now)
}

// queueOrders queues a work order of kind for each record of orcids (as
// qUpstreamOrder).
func queueOrders(ctx context.Context, tx *sql.Tx, upID int64, kind string, orcids []string, now int64) error {
	if len(orcids) == 0 {
		return nil
	}
	b, _ := json.Marshal(orcids)
	_, err := tx.ExecContext(ctx, `INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
		SELECT ?1, value, ?3, 0, ?4, ?4, ?4 FROM json_each(?2) WHERE true`+upstreamOrderMerge,
		upID, string(b), kind, now)
	return wrapUpstream(err)
}

func wrapUpstream(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("upstream registration: %w", err)
}

// QueueUpstreamLeft queues the unregistrations and registrations that changes of
// organisations' coverage left (upstreamBatch), the unregistrations first, for up
// to limit members. It returns how many members it looked at; the retention pass
// calls it until it finds fewer than limit. Each organisation's members go, in iD order, from where
// the last batch stopped, so the whole pass reads each member once; it reads
// nothing when no change left any.
func (s *Store) QueueUpstreamLeft(ctx context.Context, limit int) (int, error) {
	total := 0
	for _, w := range []struct {
		left  *orgsLeft
		batch membersBatch
	}{{&s.unregister, unregisterMembers}, {&s.register, registerMembers}} {
		for total < limit {
			org, o, ok := w.left.next()
			if !ok {
				break
			}
			var n int
			var last string
			err := s.inTx(ctx, func(tx *sql.Tx) error {
				n, last = 0, ""
				upID, err := upstreamSub(ctx, tx)
				if err != nil || upID == 0 {
					return err
				}
				n, last, err = w.batch(ctx, tx, upID, org, o.after, ms(s.Now()), limit-total)
				return err
			})
			if err != nil {
				return total, err
			}
			w.left.done(org, o, last, n < limit-total)
			total += n
		}
	}
	return total, nil
}

// finishUpstreamLeft queues, in a process other than the daemon (the command line),
// what a committed change of an organisation's coverage left for the retention
// pass, a batch a transaction, before the change's call returns: that note is kept
// in memory (orgsLeft), and would go with the process. In the daemon it does
// nothing. Its error says the change itself was saved.
func (s *Store) finishUpstreamLeft(ctx context.Context) error {
	if s.daemon {
		return nil
	}
	for {
		n, err := s.QueueUpstreamLeft(ctx, upstreamBatch)
		if err != nil {
			return fmt.Errorf("saved; but queuing the upstream registrations of the members past the first %d failed (the daemon queues them when it next starts): %w", upstreamBatch, err)
		}
		if n < upstreamBatch {
			return nil
		}
	}
}

// ConfigureUpstream turns upstream registration on for the ORCID API at apiURL (or
// off, when apiURL is empty), makes the relay key when there is none, and queues the
// registrations and unregistrations the current members and settings call for. The
// daemon calls it at start with its [upstream] configuration. It returns how many
// work orders it queued.
func (s *Store) ConfigureUpstream(ctx context.Context, apiURL string) (int, error) {
	if apiURL != "" {
		if err := s.killBacklogFirst(ctx, "format = ?", FormatUpstream); err != nil {
			return 0, fmt.Errorf("configure upstream: %w", err)
		}
	}
	now := ms(s.Now())
	queued := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, err := s.setUpstreamSub(ctx, tx, apiURL, now)
		if err != nil || id == 0 {
			return err
		}
		if err := s.createRelaySecret(ctx, tx); err != nil {
			return err
		}
		queued, err = s.queueUpstreamOrders(ctx, tx, id, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("configure upstream: %w", err)
	}
	return queued, nil
}

// setUpstreamSub points the upstream subscription at apiURL: it creates it, moves it
// to another API (where everything must be registered anew), or, with apiURL empty,
// turns it off. It returns the subscription's id, 0 when upstream registration is off.
func (s *Store) setUpstreamSub(ctx context.Context, tx *sql.Tx, apiURL string, now int64) (int64, error) {
	var id int64
	var target string
	var active bool
	var as sql.NullString
	err := tx.QueryRowContext(ctx, qUpstreamSubAny).Scan(&id, &target, &active, &as)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if apiURL == "" {
			return 0, nil
		}
		id, err := createUpstreamSub(ctx, tx, apiURL, now)
		if err != nil {
			return 0, err
		}
		_, err = tx.ExecContext(ctx, "UPDATE subscriptions SET registered_as = nullif(?, '') WHERE id = ?", s.UpstreamAs, id)
		return id, err
	case err != nil:
		return 0, err
	case apiURL == "":
		if active {
			if err := keepUnregistrations(ctx, tx, id, now); err != nil {
				return 0, err
			}
			_, err := s.deactivate(ctx, tx, id, reasonUpstreamUnconfigured, now)
			return 0, err
		}
		return 0, nil
	}
	// Registered at another API, or as another client or with callbacks at another
	// address (UpstreamAs): everything is registered anew. The same API written
	// another way is not another.
	if apiAddress(target) != apiAddress(apiURL) || (s.UpstreamAs != "" && as.Valid && as.String != s.UpstreamAs) {
		if err := forgetUpstreamRegistrations(ctx, tx, id); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET target = ?, registered_as = coalesce(nullif(?, ''), registered_as), updated_at = ? WHERE id = ?",
		apiURL, s.UpstreamAs, now, id); err != nil {
		return 0, err
	}
	s.targetCache.forget(id)
	if !active {
		// What its deactivation left waiting dies first, as for any webhook.
		return id, s.reactivate(ctx, tx, id, now)
	}
	return id, nil
}

// apiAddress is an upstream API's URL as the address its calls go to: without the
// trailing slash the dispatcher leaves out, its scheme and host in lower case, and
// without its scheme's own port. upstream.api_url written another way at a start
// (https://api.orcid.org/, https://API.orcid.org:443) is the same API: read as
// another, every record was registered there again, and the unregistrations
// waiting were dropped, their records left registered for good.
func apiAddress(raw string) string {
	raw = strings.TrimSuffix(raw, "/")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" || strings.Contains(host, ":") {
		host = net.JoinHostPort(host, port)
		host = strings.TrimSuffix(host, ":") // an IPv6 address without a port keeps its brackets
	}
	u.Host = host
	return u.String()
}

// keepUnregistrations notes, as registrations not yet confirmed, the records whose
// work orders are waiting or in flight and that have no registration (an
// unregistration still to be done), before upstream registration is turned off:
// the deactivation turns those orders dead, and a record no organisation covers
// is in no list the next ConfigureUpstream goes through, so it would stay
// registered upstream for good. So noted, it is unregistered then, or registered
// again if an organisation covers it by then.
func keepUnregistrations(ctx context.Context, tx *sql.Tx, subID, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO upstream_registrations(orcid, updated_at)
		SELECT DISTINCT subject, ?2 FROM deliveries WHERE subscription_id = ?1 AND state IN (0, 1)
		ON CONFLICT(orcid) DO NOTHING`, subID, now)
	return err
}

// createUpstreamSub inserts the upstream subscription. Its types are the work orders
// only (so its event mask is 0), and the intake's fan-out never matches it.
func createUpstreamSub(ctx context.Context, tx *sql.Tx, apiURL string, now int64) (int64, error) {
	r, err := tx.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, format, target, types, description, created_at, updated_at)
		VALUES (`+newSubscriptionID+`, ?, 'upstream', ?, ',REGISTER,UNREGISTER,', 'hookd''s registrations at the upstream ORCID API', ?, ?)`,
		newUID(), apiURL, now, now)
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

// forgetUpstreamRegistrations drops what was registered at the previous upstream and
// its work orders not in flight.
func forgetUpstreamRegistrations(ctx context.Context, tx *sql.Tx, subID int64) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM upstream_registrations"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM deliveries WHERE subscription_id = ? AND state != 1", subID)
	return err
}

// createRelaySecret makes the secret of the relay keys, once.
func (s *Store) createRelaySecret(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO server_secrets(name, value) VALUES ('relay', ?) ON CONFLICT(name) DO NOTHING",
		s.box.Seal(secret.Random(32)))
	return err
}

// queueUpstreamOrders queues again the registrations not yet confirmed, and the
// registrations and unregistrations every member and registered record calls for; it
// returns how many work orders are now pending that were not before.
func (s *Store) queueUpstreamOrders(ctx context.Context, tx *sql.Tx, subID, now int64) (int, error) {
	pending := func() (int, error) {
		n := 0
		err := tx.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE subscription_id = ? AND state = 0", subID).Scan(&n)
		return n, err
	}
	before, err := pending()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, qRequeueRegistrations, subID, now); err != nil {
		return 0, err
	}
	all, err := queryColumn[string](ctx, tx, "SELECT DISTINCT orcid FROM members UNION SELECT orcid FROM upstream_registrations")
	if err != nil {
		return 0, err
	}
	if err := s.syncUpstream(ctx, tx, now, all...); err != nil {
		return 0, err
	}
	after, err := pending()
	return after - before, err
}

// MarkUpstream records the result of a registration attempt at the upstream: done
// (registered, or unregistered) or the error. The dispatcher calls it after each
// attempt; the outbox keeps the attempt itself.
func (s *Store) MarkUpstream(ctx context.Context, id, action string, ok bool, errMsg string) error {
	now := ms(s.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if action != UpstreamRegister {
			return nil // an unregistered record has no row
		}
		_, err := tx.ExecContext(ctx, "UPDATE upstream_registrations SET registered = ?, last_error = ?, updated_at = ? WHERE orcid = ?",
			ok, errMsg, now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark upstream registration: %w", err)
	}
	return nil
}

// reasonUpstreamUnconfigured is the reason of hookd's upstream registration
// deactivated because [upstream] no longer names an API.
const reasonUpstreamUnconfigured = "upstream registration is not configured"

// UpstreamWanted reports whether the record id is to be registered upstream now:
// whether an organisation with its webhook or e-mail on covers it. A registration
// work order's call does what this says at the time of the call, PUT or DELETE,
// whatever the order was queued as: an order that waited (for a retry, a replay)
// while the record's membership changed is carried out as it stands now.
func (s *Store) UpstreamWanted(ctx context.Context, id string) (bool, error) {
	var wanted bool
	if err := s.read.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM upstream_registrations WHERE orcid = ?)", id).Scan(&wanted); err != nil {
		return false, fmt.Errorf("upstream registration of %s: %w", id, Classify(err))
	}
	return wanted, nil
}

// UpstreamUnregistrationsWaiting counts the unregistrations queued upstream and
// not yet sent (work orders of the upstream subscription waiting, to unregister a
// record no organisation covers any more), which only a running daemon sends.
func (s *Store) UpstreamUnregistrationsWaiting(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM deliveries
		WHERE state = 0 AND event_type = ? AND subscription_id IN (SELECT id FROM subscriptions WHERE format = 'upstream')`,
		UpstreamUnregister).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("upstream unregistrations: %w", Classify(err))
	}
	return n, nil
}

// UpstreamCounts says how many records are registered upstream, pending and failing.
type UpstreamCounts struct {
	On         bool
	Registered int
	Pending    int
	Failed     int
}

// qUpstreamStatus is UpstreamStatus's query.
const qUpstreamStatus = `SELECT ` + upstreamOn + `,
	(SELECT count(*) FROM upstream_registrations WHERE registered = 1),
	(SELECT count(*) FROM upstream_registrations WHERE registered = 0 AND last_error = '') +
		CASE WHEN ` + upstreamOn + ` THEN (SELECT count(DISTINCT m.orcid) FROM members m JOIN subscriptions s ON s.org_id = m.org_id
			AND s.active = 1 AND s.format IN ('hub', 'email')
			WHERE NOT EXISTS (SELECT 1 FROM upstream_registrations r WHERE r.orcid = m.orcid)) ELSE 0 END,
	(SELECT count(*) FROM upstream_registrations WHERE registered = 0 AND last_error != '')`

// UpstreamStatus counts the upstream registrations. Pending counts, as the members'
// lists say, the records an organisation covers that a change left for the
// retention pass's next batch too (upstreamBatch), not yet queued.
func (s *Store) UpstreamStatus(ctx context.Context) (UpstreamCounts, error) {
	var c UpstreamCounts
	err := s.read.QueryRowContext(ctx, qUpstreamStatus).Scan(&c.On, &c.Registered, &c.Pending, &c.Failed)
	if err != nil {
		return c, fmt.Errorf("upstream status: %w", err)
	}
	return c, nil
}

// qUpstreamStatusOf is UpstreamStatusOf's query (org_id): the states of the
// organisation's members as its members' page says them (qMembersPage).
const qUpstreamStatusOf = `SELECT ` + upstreamOn + `,
	coalesce(sum(st = 'registered'), 0), coalesce(sum(st = 'pending'), 0), coalesce(sum(st = 'failed'), 0)
	FROM (SELECT CASE WHEN NOT ` + upstreamOn + ` OR NOT ` + covered + ` THEN ''
	     WHEN u.registered = 1 THEN 'registered'
	     WHEN coalesce(u.last_error, '') != '' THEN 'failed'
	     ELSE 'pending' END AS st
	FROM members m LEFT JOIN upstream_registrations u ON u.orcid = m.orcid
	WHERE m.org_id = ?)`

// UpstreamStatusOf counts the upstream registrations of organisation orgID's
// members, as its members' list says each (a record registered for another
// organisation counts too): the figures of "hookd org status ORG", which are
// that organisation's, not every record's.
func (s *Store) UpstreamStatusOf(ctx context.Context, orgID int64) (UpstreamCounts, error) {
	var c UpstreamCounts
	err := s.read.QueryRowContext(ctx, qUpstreamStatusOf, orgID).Scan(&c.On, &c.Registered, &c.Pending, &c.Failed)
	if err != nil {
		return c, fmt.Errorf("upstream status: %w", err)
	}
	return c, nil
}

// RelayKey is the key in the relay callback of a record, an HMAC of its iD with a
// secret only this hookd knows, so nobody else can make it fan an update out. It is
// ErrNotFound before ConfigureUpstream has made the secret.
func (s *Store) RelayKey(ctx context.Context, id string) (string, error) {
	var sealed []byte
	err := s.read.QueryRowContext(ctx, "SELECT value FROM server_secrets WHERE name = 'relay'").Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("relay key: %w", notFound("no relay secret yet: upstream registration was never configured"))
	}
	if err != nil {
		return "", fmt.Errorf("relay key: %w", err)
	}
	key, err := s.box.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("relay key: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("relay\x00" + id))
	return hex.EncodeToString(m.Sum(nil)[:20]), nil
}

// CheckRelayKey reports whether key is the relay key of the record id.
func (s *Store) CheckRelayKey(ctx context.Context, id, key string) (bool, error) {
	want, err := s.RelayKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(want), []byte(key)), nil
}
