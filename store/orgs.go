package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Limits of organisation and member fields.
const (
	maxNameLen = 200
	maxEPPNLen = 256
)

func checkOrg(name, email string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return invalid("name", "is required")
	}
	if err := CheckText("name", name, maxNameLen); err != nil {
		return err
	}
	if email == "" {
		return invalid("tech-contact-email", "is required")
	}
	return CheckEmail("tech-contact-email", email)
}

// checkTechContact refuses a technical contact's address hookd could not send
// e-mail to (CheckMailbox), once checkOrg took it as an address.
func checkTechContact(email string) error {
	if err := MailLocalASCII(email); err != nil {
		return invalid("tech-contact-email", err.Error())
	}
	if err := MailDomainName(email); err != nil {
		return invalid("tech-contact-email", err.Error())
	}
	return nil
}

// checkOrgName refuses a new name that is a number (the command line and the
// console take a number for an organisation's id), or that is more than one line
// (it goes into the e-mails hookd sends, where a line break would add lines of
// the writer's choosing).
func checkOrgName(name string) error {
	if err := CheckLine("name", strings.TrimSpace(name), maxNameLen); err != nil {
		return err
	}
	if _, err := strconv.ParseInt(strings.TrimSpace(name), 10, 64); err == nil {
		return invalid("name", fmt.Sprintf("must not be a number (it would be taken for an organisation's id), got %q", name))
	}
	return nil
}

const orgColumns = `o.id, o.name, o.tech_contact_email, (SELECT count(*) FROM members m WHERE m.org_id = o.id), o.created_at, o.updated_at`

// scanOrg reads a row of orgColumns.
func scanOrg(row interface{ Scan(...any) error }) (Organisation, error) {
	var o Organisation
	var created, updated int64
	if err := row.Scan(&o.ID, &o.Name, &o.TechContactEmail, &o.Members, &created, &updated); err != nil {
		return Organisation{}, err
	}
	o.CreatedAt, o.UpdatedAt = fromMS(created), fromMS(updated)
	return o, nil
}

// queryRower is a transaction or the read pool.
type queryRower interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// getOrg reads one organisation; a missing one is NotFound.
func getOrg(ctx context.Context, q queryRower, id int64) (Organisation, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organisations o WHERE o.id = ? AND o.removing_at IS NULL", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Organisation{}, orgMissing(ctx, q, id)
	}
	return o, err
}

// orgMissing is the error of a lookup of organisation id that found none not
// being removed: one being removed says so.
func orgMissing(ctx context.Context, q queryRower, id int64) error {
	var removing bool
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM organisations WHERE id = ? AND removing_at IS NOT NULL)", id).
		Scan(&removing); err == nil && removing {
		return beingRemoved(fmt.Sprintf("organisation %d", id))
	}
	return notFound(fmt.Sprintf("organisation %d not found", id))
}

// qOrgExists: an organisation being removed is not found.
const qOrgExists = "SELECT EXISTS (SELECT 1 FROM organisations WHERE id = ? AND removing_at IS NULL)"

// orgExists is getOrg's NotFound for an organisation that does not exist, without
// reading it: getOrg counts its members, each of them (a hundred thousand: 10 ms,
// in a write transaction too, or for each page of a list of them).
func orgExists(ctx context.Context, q queryRower, id int64) error {
	var ok bool
	if err := q.QueryRowContext(ctx, qOrgExists, id).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return orgMissing(ctx, q, id)
	}
	return nil
}

func nameTaken(name string) error {
	return &Error{Code: Conflict, Field: "name", Message: fmt.Sprintf("an organisation named %q already exists", name)}
}

// nameHeld is the error of a new name, or a rename, to a name another
// organisation holds: one being removed, which the lists leave out, says so.
func nameHeld(ctx context.Context, tx *sql.Tx, name string) error {
	if removingNamed(ctx, tx, name) {
		return &Error{Code: Conflict, Field: "name", Message: fmt.Sprintf(
			"an organisation named %q is being removed: its name is free once its removal finishes (hookd org remove finishes it, as does hookd's next start or retention pass)", name)}
	}
	return nameTaken(name)
}

// removingNamed reports whether the organisation named name is being removed
// (false too when that cannot be read: the caller's error stands).
func removingNamed(ctx context.Context, q queryRower, name string) bool {
	var removing bool
	err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM organisations WHERE name = ? AND removing_at IS NOT NULL)", name).Scan(&removing)
	return err == nil && removing
}

// newOrganisationID is the id of a new organisation: one above the highest ever
// given (id_marks, migration 35), so no id is used twice, whatever was deleted.
const newOrganisationID = "(SELECT value + 1 FROM id_marks WHERE name = 'organisations')"

// createOrganisation inserts a checked organisation and returns its id.
func createOrganisation(ctx context.Context, tx *sql.Tx, name, techContact string, now int64) (int64, error) {
	r, err := tx.ExecContext(ctx, "INSERT INTO organisations(id, name, tech_contact_email, created_at, updated_at) VALUES ("+
		newOrganisationID+", ?, ?, ?, ?)", name, techContact, now, now)
	if isUnique(err) { // the name is the one unique column
		return 0, nameHeld(ctx, tx, name)
	}
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

// CreateOrganisation adds an organisation; a name already taken is a Conflict.
func (s *Store) CreateOrganisation(ctx context.Context, name, techContact string) (Organisation, error) {
	name = strings.TrimSpace(name)
	if err := cmp.Or(checkOrg(name, techContact), checkTechContact(techContact), checkOrgName(name)); err != nil {
		return Organisation{}, err
	}
	now := ms(s.Now())
	var o Organisation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, err := createOrganisation(ctx, tx, name, techContact, now)
		if err != nil {
			return err
		}
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
	o, err := scanOrg(s.read.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organisations o WHERE o.name = ? AND o.removing_at IS NULL", name))
	if errors.Is(err, sql.ErrNoRows) {
		if removingNamed(ctx, s.read, name) {
			return Organisation{}, beingRemoved(fmt.Sprintf("organisation %q", name))
		}
		return Organisation{}, notFound(fmt.Sprintf("organisation %q not found", name))
	}
	if err != nil {
		return Organisation{}, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// Organisations lists every organisation by id, but those being removed.
func (s *Store) Organisations(ctx context.Context) ([]Organisation, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+orgColumns+" FROM organisations o WHERE o.removing_at IS NULL ORDER BY o.id")
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

// UpdateOrganisation changes an organisation's name or technical contact. A patch
// with neither leaves it as it is, updated_at included.
func (s *Store) UpdateOrganisation(ctx context.Context, id int64, p OrganisationPatch) (Organisation, error) {
	now := ms(s.Now())
	var o Organisation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getOrg(ctx, tx, id)
		if err != nil {
			return err
		}
		if p.Name == nil && p.TechContactEmail == nil {
			o = cur // a patch that gives no field changes nothing, updated_at included
			return nil
		}
		renamed, contact := false, cur.TechContactEmail
		if p.Name != nil {
			renamed = strings.TrimSpace(*p.Name) != cur.Name
			cur.Name = strings.TrimSpace(*p.Name)
		}
		if p.TechContactEmail != nil {
			cur.TechContactEmail = *p.TechContactEmail
		}
		if err := checkOrg(cur.Name, cur.TechContactEmail); err != nil {
			return err
		}
		if cur.TechContactEmail != contact { // one an older hookd took stays, given again as it is or not at all
			if err := checkTechContact(cur.TechContactEmail); err != nil {
				return err
			}
		}
		if renamed { // a name an older hookd took may be given again unchanged
			if err := checkOrgName(cur.Name); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "UPDATE organisations SET name = ?, tech_contact_email = ?, updated_at = ? WHERE id = ?",
			cur.Name, cur.TechContactEmail, now, id)
		if isUnique(err) {
			return nameHeld(ctx, tx, cur.Name)
		}
		if err != nil {
			return err
		}
		if cur.TechContactEmail != contact {
			// The e-mail that writes to the technical contact goes to another
			// address: its run of failures (and of its address's refusals) starts
			// afresh, as for a new notification address (putOrgSub), or the new
			// address's first refusal would switch it off for the old one's.
			subs, err := queryColumn[int64](ctx, tx, `UPDATE subscriptions SET failing_since = NULL
				WHERE org_id = ? AND format = ? AND target = ? AND failing_since IS NOT NULL RETURNING id`, id, FormatEmail, techContactTarget)
			if err != nil {
				return err
			}
			for _, sub := range subs {
				s.targetCache.forget(sub)
			}
		}
		o, err = getOrg(ctx, tx, id)
		return err
	})
	if err != nil {
		return Organisation{}, fmt.Errorf("update organisation: %w", err)
	}
	return o, nil
}
