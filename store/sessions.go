package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"hookd/secret"
)

// SessionSpec is what the console keeps about a session it opens: the SHA-256 of
// the random id its cookie carries (never the id itself), the session's CSRF token,
// the address it was opened from, and its limits.
type SessionSpec struct {
	IDHash  []byte
	CSRF    string
	Address string
	// MaxAge is the absolute lifetime; Idle ends a session not used for that long.
	MaxAge time.Duration
	Idle   time.Duration
}

// ConsoleSession is an open console session with the principal behind it, read
// afresh on every request so a change of the client (scopes, binding, secret) applies
// at once.
type ConsoleSession struct {
	// Client is the signed-in client; its ID is empty for the operator's admin token.
	Client Client
	// OrgID and OrgName are the organisation the client is staff of (0 and "" when none).
	OrgID   int64
	OrgName string
	// Credential is the fingerprint the session was opened with; for the admin token
	// the console compares it with the token it holds now.
	Credential []byte
	CSRF       string
	Address    string
	CreatedAt  time.Time
	SeenAt     time.Time
	ExpiresAt  time.Time
}

// SignInClient checks a client's id and secret as AuthenticateClient does (a
// secret a person chose is argon2id) and, when they are right, opens a console
// session for it. The session ends when the client's
// secret changes (its fingerprint is the client's secret hash) or the client is
// removed. A wrong id or secret is ErrBadCredentials and changes nothing.
func (s *Store) SignInClient(ctx context.Context, id, clientSecret string, spec SessionSpec) (Client, error) {
	// The secret is checked as for a token (argon2id for a secret a person chose),
	// outside the write transaction: argon2id takes tens of milliseconds. The
	// session is bound to the hash that checked; when the stored hash has changed
	// meanwhile (another request made an old hash again, or the secret was
	// rotated), the secret is checked again against the new one.
	var c Client
	var err error
	for try := 0; ; try++ {
		var hash []byte
		if c, hash, err = s.authenticate(ctx, id, clientSecret); err != nil {
			return Client{}, err
		}
		now := s.Now()
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			var current []byte
			err := tx.QueryRowContext(ctx, "SELECT secret_hash FROM clients WHERE id = ? AND removing_at IS NULL", id).Scan(&current)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrBadCredentials
			}
			if err != nil {
				return err
			}
			if !bytes.Equal(current, hash) {
				return errHashMoved
			}
			return openSession(ctx, tx, c.ID, hash, spec, now)
		})
		if !errors.Is(err, errHashMoved) {
			break
		}
		if try == 2 {
			err = ErrBadCredentials // the secret keeps changing under the sign-in
			break
		}
	}
	if errors.Is(err, ErrBadCredentials) {
		return Client{}, err
	}
	if err != nil {
		return Client{}, fmt.Errorf("sign in: %w", err)
	}
	return c, nil
}

// errHashMoved is SignInClient's signal that the client's stored secret hash
// changed between its check and the session.
var errHashMoved = errors.New("the client's secret hash changed")

// SignInAdmin opens a console session for the operator's admin token, which the
// console has checked; fingerprint identifies the token (a hash of it), so the
// session ends when the token is changed.
func (s *Store) SignInAdmin(ctx context.Context, fingerprint []byte, spec SessionSpec) error {
	now := s.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return openSession(ctx, tx, "", fingerprint, spec, now)
	})
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	return nil
}

// openSession inserts a session and, while at it, deletes the sessions that have
// expired or whose client's secret has changed since they were opened.
func openSession(ctx context.Context, tx *sql.Tx, clientID string, credential []byte, spec SessionSpec, now time.Time) error {
	if len(spec.IDHash) == 0 || spec.CSRF == "" || spec.MaxAge <= 0 || spec.Idle <= 0 {
		return invalid("", "session: id hash, CSRF token, max age and idle limit are required")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ?1 OR seen_at <= ?2
		OR (client_id IS NOT NULL AND credential != (SELECT secret_hash FROM clients c WHERE c.id = console_sessions.client_id))`,
		ms(now), ms(now.Add(-spec.Idle))); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions(id_hash, client_id, credential, csrf, address, created_at, seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, spec.IDHash, nullString(clientID), credential, spec.CSRF, spec.Address,
		ms(now), ms(now), ms(now.Add(spec.MaxAge)))
	return err
}

// Session returns the open session whose id hashes to idHash: ErrNotFound when there
// is none, it has passed its absolute end, it was idle for idle or longer, or its
// client's secret has changed since it was opened.
func (s *Store) Session(ctx context.Context, idHash []byte, idle time.Duration) (ConsoleSession, error) {
	var cs ConsoleSession
	var clientID, name, scopes, email sql.NullString
	var clientCreated sql.NullInt64
	var orgID sql.NullInt64
	var orgName sql.NullString
	var created, seen, expires int64
	var current []byte
	err := s.read.QueryRowContext(ctx, `SELECT s.client_id, c.name, c.scopes, c.email, c.created_at, c.secret_hash,
		co.org_id, o.name, s.credential, s.csrf, s.address, s.created_at, s.seen_at, s.expires_at
		FROM console_sessions s
		LEFT JOIN clients c ON c.id = s.client_id AND c.removing_at IS NULL
		LEFT JOIN client_orgs co ON co.client_id = s.client_id
		LEFT JOIN organisations o ON o.id = co.org_id
		WHERE s.id_hash = ?`, idHash).Scan(&clientID, &name, &scopes, &email, &clientCreated, &current,
		&orgID, &orgName, &cs.Credential, &cs.CSRF, &cs.Address, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return ConsoleSession{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("session: %w", err)
	}
	now := ms(s.Now())
	switch {
	case now >= expires, now >= seen+idle.Milliseconds():
		return ConsoleSession{}, fmt.Errorf("session expired: %w", ErrNotFound)
	case clientID.Valid && !secret.Equal(current, cs.Credential):
		return ConsoleSession{}, fmt.Errorf("session of a rotated secret: %w", ErrNotFound)
	}
	if clientID.Valid {
		cs.Client = Client{ID: clientID.String, Name: name.String, Scopes: strings.Fields(scopes.String), Email: email.String,
			CreatedAt: fromMS(clientCreated.Int64)}
	}
	cs.OrgID, cs.OrgName = orgID.Int64, orgName.String
	cs.CreatedAt, cs.SeenAt, cs.ExpiresAt = fromMS(created), fromMS(seen), fromMS(expires)
	return cs, nil
}

// TouchSession notes that a session was used now, which moves its idle end.
func (s *Store) TouchSession(ctx context.Context, idHash []byte) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE console_sessions SET seen_at = ? WHERE id_hash = ?", ms(s.Now()), idHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// EndSession deletes a session (sign-out); an unknown one is not an error.
func (s *Store) EndSession(ctx context.Context, idHash []byte) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM console_sessions WHERE id_hash = ?", idHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
