package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"hookd/secret"
)

// Token is an OAuth bearer token. Access and Refresh hold the plain values only
// when the token was just issued; the store keeps their hashes.
type Token struct {
	ClientID  string
	Scopes    []string
	Access    string
	Refresh   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// HasScope reports whether the token carries scope.
func (t Token) HasScope(scope string) bool { return hasScope(t.Scopes, scope) }

// DefaultTokenTTL is the lifetime of an access token unless configured otherwise:
// ORCID's, whose token responses say "expires_in": 631138518 (about 20 years).
const DefaultTokenTTL = 631138518 * time.Second

// scopeNotGranted is the ErrScope error for a scope the client may not have.
func scopeNotGranted(scope string) error {
	return &Error{Code: Invalid, Field: "scope", Value: scope, Message: fmt.Sprintf("%s is not granted to this client: %s", scope, ScopeGrant(scope))}
}

// scopeNotRefreshed is the ErrScope error for a scope the client has but the
// refresh token was not issued with.
func scopeNotRefreshed(scope string) error {
	return &Error{Code: Invalid, Field: "scope", Value: scope, Message: fmt.Sprintf(
		"the refresh token was not issued with %s: ask for a new token with it (grant_type client_credentials, scope %s)", scope, scope)}
}

// ScopeGrant says how a client comes to have scope, for a caller refused for
// the lack of it: the operator grants it, when making a client, since nothing
// changes the scopes of a client made.
func ScopeGrant(scope string) string {
	return "hookd's operator grants scopes when making a client (hookd client add -scopes " + scope +
		", or the console's Clients page), and a client's scopes do not change once it is made"
}

// IssueToken makes an access token (with a refresh token) for a client, for the
// scopes asked, each of which the client must have been granted.
func (s *Store) IssueToken(ctx context.Context, c Client, scopes []string, ttl time.Duration) (Token, error) {
	if len(scopes) == 0 {
		return Token{}, invalid("scope", "no scope requested")
	}
	for _, sc := range scopes {
		if !c.HasScope(sc) {
			return Token{}, scopeNotGranted(sc)
		}
	}
	t := newToken(c.ID, scopes, s.Now(), ttl)
	full, err := s.tokensFull(ctx, c.ID)
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	if full {
		defer s.tokens.revoke()()
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens(client_id, access_hash, refresh_hash, scope, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, c.ID, secret.Hash(t.Access), secret.Hash(t.Refresh),
			strings.Join(scopes, " "), ms(t.CreatedAt), ms(t.ExpiresAt))
		if err != nil || !full {
			return err
		}
		return trimTokens(ctx, tx, c.ID, t.CreatedAt)
	})
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	return t, nil
}

// A client holds at most maxClientTokens tokens (live, expired or revoked: each
// is a row until retention purges it): one that asks for a token for every call,
// or for nothing but tokens, would otherwise add a row each time for as long as
// tokens live (about 20 years). Past it, the client's expired and revoked tokens
// go first, then its oldest live ones, down to keptClientTokens; a live one that
// went is refused as unknown from then on.
const (
	maxClientTokens  = 1000
	keptClientTokens = 900
)

// qTokensFull and qTrimTokens walk a client's tokens by tokens_client; the
// trim keeps the newest ?2, its live ones (not revoked, expiring after ?3)
// before the others: a client's revoked and expired rows never cost it a token
// it still uses.
const (
	qTokensFull = `SELECT EXISTS (SELECT 1 FROM tokens WHERE client_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`
	qTrimTokens = `DELETE FROM tokens WHERE client_id = ?1 AND id NOT IN (SELECT id FROM tokens
		WHERE client_id = ?1 ORDER BY revoked_at IS NULL AND expires_at > ?3 DESC, id DESC LIMIT ?2)`
)

// tokensFull reports whether client clientID holds maxClientTokens tokens, so
// that the one it is given next removes its oldest (trimTokens). Two tokens
// given at once may both find it not full, and the client hold one or two more
// until the next.
func (s *Store) tokensFull(ctx context.Context, clientID string) (bool, error) {
	var full bool
	err := s.read.QueryRowContext(ctx, qTokensFull, clientID, maxClientTokens-1).Scan(&full)
	return full, err
}

// trimTokens deletes client clientID's tokens but keptClientTokens, live ones
// first, newest first (qTrimTokens), in a transaction run inside the token
// cache's revoke.
func trimTokens(ctx context.Context, tx *sql.Tx, clientID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, qTrimTokens, clientID, keptClientTokens, ms(now))
	return err
}

func newToken(clientID string, scopes []string, now time.Time, ttl time.Duration) Token {
	now = now.UTC().Truncate(time.Millisecond)
	return Token{
		ClientID:  clientID,
		Scopes:    scopes,
		Access:    uuid.NewString(),
		Refresh:   uuid.NewString(),
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
}

// RefreshToken exchanges a client's refresh token for a new access token. The scopes
// may narrow the original ones (empty keeps them); the refresh token keeps the
// original scope, so a later refresh may ask for all of it again. The refresh token stays the same and
// the old access token is revoked when revokeOld is true.
func (s *Store) RefreshToken(ctx context.Context, c Client, refresh string, scopes []string, ttl time.Duration, revokeOld bool) (Token, error) {
	var t Token
	full, err := s.tokensFull(ctx, c.ID)
	if err != nil {
		return Token{}, fmt.Errorf("refresh token: %w", err)
	}
	if revokeOld || full {
		defer s.tokens.revoke()()
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		var scope string
		var expires int64
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, "SELECT id, coalesce(refresh_scope, scope), expires_at, revoked_at FROM tokens WHERE refresh_hash = ? AND client_id = ?",
			secret.Hash(refresh), c.ID).Scan(&id, &scope, &expires, &revoked)
		if errors.Is(err, sql.ErrNoRows) || revoked.Valid {
			return fmt.Errorf("%w: unknown or revoked refresh token", ErrTokenInvalid)
		}
		if err != nil {
			return err
		}
		granted := strings.Fields(scope)
		if len(scopes) == 0 {
			scopes = granted
		}
		for _, sc := range scopes {
			if !c.HasScope(sc) {
				return scopeNotGranted(sc)
			}
			if !hasScope(granted, sc) {
				return scopeNotRefreshed(sc)
			}
		}
		t = newToken(c.ID, scopes, s.Now(), ttl)
		t.Refresh = refresh
		if revokeOld {
			if _, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = ?, refresh_hash = NULL WHERE id = ?", ms(s.Now()), id); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, "UPDATE tokens SET refresh_hash = NULL WHERE id = ?", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tokens(client_id, access_hash, refresh_hash, scope, refresh_scope, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ID, secret.Hash(t.Access), secret.Hash(t.Refresh),
			strings.Join(scopes, " "), scope, ms(t.CreatedAt), ms(t.ExpiresAt))
		if err != nil || !full {
			return err
		}
		return trimTokens(ctx, tx, c.ID, t.CreatedAt)
	})
	if err != nil {
		return Token{}, fmt.Errorf("refresh token: %w", err)
	}
	return t, nil
}

// qTokenInfo reads an access token, of a client that is not being removed (its
// tokens are revoked when it is marked, and one given to it meanwhile is refused
// too).
const qTokenInfo = `SELECT t.client_id, t.scope, t.created_at, t.expires_at, t.revoked_at FROM tokens t
	JOIN clients c ON c.id = t.client_id AND c.removing_at IS NULL WHERE t.access_hash = ?`

// TokenInfo looks up an access token. It fails with ErrTokenInvalid for an unknown or
// revoked token and ErrTokenExpired for one past its expiry.
func (s *Store) TokenInfo(ctx context.Context, access string) (Token, error) {
	return s.TokenInfoByDigest(ctx, secret.Hash(access))
}

// TokenInfoByDigest is TokenInfo for a token whose digest (secret.Hash) the caller
// has already made: one digest a request.
func (s *Store) TokenInfoByDigest(ctx context.Context, h []byte) (Token, error) {
	now := s.Now()
	t, gen, ok := s.tokens.get(string(h), now)
	if !ok {
		var err error
		if t, err = s.tokenInfo(ctx, h); err != nil {
			return Token{}, err
		}
		s.tokens.put(string(h), t, now, gen)
	}
	if !now.Before(t.ExpiresAt) {
		return Token{}, ErrTokenExpired
	}
	return t, nil
}

func (s *Store) tokenInfo(ctx context.Context, hash []byte) (Token, error) {
	var t Token
	var scope string
	var created, expires int64
	var revoked sql.NullInt64
	st, err := s.readStmt(ctx, qTokenInfo)
	if err != nil {
		return Token{}, fmt.Errorf("token info: %w", err)
	}
	err = st.QueryRowContext(ctx, hash).Scan(&t.ClientID, &scope, &created, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
		return Token{}, ErrTokenInvalid
	}
	if err != nil {
		return Token{}, fmt.Errorf("token info: %w", err)
	}
	t.Scopes = strings.Fields(scope)
	t.CreatedAt, t.ExpiresAt = fromMS(created), fromMS(expires)
	return t, nil
}

// RevokeToken revokes an access or refresh token of the client (RFC 7009): an unknown
// token, or another client's, is not an error and changes nothing.
func (s *Store) RevokeToken(ctx context.Context, clientID, token string) error {
	h := secret.Hash(token)
	defer s.tokens.revoke()()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ?, refresh_hash = NULL
			WHERE client_id = ? AND revoked_at IS NULL AND (access_hash = ? OR refresh_hash = ?)`,
			ms(s.Now()), clientID, h, h)
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return nil
	})
}

// qPurgeTokens deletes up to ?2 tokens that expired, or were revoked, before ?1,
// found through tokens_spent, whose expression it repeats.
const qPurgeTokens = `DELETE FROM tokens WHERE id IN (SELECT id FROM tokens
	WHERE min(expires_at, coalesce(revoked_at, expires_at)) < ?1 LIMIT ?2)`

// PurgeTokens deletes up to limit access tokens that expired or were revoked
// before before, with their refresh tokens, and returns how many it deleted. A
// client that asks for a token often, with a short auth.token_ttl, would otherwise
// leave a row for every token it was ever given. A purged access token is refused
// as unknown rather than as expired or revoked, and its refresh token can no longer
// be exchanged.
func (s *Store) PurgeTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := s.execCounted(ctx, qPurgeTokens, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("purge tokens: %w", err)
	}
	if n > 0 {
		s.tokens.clear() // a purged token is unknown, whatever was cached of it
	}
	return int(n), nil
}
