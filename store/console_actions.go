package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// TestRecord is the iD a test event is about when the webhook is not for one
// record: ORCID's own test record (Josiah Carberry).
const TestRecord = "0000-0002-1825-0097"

// SendTestEvent queues an UPDATED delivery of the record orcid (the webhook's own
// record when it has one, else orcid, else TestRecord) to one active subscription
// only (any but hookd's own upstream registration; whoever may do so is the
// caller's to decide), due now, and returns the delivery's id. Like any event it merges into a
// pending delivery of the same record, which then becomes due now.
func (s *Store) SendTestEvent(ctx context.Context, uid, orcid string) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		sub, err := operated(ctx, tx, uid)
		if err != nil {
			return err
		}
		if !sub.Active {
			return &Error{Code: Conflict, Value: uid, Message: fmt.Sprintf("webhook %s is deactivated: activate it to send a test event", uid)}
		}
		subject := sub.Orcid
		if subject == "" {
			subject = orcid
		}
		if subject == "" {
			subject = TestRecord
		}
		now := ms(s.Now())
		return tx.QueryRowContext(ctx, `INSERT INTO deliveries(subscription_id, subject, event_type, state, due_at, first_event_at, last_event_at)
			VALUES (?1, ?2, 'UPDATED', 0, ?3, ?3, ?3)
			ON CONFLICT(subscription_id, subject) WHERE state = 0 DO UPDATE SET
				last_event_at = max(last_event_at, excluded.last_event_at), event_count = event_count + 1, due_at = min(due_at, excluded.due_at),
				`+revised+`
			RETURNING id`, sub.ID, subject, now).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("send test event: %w", err)
	}
	return id, nil
}

// ClientRow is a client as the console lists it, with the organisation it is
// staff of (OrgID 0 when none).
type ClientRow struct {
	Client
	OrgID   int64
	OrgName string
}

// ConsoleClients lists every client, oldest first, with its organisation; those
// being removed are left out.
func (s *Store) ConsoleClients(ctx context.Context) ([]ClientRow, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT c.id, c.name, c.scopes, c.email, c.created_at, coalesce(co.org_id, 0), coalesce(o.name, '')
		FROM clients c LEFT JOIN client_orgs co ON co.client_id = c.id LEFT JOIN organisations o ON o.id = co.org_id
		WHERE c.removing_at IS NULL ORDER BY c.created_at, c.id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []ClientRow
	for rows.Next() {
		var r ClientRow
		c, err := scanClient(scanTail{row: rows, tail: []any{&r.OrgID, &r.OrgName}})
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		r.Client = c
		out = append(out, r)
	}
	return out, rows.Err()
}

// CreateOrgClient creates a client that is staff of an organisation: signed in to
// the console, it sees that organisation (and what it owns itself). The client is
// made by CreateClient and then bound; should the binding fail, the client is
// removed again, and a client left unbound by a crash in between sees less, never
// more.
func (s *Store) CreateOrgClient(ctx context.Context, orgID int64, nc NewClient) (Credentials, error) {
	if slices.Contains(nc.Scopes, ScopeAdmin) {
		return Credentials{}, invalid("scope", "an organisation's staff cannot have /admin: a client with /admin signs in to the console as the operator, who sees every organisation")
	}
	if err := orgExists(ctx, s.read, orgID); err != nil {
		return Credentials{}, fmt.Errorf("create client: %w", err)
	}
	creds, err := s.CreateClient(ctx, nc)
	if err != nil {
		return Credentials{}, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Never to an organisation whose removal began meanwhile: its staff
		// clients were marked with it, and this one would not be.
		r, err := tx.ExecContext(ctx, `INSERT INTO client_orgs(client_id, org_id) SELECT ?1, ?2
			WHERE EXISTS (SELECT 1 FROM organisations WHERE id = ?2 AND removing_at IS NULL)`, creds.ID, orgID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return orgMissing(ctx, tx, orgID)
		}
		return nil
	})
	if err != nil {
		if rerr := s.RemoveClient(ctx, creds.ID); rerr != nil {
			return Credentials{}, fmt.Errorf("bind client %s to organisation %d: %w (and removing it: %v)", creds.ID, orgID, err, rerr)
		}
		return Credentials{}, fmt.Errorf("bind client to organisation %d: %w", orgID, err)
	}
	return creds, nil
}
