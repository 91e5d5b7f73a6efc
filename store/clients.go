package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"hookd/secret"
)

// Scopes a client can be granted.
const (
	ScopeWebhook = "/webhook"
	ScopeNotify  = "/notify"
	ScopeAdmin   = "/admin"
)

// KnownScopes lists every scope hookd grants.
var KnownScopes = []string{ScopeWebhook, ScopeNotify, ScopeAdmin}

// Client is an API client of hookd.
type Client struct {
	ID        string
	Name      string
	Scopes    []string
	Email     string
	CreatedAt time.Time
}

// HasScope reports whether the client was granted scope.
func (c Client) HasScope(scope string) bool { return hasScope(c.Scopes, scope) }

// Credentials are a client's secrets, shown once when the client is made or rotated.
type Credentials struct {
	Client
	Secret        string
	SigningSecret string
}

// NewClient describes a client to create. ID and Secret are generated when empty.
type NewClient struct {
	ID     string
	Name   string
	Secret string
	Scopes []string
	// Email, optional, is told when hookd deactivates one of the client's webhooks.
	Email string
}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// minSecretLen is the shortest client secret hookd takes from a caller.
const minSecretLen = 8

// maxSecretLen is the longest: a secret far longer is no one's typing.
const maxSecretLen = 1000

var errShortSecret = invalid("secret", fmt.Sprintf("must be at least %d characters", minSecretLen))

// checkChosenSecret checks a client secret a caller chose: long enough, one line
// of text without control characters (a slip of a paste, that a sign-in form
// cannot send back, and a terminal would act on when it is printed). Its errors
// never show it.
func checkChosenSecret(sec string) error {
	if utf8.RuneCountInString(sec) < minSecretLen { // characters, as its maximum counts them
		return errShortSecret
	}
	if i := strings.IndexByte(sec, '\t'); i >= 0 {
		return invalid("secret", fmt.Sprintf("has a tab at byte %d: a control character, which a sign-in form's field does not keep", i))
	}
	return CheckLine("secret", sec, maxSecretLen)
}

func clientNotFound(idOrName string) error {
	return notFound(fmt.Sprintf("client %q not found", idOrName))
}

// ParseScopes splits a space- or comma-separated scope list and checks each scope.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '+' }) {
		if !hasScope(KnownScopes, f) {
			return nil, &Error{Code: Invalid, Field: "scope", Value: f,
				Message: fmt.Sprintf("unknown scope %q (known: %s)", f, strings.Join(KnownScopes, ", "))}
		}
		if !hasScope(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func hasScope(list []string, scope string) bool {
	for _, s := range list {
		if s == scope {
			return true
		}
	}
	return false
}

// NewClientID returns an id in ORCID's form: "APP-" and 16 upper-case letters and digits.
func NewClientID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := secret.Random(16)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "APP-" + string(b)
}

// CreateClient adds a client and returns its credentials, including the signing
// secret of its ORCID-style registrations.
func (s *Store) CreateClient(ctx context.Context, nc NewClient) (Credentials, error) {
	// As an organisation's name: spaces around a name do not show in a list, and
	// "sp " beside "sp" would be a second client under what reads as one name.
	nc.Name = strings.TrimSpace(nc.Name)
	if nc.Name == "" {
		return Credentials{}, invalid("name", "is required")
	}
	if err := CheckLine("name", nc.Name, maxNameLen); err != nil {
		return Credentials{}, err
	}
	if len(nc.Scopes) == 0 {
		return Credentials{}, invalid("scope", fmt.Sprintf("a client needs at least one (%s)", strings.Join(KnownScopes, ", ")))
	}
	for _, sc := range nc.Scopes {
		if !hasScope(KnownScopes, sc) {
			return Credentials{}, &Error{Code: Invalid, Field: "scope", Value: sc, Message: fmt.Sprintf("unknown scope %q", sc)}
		}
	}
	if nc.Email != "" {
		if err := CheckMailbox("email", nc.Email); err != nil {
			return Credentials{}, err
		}
	}
	generated := nc.ID == ""
	if generated {
		nc.ID = NewClientID()
	} else if !clientIDPattern.MatchString(nc.ID) {
		return Credentials{}, invalid("id", fmt.Sprintf("%q: use letters, digits, '.', '_' and '-' (at most 64)", nc.ID))
	} else if nc.ID == ActorAdminToken {
		// The audit log names the operator's admin token so: a client of that id
		// would read the operator's entries as its own, and pass its own for theirs.
		return Credentials{}, invalid("id", fmt.Sprintf("%q is reserved for the operator's admin token; choose another id", nc.ID))
	}
	chosen := nc.Secret != ""
	if !chosen {
		nc.Secret = uuid.NewString()
	} else if err := checkChosenSecret(nc.Secret); err != nil {
		return Credentials{}, err
	}
	creds := Credentials{
		Client:        Client{ID: nc.ID, Name: nc.Name, Scopes: nc.Scopes, Email: nc.Email, CreatedAt: s.Now().UTC().Truncate(time.Millisecond)},
		Secret:        nc.Secret,
		SigningSecret: secret.NewSigningSecret(),
	}
	salt, hash := hashClientSecret(nc.Secret, chosen)
	if !generated {
		if err := s.forgetKeys(ctx, nc.ID); err != nil {
			return Credentials{}, fmt.Errorf("create client: %w", err)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients(id, name, secret_salt, secret_hash, scopes, signing_secret, email, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			nc.ID, nc.Name, salt, hash, strings.Join(nc.Scopes, " "),
			s.box.SealString(creds.SigningSecret), nc.Email, ms(creds.CreatedAt))
		switch {
		case isPrimaryKey(err) && generated: // never name an id that no client got
			return &Error{Code: Conflict, Message: "the client id made for it was taken (a rare chance): try again"}
		case isPrimaryKey(err): // the id is the primary key
			return &Error{Code: Conflict, Field: "id", Message: fmt.Sprintf("a client with id %q already exists", nc.ID) + removingYet(ctx, tx, "id", nc.ID)}
		case isUnique(err): // the name is the other unique column
			return &Error{Code: Conflict, Field: "name", Message: fmt.Sprintf("a client named %q already exists", nc.Name) + removingYet(ctx, tx, "name", nc.Name)}
		}
		return err
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("create client: %w", err)
	}
	return creds, nil
}

// removingYet says, for a client whose column (id or name) is value, that it is
// being removed, when it is: its id and name are free once its removal finishes.
func removingYet(ctx context.Context, tx *sql.Tx, column, value string) string {
	var removing bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM clients WHERE "+column+" = ? AND removing_at IS NOT NULL)", value).
		Scan(&removing); err != nil || !removing {
		return ""
	}
	return ": it is being removed; its " + column + " is free once its removal finishes (hookd client remove finishes it, as does hookd's next start or retention pass)"
}

const clientColumns = "id, name, scopes, email, created_at"

func scanClient(row interface{ Scan(...any) error }) (Client, error) {
	var c Client
	var scopes string
	var created int64
	if err := row.Scan(&c.ID, &c.Name, &scopes, &c.Email, &created); err != nil {
		return Client{}, err
	}
	c.Scopes = strings.Fields(scopes)
	c.CreatedAt = fromMS(created)
	return c, nil
}

// Clients lists every client, oldest first, but those being removed.
func (s *Store) Clients(ctx context.Context) ([]Client, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+clientColumns+" FROM clients WHERE removing_at IS NULL ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Client finds a client by id or, failing that, by name; one being removed is
// not found (its error says so).
func (s *Store) Client(ctx context.Context, idOrName string) (Client, error) {
	c, err := scanClient(s.read.QueryRowContext(ctx,
		"SELECT "+clientColumns+" FROM clients WHERE id = "+qLiveClientWhich, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return Client{}, clientMissing(ctx, s.read, idOrName)
	}
	return c, err
}

// qLiveClientWhich is qClientWhich among the clients not being removed.
const qLiveClientWhich = "(SELECT id FROM clients WHERE (id = ?1 OR name = ?1) AND removing_at IS NULL ORDER BY id = ?1 DESC LIMIT 1)"

// clientMissing is the error of a lookup of client idOrName that found none not
// being removed: one being removed says so.
func clientMissing(ctx context.Context, q queryRower, idOrName string) error {
	var removing bool
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM clients WHERE (id = ?1 OR name = ?1) AND removing_at IS NOT NULL)",
		idOrName).Scan(&removing); err == nil && removing {
		return beingRemoved(fmt.Sprintf("client %q", idOrName))
	}
	return clientNotFound(idOrName)
}

// forgetKeys deletes the idempotency keys of client id while no client has that
// id, keysBatch a transaction: a busy client has one for each event id of the
// last 24 hours (200,000 deleted in one transaction held every write for a
// second). RemoveClient runs it once the client is gone, and CreateClient before
// it makes one of an id given, for what a removal stopped half-way left.
func (s *Store) forgetKeys(ctx context.Context, id string) error {
	err := s.execBatches(ctx, keysBatch, nil, func(tx *sql.Tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `DELETE FROM idempotency WHERE client_id = ?1
			AND key IN (SELECT key FROM idempotency WHERE client_id = ?1 LIMIT ?2)
			AND NOT EXISTS (SELECT 1 FROM clients WHERE id = ?1)`, id, keysBatch)
	})
	if err != nil {
		return fmt.Errorf("forget the idempotency keys of client %s: %w", id, err)
	}
	return nil
}

// keysBatch is how many idempotency keys forgetKeys deletes in one transaction.
var keysBatch = 500

// RotateClientSecret gives a client a new secret (generated when newSecret is empty)
// and revokes its tokens, which were obtained with the old one.
func (s *Store) RotateClientSecret(ctx context.Context, idOrName, newSecret string) (Credentials, error) {
	chosen := newSecret != ""
	if !chosen {
		newSecret = uuid.NewString()
	} else if err := checkChosenSecret(newSecret); err != nil {
		return Credentials{}, err
	}
	salt, hash := hashClientSecret(newSecret, chosen)
	var creds Credentials
	defer s.tokens.revoke()()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := scanClient(tx.QueryRowContext(ctx,
			"SELECT "+clientColumns+" FROM clients WHERE id = "+qLiveClientWhich, idOrName))
		if errors.Is(err, sql.ErrNoRows) {
			return clientMissing(ctx, tx, idOrName)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE clients SET secret_salt = ?, secret_hash = ? WHERE id = ?",
			salt, hash, c.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
			ms(s.Now()), c.ID); err != nil {
			return err
		}
		creds = Credentials{Client: c, Secret: newSecret}
		return nil
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("rotate client secret: %w", err)
	}
	return creds, nil
}

// RotateClientSigningSecret gives a client a new signing secret: the one of its
// ORCID-style deliveries (and of a platform webhook that has none of its own). With
// KeepPrevious the old one keeps signing (both signatures are sent) until the time
// it returns, and a second rotation before then is a Conflict; with RevokePrevious
// the new one signs alone at once, and the time is zero. The client's secret and
// tokens stay as they are.
func (s *Store) RotateClientSigningSecret(ctx context.Context, idOrName string, how Rotation) (Client, string, time.Time, error) {
	var c Client
	var signing string
	var until time.Time
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var previousUntil sql.NullInt64
		var hasPrevious bool
		var err error
		c, err = scanClient(tx.QueryRowContext(ctx,
			"SELECT "+clientColumns+" FROM clients WHERE id = "+qLiveClientWhich, idOrName))
		if errors.Is(err, sql.ErrNoRows) {
			return clientMissing(ctx, tx, idOrName)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT previous_signing_secret IS NOT NULL, previous_signing_until FROM clients WHERE id = ?", c.ID).
			Scan(&hasPrevious, &previousUntil); err != nil {
			return err
		}
		now := s.Now()
		previous, untilMS := "signing_secret", any(nil)
		switch how {
		case KeepPrevious:
			if hasPrevious && previousUntil.Valid && previousUntil.Int64 > ms(now) {
				return overlapConflict(previousUntil.Int64)
			}
			until = now.Add(SecretOverlap).UTC().Truncate(time.Millisecond)
			untilMS = ms(until)
		case RevokePrevious:
			previous = "NULL"
		default:
			return fmt.Errorf("unknown rotation %d", how)
		}
		signing = secret.NewSigningSecret()
		if _, err := tx.ExecContext(ctx, `UPDATE clients SET previous_signing_secret = `+previous+`, previous_signing_until = ?,
			signing_secret = ? WHERE id = ?`, untilMS, s.box.SealString(signing), c.ID); err != nil {
			return err
		}
		s.targetCache.forget(0) // the targets of every registration the client made
		return nil
	})
	if err != nil {
		return Client{}, "", time.Time{}, fmt.Errorf("rotate client signing secret: %w", err)
	}
	return c, signing, until, nil
}

// How a client secret is stored. A secret hookd generated (a random UUID, 122
// random bits) is stored as HMAC-SHA256 under a random salt (secret_salt), which
// is quick to check and, for such a secret, enough. A secret a person chose
// (hookd client add -secret, an imported sandbox client) may be weak, so it is
// stored as an argon2id hash in its self-describing PHC form (secret.Password),
// with an empty secret_salt: a copied database then costs an attacker argon2id
// per guess. The stored hash says which it is.

// hashClientSecret returns the secret_salt and secret_hash of a client secret;
// chosen is true for a secret a person chose.
func hashClientSecret(sec string, chosen bool) (salt, hash []byte) {
	if chosen {
		return []byte{}, []byte(secret.HashPassword(sec))
	}
	salt = secret.Random(16)
	return salt, secret.SaltedHash(salt, sec)
}

// generated reports whether a secret has the form hookd generates: a random
// (version 4) UUID as uuid.NewString writes it.
func generated(sec string) bool {
	u, err := uuid.Parse(sec)
	return err == nil && u.Version() == 4 && u.String() == sec
}

// unknownSalt is what an unknown client id's secret is hashed with, so that its
// answer takes as long as a known id's with a generated secret.
var unknownSalt = secret.Random(16)

// AuthenticateClient checks a client id and secret, in constant time. An old
// hash is made again once its secret is at hand: a secret not in the form hookd
// generates, stored with the quick hash by an older hookd, becomes argon2id, and
// an argon2id hash made with other parameters than today's is made anew.
func (s *Store) AuthenticateClient(ctx context.Context, id, clientSecret string) (Client, error) {
	c, _, err := s.authenticate(ctx, id, clientSecret)
	return c, err
}

// authFailFloor is the least time a failed client authentication takes: an id
// whose secret a person chose is checked with argon2id (some 20 – 40 ms of a
// core), a generated secret or an unknown id with a quick hash, and without the
// floor the time of a failure would tell which ids exist and which have a
// guessable secret.
var authFailFloor = 100 * time.Millisecond

// authenticate is AuthenticateClient that also returns the client's secret hash as
// it stands once the secret checked (made again when it was old).
func (s *Store) authenticate(ctx context.Context, id, clientSecret string) (c Client, hash []byte, err error) {
	start := time.Now()
	defer func() {
		if errors.Is(err, ErrBadCredentials) {
			FailFloor(ctx, start)
		}
	}()
	return s.checkSecret(ctx, id, clientSecret)
}

// FailFloor waits until authFailFloor has passed since start (or ctx ends): a
// refused sign-in checked elsewhere (the console's admin token, a form without an
// id) takes as long as a refused client secret.
func FailFloor(ctx context.Context, start time.Time) {
	t := time.NewTimer(time.Until(start.Add(authFailFloor)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// checkSecret is authenticate without its floor.
func (s *Store) checkSecret(ctx context.Context, id, clientSecret string) (Client, []byte, error) {
	var salt, hash []byte
	var c Client
	var scopes string
	var created int64
	err := s.read.QueryRowContext(ctx, "SELECT id, name, scopes, email, created_at, secret_salt, secret_hash FROM clients WHERE id = ? AND removing_at IS NULL", id).
		Scan(&c.ID, &c.Name, &scopes, &c.Email, &created, &salt, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		secret.SaltedHash(unknownSalt, clientSecret)
		return Client{}, nil, ErrBadCredentials
	}
	if err != nil {
		return Client{}, nil, fmt.Errorf("authenticate client: %w", err)
	}
	var rehash bool
	if stored := string(hash); strings.HasPrefix(stored, secret.PasswordPrefix) {
		ok, err := secret.CheckPassword(stored, clientSecret)
		if err != nil {
			return Client{}, nil, fmt.Errorf("authenticate client %s: %w", id, err)
		}
		if !ok {
			return Client{}, nil, ErrBadCredentials
		}
		rehash = secret.NeedsRehash(stored)
	} else {
		if !secret.Equal(secret.SaltedHash(salt, clientSecret), hash) {
			return Client{}, nil, ErrBadCredentials
		}
		rehash = !generated(clientSecret)
	}
	if rehash {
		hash = s.rehashClientSecret(ctx, id, hash, clientSecret)
	}
	c.Scopes = strings.Fields(scopes)
	c.CreatedAt = fromMS(created)
	return c, hash, nil
}

// rehashClientSecret stores a client's secret as argon2id in place of the hash
// old, unless the secret changed meanwhile, and returns the hash stored: the new
// one, or old. It is best effort: the client has authenticated whatever happens,
// and a failure leaves the old hash, which still checks, for the next time.
func (s *Store) rehashClientSecret(ctx context.Context, id string, old []byte, clientSecret string) []byte {
	salt, hash := hashClientSecret(clientSecret, true)
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, "UPDATE clients SET secret_salt = ?, secret_hash = ? WHERE id = ? AND secret_hash = ?", salt, hash, id, old)
		if err == nil {
			n, err = r.RowsAffected()
		}
		return err
	})
	if err == nil && n == 1 {
		return hash
	}
	return old
}

// ClientSigningSecret returns the whsec_ secret that signs a client's ORCID-style deliveries.
func (s *Store) ClientSigningSecret(ctx context.Context, id string) (string, error) {
	var sealed []byte
	err := s.read.QueryRowContext(ctx, "SELECT signing_secret FROM clients WHERE id = ?", id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", clientNotFound(id)
	}
	if err != nil {
		return "", err
	}
	return s.box.OpenString(sealed)
}
