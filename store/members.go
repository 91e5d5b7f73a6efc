package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Member is an ORCID iD affiliated with an organisation.
type Member struct {
	OrgID     int64
	Orcid     string
	Name      string
	Email     string
	EPPN      string
	CreatedAt time.Time
	// Upstream is the state of hookd's webhook registration at the upstream ORCID API
	// for this record, one for the record whichever organisation lists it: "" when
	// upstream registration is off or no organisation with its webhook or e-mail on
	// has the record as a member, else "registered", "pending" or "failed: <last error>".
	Upstream string
}

// MemberInfo is the optional data of a member; nil fields are left as they are when
// the member exists (and empty when it is new).
type MemberInfo struct {
	Name  *string
	Email *string
	EPPN  *string
}

// CheckMember checks an iD and the member fields that are set, as a new member's.
func CheckMember(id string, info MemberInfo) error {
	if err := CheckMemberForm(id, info); err != nil {
		return err
	}
	for _, f := range memberShown(info) {
		if err := CheckShown(f.field, *f.v); err != nil {
			return err
		}
	}
	return nil
}

// CheckMemberForm is CheckMember but for the characters that show as nothing
// (CheckShown) in a name or an eppn, as PutMember and ImportMembers check before
// their transaction, and a file reader to reject rows one by one: within it, a
// member's name or eppn an older hookd stored with such a character is taken
// again unchanged (checkMemberShown).
func CheckMemberForm(id string, info MemberInfo) error {
	if err := CheckOrcid("orcid", id); err != nil {
		return err
	}
	if info.Name != nil {
		if err := checkOneLine("name", *info.Name, maxNameLen); err != nil {
			return err
		}
	}
	if info.Email != nil && *info.Email != "" {
		if err := CheckEmail("email", *info.Email); err != nil {
			return err
		}
	}
	if info.EPPN != nil {
		if err := checkOneLine("eppn", *info.EPPN, maxEPPNLen); err != nil {
			return err
		}
	}
	return nil
}

type shownField struct {
	field string
	v     *string
}

// memberShown lists the fields of info that CheckShown checks.
func memberShown(info MemberInfo) []shownField {
	var out []shownField
	for _, f := range []shownField{{"name", info.Name}, {"eppn", info.EPPN}} {
		if f.v != nil {
			out = append(out, f)
		}
	}
	return out
}

// checkMemberShown is CheckShown for the name and eppn info gives, in the
// transaction that writes them: a value the member has already, stored by an
// older hookd with a character that shows as nothing, is taken (a Hub sync, a
// members file imported again, a form sent again send it back unchanged); a new
// member's, or a changed one, is refused. The member is read only for a value
// with such a character.
func checkMemberShown(ctx context.Context, c *txStmts, orgID int64, id string, info MemberInfo) error {
	var stored *struct{ name, eppn string }
	for _, f := range memberShown(info) {
		if !hasHidden(*f.v) {
			continue
		}
		if stored == nil {
			stored = &struct{ name, eppn string }{}
			err := c.tx.QueryRowContext(ctx, "SELECT name, eppn FROM members WHERE org_id = ? AND orcid = ?", orgID, id).Scan(&stored.name, &stored.eppn)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		was := stored.name
		if f.field == "eppn" {
			was = stored.eppn
		}
		if err := checkShownKept(f.field, *f.v, was); err != nil {
			return err
		}
	}
	return nil
}

// memberCreated fans a CREATED event for a new member out to its organisation's
// subscriptions only (webhook, and e-mail when ?6 is 'email'): the member's other
// organisations were told when it joined them. Like intake, it merges into a
// pending delivery.
const memberCreated = `
INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
SELECT s.id, ?1, 'CREATED', 0, ?3, ?4, ?4 FROM subscriptions s
WHERE s.org_id = ?2 AND s.active = 1 AND s.format IN ('hub', ?6)
  AND (s.event_mask IS NULL OR (s.event_mask & ?5) <> 0)
ON CONFLICT(subscription_id, subject) WHERE state = 0 DO UPDATE SET
	last_event_at = max(last_event_at, excluded.last_event_at),
	event_count = event_count + 1,
	event_type = 'CREATED',
	` + revised

// putMemberChanged adds or updates one member in tx; a new member gets a CREATED
// delivery for each of its organisation's active settings, its e-mail only when
// email is set. It reports whether it was new, whether a member that was there
// already changed (false when info gives no field, or each as the member has
// it), and how many deliveries it queued.
func (s *Store) putMemberChanged(ctx context.Context, c *txStmts, orgID int64, id string, info MemberInfo, now, due int64, email bool) (created, changed bool, n int, err error) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	r, err := c.exec(ctx, `INSERT INTO members(org_id, orcid, name, email, eppn, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(org_id, orcid) DO NOTHING`, orgID, id, str(info.Name), str(info.Email), str(info.EPPN), now)
	if err != nil {
		return false, false, 0, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		sets, args, differ := []string{}, []any{}, []string{}
		for _, f := range []struct {
			col string
			v   *string
		}{{"name", info.Name}, {"email", info.Email}, {"eppn", info.EPPN}} {
			if f.v != nil {
				sets = append(sets, f.col+" = ?")
				differ = append(differ, f.col+" IS NOT ?")
				args = append(args, *f.v)
			}
		}
		if len(sets) == 0 {
			return false, false, 0, nil
		}
		// Written only when a field differs, so that the caller knows whether
		// anything changed.
		args = append(args, orgID, id)
		args = append(args, args[:len(differ)]...)
		r, err := c.exec(ctx, "UPDATE members SET "+strings.Join(sets, ", ")+" WHERE org_id = ? AND orcid = ? AND ("+strings.Join(differ, " OR ")+")", args...)
		if err != nil {
			return false, false, 0, err
		}
		n, err := r.RowsAffected()
		return false, n > 0, 0, err
	}
	// A member again: what its removal told not to be sent again, out on a call
	// since, is sent again as any other should its call fail (RemoveMembers).
	if _, err := c.tx.StmtContext(ctx, s.claim.clearNotSent).ExecContext(ctx, id, orgID); err != nil {
		return false, false, 0, err
	}
	formats := FormatHub // matches the webhook alone
	if email {
		formats = FormatEmail
	}
	r, err = c.exec(ctx, memberCreated, id, orgID, due, now, eventBit(EventCreated), formats)
	if err != nil {
		return false, false, 0, err
	}
	queued, _ := r.RowsAffected()
	return true, true, int(queued), nil
}

// PutMember adds a member to an organisation, or updates the fields of info that are
// set when it is already one. A new member's record is announced to the organisation
// as CREATED (due window from now, like any event) and, with upstream registration on,
// registered upstream. It reports whether the member is new.
func (s *Store) PutMember(ctx context.Context, orgID int64, id string, info MemberInfo, window time.Duration) (created bool, err error) {
	created, _, err = s.PutMemberChanged(ctx, orgID, id, info, window)
	return created, err
}

// PutMemberChanged is PutMember, and says whether the call changed anything:
// changed is false for a member that was there already when info gives no field,
// or each as the member has it (a form sent twice, a member added before), which
// the call leaves as it was.
func (s *Store) PutMemberChanged(ctx context.Context, orgID int64, id string, info MemberInfo, window time.Duration) (created, changed bool, err error) {
	if err := CheckMemberForm(id, info); err != nil {
		return false, false, err
	}
	now := s.Now()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := orgExists(ctx, tx, orgID); err != nil {
			return err
		}
		c := newTxStmts(tx)
		if err := checkMemberShown(ctx, c, orgID, id, info); err != nil {
			return err
		}
		created, changed, _, err = s.putMemberChanged(ctx, c, orgID, id, info, ms(now), ms(now.Add(window)), true)
		if err != nil || !created {
			return err
		}
		return s.syncUpstream(ctx, tx, ms(now), id)
	})
	if err != nil {
		return false, false, fmt.Errorf("put member: %w", err)
	}
	return created, changed, nil
}

// notSentNoMember is the last error of a delivery to an organisation that was
// waiting for its retry when the record left the organisation.
const notSentNoMember = "not sent: the record is no longer a member of the organisation"

// RemoveMember removes a member from an organisation, with the deliveries about it
// to that organisation still waiting (never tried: deleted; tried: dead, kept as
// history); a record no organisation covers any more is unregistered upstream.
func (s *Store) RemoveMember(ctx context.Context, orgID int64, id string) error {
	return s.RemoveMembers(ctx, orgID, id)
}

// RemoveMembers is RemoveMember for several records, in one transaction: when one
// of them is not a member, none is removed.
func (s *Store) RemoveMembers(ctx context.Context, orgID int64, ids ...string) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids))) // a record named twice is removed once
	now := ms(s.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := orgExists(ctx, tx, orgID); err != nil {
			return err
		}
		for _, id := range ids {
			r, err := tx.ExecContext(ctx, "DELETE FROM members WHERE org_id = ? AND orcid = ?", orgID, id)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return notFound(fmt.Sprintf("member %s of organisation %d not found", id, orgID))
			}
			// What was waiting for the organisation about the record is not sent: never
			// tried, it goes; tried already (failed, waiting for its retry), it is kept
			// as history, dead, as a deactivation keeps what it stops.
			orgRows := `state = 0 AND subject = ?1 AND subscription_id IN (SELECT id FROM subscriptions WHERE org_id = ?2)`
			if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE `+orgRows+` AND attempts = 0`, id, orgID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 3, done_at = ?3, last_error = ?4 WHERE `+orgRows,
				id, orgID, now, notSentNoMember); err != nil {
				return err
			}
			// Claimed now, it is not sent again: should its call fail, or should it be
			// handed back, it ends dead, saying so (backToPending). One still waiting
			// for its host is handed back before its call: its subscription counts as
			// changed (Changed), so the dispatcher does not call it.
			subs, err := queryColumn[int64](ctx, tx, `UPDATE deliveries SET not_sent = ?3
				WHERE state = 1 AND subject = ?1 AND subscription_id IN (SELECT id FROM subscriptions WHERE org_id = ?2)
				RETURNING subscription_id`, id, orgID, notSentNoMember)
			if err != nil {
				return err
			}
			for _, sub := range slices.Compact(slices.Sorted(slices.Values(subs))) {
				s.targetCache.forget(sub)
			}
			if err := s.syncUpstream(ctx, tx, now, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	return nil
}

// Members lists an organisation's members by iD, with their upstream state.
func (s *Store) Members(ctx context.Context, orgID int64) ([]Member, error) {
	return s.MembersPage(ctx, orgID, "", -1)
}

// qMembersPage reads a page of an organisation's members (org_id, after, limit)
// with the state of their upstream registrations.
const qMembersPage = `SELECT m.org_id, m.orcid, m.name, m.email, m.eppn, m.created_at,
	CASE WHEN NOT ` + upstreamOn + ` OR NOT ` + covered + ` THEN ''
	     WHEN u.registered = 1 THEN 'registered'
	     WHEN coalesce(u.last_error, '') != '' THEN 'failed: ' || u.last_error
	     ELSE 'pending' END
	FROM members m LEFT JOIN upstream_registrations u ON u.orcid = m.orcid
	WHERE m.org_id = ? AND m.orcid > ? ORDER BY m.orcid LIMIT ?`

// MembersPage lists an organisation's members by iD after the iD after (for
// paging; "" from the first), at most limit (-1 for all), with their upstream
// registration state.
func (s *Store) MembersPage(ctx context.Context, orgID int64, after string, limit int) ([]Member, error) {
	if err := orgExists(ctx, s.read, orgID); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, qMembersPage, orgID, after, limit)
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

// MemberRow is one member of an import: its iD and the fields given for it.
type MemberRow struct {
	Orcid string
	Info  MemberInfo
	Line  int // the line of the file it was read from (0: none), for its refusal's words
}

// RejectedRow is a row of an import that was left out, and why.
type RejectedRow struct {
	Line   int // the row's Line
	Orcid  string
	Reason string
}

// ImportResult says what a member import did.
type ImportResult struct {
	Added   int
	Updated int // members that were there already, a field of theirs changed
	// Unchanged are the members that were there already with the fields their
	// rows give (a file imported again), which the import left as they were.
	Unchanged  int
	Deliveries int // CREATED deliveries queued for the new members (to the webhook only)
	// Rejected are the rows left out, in their order: a name or eppn with a
	// character that shows as nothing (CheckShown) other than the member's own.
	Rejected []RejectedRow
}

// ImportMembers adds or updates rows (already read and checked, e.g. by membercsv)
// as members of the organisation, in one transaction: a new member is announced
// to the organisation's webhook as CREATED (due window from now) and an existing
// one gets the fields its row gives. The organisation's e-mail is not told of the
// new members one message each (an import of thousands would flood a person's
// inbox); it hears of their updates as of any member's. A row that does not pass
// CheckMemberForm refuses the whole import; a row whose name or eppn has a
// character that shows as nothing, other than as the member has it already (an
// older hookd stored it so), is left out and listed in Rejected.
func (s *Store) ImportMembers(ctx context.Context, orgID int64, rows []MemberRow, window time.Duration) (ImportResult, error) {
	return s.importMembers(ctx, orgID, rows, window, false)
}

// ImportMembersStrict is ImportMembers that imports nothing when it leaves a row
// out: the result then lists the rows it would have left out, and adds and
// updates none.
func (s *Store) ImportMembersStrict(ctx context.Context, orgID int64, rows []MemberRow, window time.Duration) (ImportResult, error) {
	return s.importMembers(ctx, orgID, rows, window, true)
}

// errImportRejected rolls a strict import back.
var errImportRejected = errors.New("rows rejected")

func (s *Store) importMembers(ctx context.Context, orgID int64, rows []MemberRow, window time.Duration, strict bool) (ImportResult, error) {
	for _, r := range rows {
		if err := CheckMemberForm(r.Orcid, r.Info); err != nil {
			return ImportResult{}, fmt.Errorf("import members: %s: %w", r.Orcid, err)
		}
	}
	now := s.Now()
	var res ImportResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = ImportResult{}
		if err := orgExists(ctx, tx, orgID); err != nil {
			return err
		}
		var added []string
		c := newTxStmts(tx)
		for _, r := range rows {
			if err := checkMemberShown(ctx, c, orgID, r.Orcid, r.Info); err != nil {
				if se := (*Error)(nil); errors.As(err, &se) {
					res.Rejected = append(res.Rejected, RejectedRow{Line: r.Line, Orcid: r.Orcid, Reason: se.Error()})
					continue
				}
				return fmt.Errorf("%s: %w", r.Orcid, err)
			}
			created, changed, n, err := s.putMemberChanged(ctx, c, orgID, r.Orcid, r.Info, ms(now), ms(now.Add(window)), false)
			if err != nil {
				return fmt.Errorf("%s: %w", r.Orcid, err)
			}
			switch {
			case created:
				res.Added++
				res.Deliveries += n
				added = append(added, r.Orcid)
			case changed:
				res.Updated++
			default:
				res.Unchanged++
			}
		}
		if strict && len(res.Rejected) > 0 {
			return errImportRejected
		}
		return s.syncUpstream(ctx, tx, ms(now), added...)
	})
	if errors.Is(err, errImportRejected) {
		return ImportResult{Rejected: res.Rejected}, nil
	}
	if err != nil {
		return ImportResult{}, fmt.Errorf("import members: %w", err)
	}
	return res, nil
}
