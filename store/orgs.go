package store

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"hookd/orcid"
)

// Organisation is an institution whose affiliated researchers (members) hookd
// watches, as the ORCID Hub does: its webhook and e-mail settings cover every member.
type Organisation struct {
	ID               int64
	Name             string
	TechContactEmail string
	Members          int // how many members it has (filled by the listing methods)
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Member is an ORCID iD affiliated with an organisation.
type Member struct {
	OrgID     int64
	Orcid     string
	Name      string
	Email     string
	EPPN      string
	CreatedAt time.Time
	// Upstream is the state of hookd's webhook registration at the upstream ORCID API
	// for this record: "" when upstream registration is off or the organisation has no
	// webhook or e-mail enabled, else "registered", "pending" or "failed: <last error>".
	Upstream string
}

// MemberInfo is the optional data of a member; nil fields are left as they are when
// the member exists (and empty when it is new).
type MemberInfo struct {
	Name  *string
	Email *string
	EPPN  *string
}

// Limits of organisation and member fields.
const (
	maxNameLen = 200
	maxEPPNLen = 256
)

var errNameTooLong = invalid("name", fmt.Sprintf("longer than %d characters", maxNameLen))

func checkOrg(name, email string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return invalid("name", "is required")
	}
	if len(name) > maxNameLen {
		return errNameTooLong
	}
	if email == "" {
		return invalid("tech-contact-email", "is required")
	}
	return CheckEmail("tech-contact-email", email)
}

const orgColumns = `o.id, o.name, o.tech_contact_email, (SELECT count(*) FROM members m WHERE m.org_id = o.id), o.created_at, o.updated_at`

func scanOrg(row interface{ Scan(...any) error }) (Organisation, error) {
	var o Organisation
	var created, updated int64
	if err := row.Scan(&o.ID, &o.Name, &o.TechContactEmail, &o.Members, &created, &updated); err != nil {
		return Organisation{}, err
	}
	o.CreatedAt, o.UpdatedAt = fromMS(created), fromMS(updated)
	return o, nil
}

type queryRower interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func getOrg(ctx context.Context, q queryRower, id int64) (Organisation, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organisations o WHERE o.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Organisation{}, notFound(fmt.Sprintf("organisation %d not found", id))
	}
	return o, err
}

func nameTaken(name string) error {
	return &Error{Code: Conflict, Field: "name", Message: fmt.Sprintf("an organisation named %q already exists", name)}
}

// CreateOrganisation adds an organisation; a name already taken is ErrConflict.
func (s *Store) CreateOrganisation(ctx context.Context, name, techContact string) (Organisation, error) {
	name = strings.TrimSpace(name)
	if err := checkOrg(name, techContact); err != nil {
		return Organisation{}, err
	}
	now := ms(s.Now())
	var o Organisation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, "INSERT INTO organisations(name, tech_contact_email, created_at, updated_at) VALUES (?, ?, ?, ?)",
			name, techContact, now, now)
		if isUnique(err) { // the name is the one unique column
			return nameTaken(name)
		}
		if err != nil {
			return err
		}
		id, _ := r.LastInsertId()
		o, err = getOrg(ctx, tx, id)
		return err
	})
	if err != nil {
		return Organisation{}, fmt.Errorf("create organisation: %w", err)
	}
	return o, nil
}

// Organisation returns one organisation.
func (s *Store) Organisation(ctx context.Context, id int64) (Organisation, error) {
	o, err := getOrg(ctx, s.read, id)
	if err != nil {
		return Organisation{}, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// OrganisationByName returns the organisation with this name, for the command line.
func (s *Store) OrganisationByName(ctx context.Context, name string) (Organisation, error) {
	o, err := scanOrg(s.read.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organisations o WHERE o.name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return Organisation{}, notFound(fmt.Sprintf("organisation %q not found", name))
	}
	if err != nil {
		return Organisation{}, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// Organisations lists every organisation by id.
func (s *Store) Organisations(ctx context.Context) ([]Organisation, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+orgColumns+" FROM organisations o ORDER BY o.id")
	if err != nil {
		return nil, fmt.Errorf("list organisations: %w", err)
	}
	defer rows.Close()
	var out []Organisation
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, fmt.Errorf("list organisations: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// OrganisationPatch holds the fields an update changes; nil fields stay as they are.
type OrganisationPatch struct {
	Name             *string
	TechContactEmail *string
}

// UpdateOrganisation changes an organisation's name or technical contact.
func (s *Store) UpdateOrganisation(ctx context.Context, id int64, p OrganisationPatch) (Organisation, error) {
	var o Organisation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getOrg(ctx, tx, id)
		if err != nil {
			return err
		}
		if p.Name != nil {
			cur.Name = strings.TrimSpace(*p.Name)
		}
		if p.TechContactEmail != nil {
			cur.TechContactEmail = *p.TechContactEmail
		}
		if err := checkOrg(cur.Name, cur.TechContactEmail); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE organisations SET name = ?, tech_contact_email = ?, updated_at = ? WHERE id = ?",
			cur.Name, cur.TechContactEmail, ms(s.Now()), id)
		if isUnique(err) {
			return nameTaken(cur.Name)
		}
		if err != nil {
			return err
		}
		o, err = getOrg(ctx, tx, id)
		return err
	})
	if err != nil {
		return Organisation{}, fmt.Errorf("update organisation: %w", err)
	}
	return o, nil
}

// DeleteOrganisation removes an organisation with its members, settings and their
// deliveries; records no other organisation covers are unregistered upstream.
func (s *Store) DeleteOrganisation(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := getOrg(ctx, tx, id); err != nil {
			return err
		}
		orcids, err := memberOrcids(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.forgetOrgTargets(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM organisations WHERE id = ?", id); err != nil {
			return err
		}
		return s.syncUpstream(ctx, tx, orcids...)
	})
	if err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	return nil
}

// forgetOrgTargets drops an organisation's subscriptions from the target cache.
func (s *Store) forgetOrgTargets(ctx context.Context, tx *sql.Tx, orgID int64) error {
	rows, err := tx.QueryContext(ctx, "SELECT id FROM subscriptions WHERE org_id = ?", orgID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		s.targetCache.forget(id)
	}
	return rows.Err()
}

func memberOrcids(ctx context.Context, tx *sql.Tx, orgID int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT orcid FROM members WHERE org_id = ?", orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// checkMember validates an iD and the member fields that are set.
func checkMember(id string, info MemberInfo) error {
	if err := CheckOrcid("orcid", id); err != nil {
		return err
	}
	if info.Name != nil && len(*info.Name) > maxNameLen {
		return errNameTooLong
	}
	if info.Email != nil && *info.Email != "" {
		if err := CheckEmail("email", *info.Email); err != nil {
			return err
		}
	}
	if info.EPPN != nil && len(*info.EPPN) > maxEPPNLen {
		return invalid("eppn", fmt.Sprintf("longer than %d characters", maxEPPNLen))
	}
	return nil
}

// memberCreated fans a CREATED event for a new member out to its organisation's
// subscriptions only (webhook and e-mail): the member's other organisations were
// told when it joined them. Like intake, it merges into a pending delivery.
const memberCreated = `
INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
SELECT s.id, ?1, 'CREATED', 0, ?3, ?4, ?4 FROM subscriptions s
WHERE s.org_id = ?2 AND s.active = 1 AND s.format IN ('hub', 'email')
  AND (s.types IS NULL OR instr(s.types, ',CREATED,') > 0)
ON CONFLICT(subscription_id, subject) WHERE state = 0 DO UPDATE SET
	last_event_at = excluded.last_event_at,
	event_count = event_count + 1,
	event_type = 'CREATED'`

// putMember adds or updates one member in tx; a new member gets a CREATED delivery
// for each of its organisation's active settings. It reports whether it was new and
// how many deliveries it queued.
func (s *Store) putMember(ctx context.Context, tx *sql.Tx, orgID int64, id string, info MemberInfo, now, due int64) (bool, int, error) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	r, err := tx.ExecContext(ctx, `INSERT INTO members(org_id, orcid, name, email, eppn, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(org_id, orcid) DO NOTHING`, orgID, id, str(info.Name), str(info.Email), str(info.EPPN), now)
	if err != nil {
		return false, 0, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		sets, args := []string{}, []any{}
		for col, p := range map[string]*string{"name": info.Name, "email": info.Email, "eppn": info.EPPN} {
			if p != nil {
				sets = append(sets, col+" = ?")
				args = append(args, *p)
			}
		}
		if len(sets) > 0 {
			args = append(args, orgID, id)
			if _, err := tx.ExecContext(ctx, "UPDATE members SET "+strings.Join(sets, ", ")+" WHERE org_id = ? AND orcid = ?", args...); err != nil {
				return false, 0, err
			}
		}
		return false, 0, nil
	}
	r, err = tx.ExecContext(ctx, memberCreated, id, orgID, due, now)
	if err != nil {
		return false, 0, err
	}
	n, _ := r.RowsAffected()
	return true, int(n), nil
}

// PutMember adds a member to an organisation, or updates the fields of info that are
// set when it is already one. A new member's record is announced to the organisation
// as CREATED (due window from now, like any event) and, with upstream registration on,
// registered upstream. It reports whether the member is new.
func (s *Store) PutMember(ctx context.Context, orgID int64, id string, info MemberInfo, window time.Duration) (created bool, err error) {
	if err := checkMember(id, info); err != nil {
		return false, err
	}
	now := s.Now()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := getOrg(ctx, tx, orgID); err != nil {
			return err
		}
		created, _, err = s.putMember(ctx, tx, orgID, id, info, ms(now), ms(now.Add(window)))
		if err != nil || !created {
			return err
		}
		return s.syncUpstream(ctx, tx, id)
	})
	if err != nil {
		return false, fmt.Errorf("put member: %w", err)
	}
	return created, nil
}

// RemoveMember removes a member from an organisation, with the pending deliveries
// about it to that organisation; a record no organisation covers any more is
// unregistered upstream.
func (s *Store) RemoveMember(ctx context.Context, orgID int64, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := getOrg(ctx, tx, orgID); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, "DELETE FROM members WHERE org_id = ? AND orcid = ?", orgID, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return notFound(fmt.Sprintf("member %s of organisation %d not found", id, orgID))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE state = 0 AND subject = ?
			AND subscription_id IN (SELECT id FROM subscriptions WHERE org_id = ?)`, id, orgID); err != nil {
			return err
		}
		return s.syncUpstream(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	return nil
}

// Members lists an organisation's members by iD, with their upstream state.
func (s *Store) Members(ctx context.Context, orgID int64) ([]Member, error) {
	if _, err := getOrg(ctx, s.read, orgID); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT m.org_id, m.orcid, m.name, m.email, m.eppn, m.created_at,
		CASE WHEN NOT `+upstreamOn+` OR NOT `+covered+` THEN ''
		     WHEN u.registered = 1 THEN 'registered'
		     WHEN coalesce(u.last_error, '') != '' THEN 'failed: ' || u.last_error
		     ELSE 'pending' END
		FROM members m LEFT JOIN upstream_registrations u ON u.orcid = m.orcid
		WHERE m.org_id = ? ORDER BY m.orcid`, orgID)
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

// Rejected is a row of a member import that was not taken, and why.
type Rejected struct {
	Line   int    // line of the CSV file, 1 for the header
	Orcid  string // as written in the file
	Reason string
}

// ImportResult says what a member import did.
type ImportResult struct {
	Added      int
	Updated    int
	Deliveries int // CREATED deliveries queued for the new members
	Rejected   []Rejected
}

// ImportOptions changes how ImportMembers treats bad rows.
type ImportOptions struct {
	// Strict imports nothing when any row is rejected (the result still lists them).
	Strict bool
	// Window is the coalescing window of the CREATED deliveries of new members.
	Window time.Duration
}

// maxImportRows bounds one import, so a wrong file cannot hold the writer for long.
const maxImportRows = 200000

// ImportMembers reads a CSV file whose header names the columns (orcid, and
// optionally name, email, eppn, in any order and case) and adds or updates its rows as
// members of the organisation, in one transaction. Rows with a bad iD, a bad e-mail,
// a missing column or an iD already given earlier in the file are rejected and listed;
// the others are imported (none with opts.Strict). A file that cannot be read as
// such a CSV changes nothing and is an error.
func (s *Store) ImportMembers(ctx context.Context, orgID int64, r io.Reader, opts ImportOptions) (ImportResult, error) {
	type row struct {
		line int
		id   string
		info MemberInfo
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return ImportResult{}, invalid("", "the file is empty; it needs a header line naming the columns (orcid,name,email,eppn)")
	}
	if err != nil {
		return ImportResult{}, invalid("", err.Error())
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case "orcid", "orcid id", "orcid_id", "orcidid", "orcid-id":
			h = "orcid"
		case "name", "email", "eppn":
		case "e-mail", "mail":
			h = "email"
		default:
			return ImportResult{}, invalid("", fmt.Sprintf("line 1: unknown column %q (known: orcid, name, email, eppn)", header[i]))
		}
		if _, dup := col[h]; dup {
			return ImportResult{}, invalid("", fmt.Sprintf("line 1: column %q appears twice", h))
		}
		col[h] = i
	}
	if _, ok := col["orcid"]; !ok {
		return ImportResult{}, invalid("", fmt.Sprintf("line 1: the header has no orcid column (got %q)", strings.Join(header, ",")))
	}
	var res ImportResult
	var rows []row
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ImportResult{}, invalid("", err.Error())
		}
		line, _ := cr.FieldPos(0)
		if len(rows)+len(res.Rejected) >= maxImportRows {
			return ImportResult{}, invalid("", fmt.Sprintf("more than %d rows; split the file", maxImportRows))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		raw := ""
		if i := col["orcid"]; i < len(rec) {
			raw = strings.TrimSpace(rec[i])
		}
		reject := func(reason string) {
			res.Rejected = append(res.Rejected, Rejected{Line: line, Orcid: raw, Reason: reason})
		}
		if len(rec) != len(header) {
			reject(fmt.Sprintf("has %d columns, the header %d", len(rec), len(header)))
			continue
		}
		id := orcid.Normalize(raw)
		if id == "" {
			reject("orcid is empty")
			continue
		}
		var info MemberInfo
		for name, p := range map[string]**string{"name": &info.Name, "email": &info.Email, "eppn": &info.EPPN} {
			if i, ok := col[name]; ok {
				v := strings.TrimSpace(rec[i])
				*p = &v
			}
		}
		if err := checkMember(id, info); err != nil {
			reject(err.Error())
			continue
		}
		if first, dup := seen[id]; dup {
			reject(fmt.Sprintf("duplicate: %s is already on line %d", id, first))
			continue
		}
		seen[id] = line
		rows = append(rows, row{line: line, id: id, info: info})
	}
	if opts.Strict && len(res.Rejected) > 0 {
		return res, nil
	}
	now := s.Now()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res.Added, res.Updated, res.Deliveries = 0, 0, 0
		if _, err := getOrg(ctx, tx, orgID); err != nil {
			return err
		}
		var added []string
		for _, r := range rows {
			created, n, err := s.putMember(ctx, tx, orgID, r.id, r.info, ms(now), ms(now.Add(opts.Window)))
			if err != nil {
				return fmt.Errorf("line %d: %w", r.line, err)
			}
			if created {
				res.Added++
				res.Deliveries += n
				added = append(added, r.id)
			} else {
				res.Updated++
			}
		}
		return s.syncUpstream(ctx, tx, added...)
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import members: %w", err)
	}
	return res, nil
}

// HubSettings are an organisation's notification settings, with the ORCID Hub's keys.
type HubSettings struct {
	// Enabled turns the webhook (a POST of the Hub's JSON to URL) on.
	Enabled     bool
	URL         string
	AppendOrcid bool
	// APIKey is sent in an apikey header when set. SetHubSettings keeps the stored
	// one when it is nil; HubSettings never returns it (APIKeySet says whether one is set).
	APIKey    *string
	APIKeySet bool
	// EmailEnabled turns e-mail notifications on: to NotificationEmail, or to the
	// technical contact when it is empty.
	EmailEnabled      bool
	NotificationEmail string
	// WebhookReason and EmailReason say why hookd turned a setting off (e.g.
	// continuous failures); a PUT that enables it again clears them.
	WebhookReason string
	EmailReason   string
}

// orgSub finds an organisation's subscription of a format (hub or email).
func orgSub(ctx context.Context, q queryRower, orgID int64, format string) (Subscription, bool, error) {
	sub, err := scanSubscription(q.QueryRowContext(ctx, "SELECT "+subscriptionColumns+
		" FROM subscriptions WHERE org_id = ? AND format = ? ORDER BY id LIMIT 1", orgID, format))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, false, nil
	}
	return sub, err == nil, err
}

func hubSettings(ctx context.Context, q queryRower, orgID int64) (HubSettings, error) {
	var h HubSettings
	if _, err := getOrg(ctx, q, orgID); err != nil {
		return h, err
	}
	hub, ok, err := orgSub(ctx, q, orgID, FormatHub)
	if err != nil {
		return h, err
	}
	if ok {
		h.Enabled, h.URL, h.AppendOrcid, h.WebhookReason = hub.Active, hub.Target, hub.AppendOrcid, hub.Reason
		if err := q.QueryRowContext(ctx, "SELECT apikey IS NOT NULL AND length(apikey) > 0 FROM subscriptions WHERE id = ?", hub.ID).Scan(&h.APIKeySet); err != nil {
			return h, err
		}
	}
	email, ok, err := orgSub(ctx, q, orgID, FormatEmail)
	if err != nil {
		return h, err
	}
	if ok {
		h.EmailEnabled, h.EmailReason = email.Active, email.Reason
		if email.Target != techContactTarget {
			h.NotificationEmail = email.Target
		}
	}
	return h, nil
}

// techContactTarget is the target of an e-mail subscription that writes to the
// organisation's technical contact (whatever it is when the e-mail goes out).
const techContactTarget = "tech-contact"

// HubSettings returns an organisation's settings (without the apikey itself).
func (s *Store) HubSettings(ctx context.Context, orgID int64) (HubSettings, error) {
	h, err := hubSettings(ctx, s.read, orgID)
	if err != nil {
		return HubSettings{}, fmt.Errorf("get organisation settings: %w", err)
	}
	return h, nil
}

// SetHubSettings replaces an organisation's settings. The webhook is kept as a
// subscription of format hub (active when Enabled) and e-mail as one of format email,
// both with the organisation's id, so every present and future member's events reach
// them. Validation of the URL is the caller's. It reports whether a setting that was
// off (or absent) is now on.
func (s *Store) SetHubSettings(ctx context.Context, orgID int64, h HubSettings) (HubSettings, bool, error) {
	if h.Enabled && h.URL == "" {
		return HubSettings{}, false, invalid("url", "required when enabled is true")
	}
	if h.NotificationEmail != "" {
		if err := CheckEmail("notification-email", h.NotificationEmail); err != nil {
			return HubSettings{}, false, err
		}
	}
	var out HubSettings
	var newlyEnabled bool
	now := ms(s.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		newlyEnabled = false
		if _, err := getOrg(ctx, tx, orgID); err != nil {
			return err
		}
		put := func(format, target string, active bool, keep bool, set func(id int64) error) error {
			cur, ok, err := orgSub(ctx, tx, orgID, format)
			if err != nil {
				return err
			}
			if !keep {
				if ok {
					s.targetCache.forget(cur.ID)
					_, err := tx.ExecContext(ctx, "DELETE FROM subscriptions WHERE id = ?", cur.ID)
					return err
				}
				return nil
			}
			if !ok {
				r, err := tx.ExecContext(ctx, `INSERT INTO subscriptions(uid, org_id, format, target, active, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, newUID(), orgID, format, target, active, now, now)
				if err != nil {
					return err
				}
				id, _ := r.LastInsertId()
				newlyEnabled = newlyEnabled || active
				return set(id)
			}
			s.targetCache.forget(cur.ID)
			if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET target = ?, updated_at = ? WHERE id = ?", target, now, cur.ID); err != nil {
				return err
			}
			switch {
			case active && !cur.Active:
				newlyEnabled = true
				if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET active = 1, reason = '', failing_since = NULL WHERE id = ?", cur.ID); err != nil {
					return err
				}
			case !active && cur.Active:
				if err := s.deactivate(ctx, tx, cur.ID, "", now); err != nil {
					return err
				}
			}
			return set(cur.ID)
		}
		err := put(FormatHub, h.URL, h.Enabled, h.URL != "", func(id int64) error {
			if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET append_orcid = ? WHERE id = ?", h.AppendOrcid, id); err != nil {
				return err
			}
			if h.APIKey != nil {
				var sealed any
				if *h.APIKey != "" {
					sealed = s.box.SealString(*h.APIKey)
				}
				_, err := tx.ExecContext(ctx, "UPDATE subscriptions SET apikey = ? WHERE id = ?", sealed, id)
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		target := h.NotificationEmail
		if target == "" {
			target = techContactTarget
		}
		err = put(FormatEmail, target, h.EmailEnabled, h.EmailEnabled || h.NotificationEmail != "", func(int64) error { return nil })
		if err != nil {
			return err
		}
		orcids, err := memberOrcids(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if err := s.syncUpstream(ctx, tx, orcids...); err != nil {
			return err
		}
		out, err = hubSettings(ctx, tx, orgID)
		return err
	})
	if err != nil {
		return HubSettings{}, false, fmt.Errorf("set organisation settings: %w", err)
	}
	return out, newlyEnabled, nil
}

// DeleteHubSettings turns an organisation's webhook and e-mail off and forgets them,
// with their deliveries.
func (s *Store) DeleteHubSettings(ctx context.Context, orgID int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := getOrg(ctx, tx, orgID); err != nil {
			return err
		}
		if err := s.forgetOrgTargets(ctx, tx, orgID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM subscriptions WHERE org_id = ? AND format IN ('hub', 'email')", orgID); err != nil {
			return err
		}
		orcids, err := memberOrcids(ctx, tx, orgID)
		if err != nil {
			return err
		}
		return s.syncUpstream(ctx, tx, orcids...)
	})
	if err != nil {
		return fmt.Errorf("delete organisation settings: %w", err)
	}
	return nil
}

// HubDelivery is what a Hub-format or e-mail delivery needs beyond its target: the
// organisation and, when the record is still a member, the member.
type HubDelivery struct {
	OrgID            int64
	OrgName          string
	TechContactEmail string
	// To is where an e-mail goes: the notification address, or the technical contact.
	To string
	// Cc is the technical contact when To is a separate notification address.
	Cc     string
	Member *Member // nil when the record is no longer a member
}

// HubDeliveryInfo looks up the organisation of a hub or email subscription and its
// member orcid, for building the payload or the e-mail.
func (s *Store) HubDeliveryInfo(ctx context.Context, subID int64, id string) (HubDelivery, error) {
	var h HubDelivery
	var target string
	err := s.read.QueryRowContext(ctx, `SELECT o.id, o.name, o.tech_contact_email, s.target FROM subscriptions s
		JOIN organisations o ON o.id = s.org_id WHERE s.id = ?`, subID).Scan(&h.OrgID, &h.OrgName, &h.TechContactEmail, &target)
	if errors.Is(err, sql.ErrNoRows) {
		return h, notFound(fmt.Sprintf("subscription %d of an organisation not found", subID))
	}
	if err != nil {
		return h, fmt.Errorf("hub delivery: %w", err)
	}
	h.To = h.TechContactEmail
	if target != techContactTarget && strings.Contains(target, "@") {
		h.To = target
		if !strings.EqualFold(target, h.TechContactEmail) {
			h.Cc = h.TechContactEmail
		}
	}
	var m Member
	var created int64
	err = s.read.QueryRowContext(ctx, "SELECT org_id, orcid, name, email, eppn, created_at FROM members WHERE org_id = ? AND orcid = ?",
		h.OrgID, id).Scan(&m.OrgID, &m.Orcid, &m.Name, &m.Email, &m.EPPN, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return h, fmt.Errorf("hub delivery: %w", err)
	default:
		m.CreatedAt = fromMS(created)
		h.Member = &m
	}
	return h, nil
}
