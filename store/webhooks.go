package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hookd/secret"
)

// Auth types of platform webhooks.
const (
	AuthBasic            = "basic"
	AuthClientCredential = "client_credential"
	AuthNone             = "noauth"
)

// WebhookSpec is what a client sets on a platform webhook. Validation of its fields
// (URLs, iD, header names) is the caller's; the store checks ownership and keeps secrets.
type WebhookSpec struct {
	TargetURL   string
	Auth        Auth // Secret holds the password or client secret; sealed at rest
	Orcid       string
	Types       []string
	Description string
	Headers     map[string]string
}

// SecretOverlap is how long a rotated-out signing secret keeps signing.
const SecretOverlap = 24 * time.Hour

func typesColumn(types []string) any {
	if len(types) == 0 {
		return nil
	}
	return "," + strings.Join(types, ",") + ","
}

func headersColumn(h map[string]string) (any, error) {
	if len(h) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(h)
	return string(b), err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateWebhook adds a platform webhook (Standard Webhooks JSON payloads) for a client
// and returns it with its new signing secret, which is shown only now.
func (s *Store) CreateWebhook(ctx context.Context, clientID string, spec WebhookSpec) (Subscription, string, error) {
	sub, signing, _, err := s.CreateWebhookOnce(ctx, clientID, "", spec)
	return sub, signing, err
}

// CreateWebhookOnce is CreateWebhook with an idempotency key: with a non-empty key,
// a repeat of the same client, key and spec within IdempotencyWindow creates
// nothing and returns the webhook the first call created, as it is now, with its
// signing secret (a client whose first answer was lost learns it from the repeat),
// and replayed true. The key sent with another spec, or once its webhook was
// removed, is a conflict (field Idempotency-Key) that changes nothing. A new
// webhook that would take the client past its cap (FanOutCaps) for its record, or
// for every record, is a conflict (field orcid) that creates nothing.
func (s *Store) CreateWebhookOnce(ctx context.Context, clientID, key string, spec WebhookSpec) (sub Subscription, signing string, replayed bool, err error) {
	headers, err := headersColumn(spec.Headers)
	if err != nil {
		return Subscription{}, "", false, err
	}
	var digest string
	if key != "" {
		b, err := json.Marshal(spec)
		if err != nil {
			return Subscription{}, "", false, err
		}
		sum := sha256.Sum256(b)
		digest = hex.EncodeToString(sum[:])
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.Now()
		signing, replayed = "", false
		if key != "" {
			var stored string
			err := tx.StmtContext(ctx, s.intake.idemLookup).QueryRowContext(ctx, clientID, webhookKey+key, ms(now.Add(-IdempotencyWindow))).Scan(&stored)
			switch {
			case err == nil:
				replayed = true
				sub, signing, err = s.createdOnce(ctx, tx, clientID, stored, digest)
				return err
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if err := s.roomFor(ctx, tx, clientID, spec.Orcid, "orcid"); err != nil {
			return err
		}
		signing = secret.NewSigningSecret()
		uid := newUID()
		_, err := tx.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, client_id, format, target, orcid, types, description, headers,
			auth_type, auth_username, auth_client_id, auth_token_url, auth_secret, signing_secret, created_at, updated_at)
			VALUES (`+newSubscriptionID+`, ?, ?, 'standard', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			uid, clientID, spec.TargetURL, nullString(spec.Orcid), typesColumn(spec.Types), spec.Description, headers,
			spec.Auth.Type, spec.Auth.Username, spec.Auth.ClientID, spec.Auth.TokenURL, s.box.SealString(spec.Auth.Secret),
			s.box.SealString(signing), ms(now), ms(now))
		if err != nil {
			return err
		}
		if key != "" {
			b, _ := json.Marshal(createdWebhook{Webhook: uid, Request: s.box.SealString(digest)}) // it cannot fail
			if _, err := s.remember(ctx, tx, clientID, webhookKey+key, string(b), now); err != nil {
				return err
			}
		}
		sub, err = ownWebhook(ctx, tx, clientID, uid)
		return err
	})
	if err != nil {
		return Subscription{}, "", false, fmt.Errorf("create webhook: %w", err)
	}
	return sub, signing, replayed, nil
}

// webhookKey prefixes the idempotency keys of webhook creations: the same key may
// be sent with events too ("req:").
const webhookKey = "webhook:"

// createdWebhook is what an idempotency key of a webhook creation keeps: the
// webhook it created, and the digest of the spec it was sent with, sealed as the
// secrets are (the spec holds a password or client secret).
type createdWebhook struct {
	Webhook string `json:"webhook"`
	Request []byte `json:"request"`
}

// createdOnce is the answer to a repeated webhook creation whose key kept stored:
// the webhook it created, as it is now, and its signing secret.
func (s *Store) createdOnce(ctx context.Context, tx *sql.Tx, clientID, stored, digest string) (Subscription, string, error) {
	var kept createdWebhook
	if err := json.Unmarshal([]byte(stored), &kept); err != nil {
		return Subscription{}, "", err
	}
	if d, err := s.box.OpenString(kept.Request); err != nil || d != digest {
		return Subscription{}, "", &Error{Code: Conflict, Field: "Idempotency-Key",
			Message: "was sent within the last 24 hours to create another webhook (other fields): nothing was created; give this one a key of its own"}
	}
	sub, err := ownWebhook(ctx, tx, clientID, kept.Webhook)
	if errors.Is(err, ErrNotFound) {
		return Subscription{}, "", &Error{Code: Conflict, Field: "Idempotency-Key",
			Message: fmt.Sprintf("created webhook %s within the last 24 hours, which has been removed since: nothing was created; give a new key to create another", kept.Webhook)}
	}
	if err != nil {
		return Subscription{}, "", err
	}
	var sealed []byte
	if err := tx.QueryRowContext(ctx, "SELECT signing_secret FROM subscriptions WHERE id = ?", sub.ID).Scan(&sealed); err != nil {
		return Subscription{}, "", err
	}
	signing, err := s.box.OpenString(sealed)
	if err != nil {
		return Subscription{}, "", fmt.Errorf("its signing secret: %w", err)
	}
	return sub, signing, nil
}

// ownWebhook finds a client's platform webhook; another client's is ErrNotFound.
func ownWebhook(ctx context.Context, tx *sql.Tx, clientID, uid string) (Subscription, error) {
	sub, err := scanSubscription(tx.QueryRowContext(ctx, "SELECT "+subscriptionColumns+
		" FROM subscriptions WHERE uid = ? AND client_id = ? AND format = 'standard'", uid, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, webhookNotFound(uid)
	}
	return sub, err
}

func webhookNotFound(uid string) error { return notFound(fmt.Sprintf("webhook %q not found", uid)) }

// Webhook returns one of a client's platform webhooks.
func (s *Store) Webhook(ctx context.Context, clientID, uid string) (Subscription, error) {
	sub, err := scanSubscription(s.read.QueryRowContext(ctx, "SELECT "+subscriptionColumns+
		" FROM subscriptions WHERE uid = ? AND client_id = ? AND format = 'standard'", uid, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, webhookNotFound(uid)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("get webhook: %w", err)
	}
	return sub, nil
}

// qPlatformWebhooksWhere chooses a page of a client's platform webhooks (client,
// after, limit), walking the index of platform webhooks (schema version 27):
// without statistics SQLite takes subscriptions_client for as good, which holds
// every subscription of the client.
const qPlatformWebhooksWhere = "INDEXED BY subscriptions_platform WHERE client_id = ? AND format = 'standard' AND id > ? ORDER BY id LIMIT ?"

// Webhooks lists a client's platform webhooks in creation order, at most limit,
// starting after the webhook whose id is after (empty for the first page).
func (s *Store) Webhooks(ctx context.Context, clientID string, limit int, after string) ([]Subscription, error) {
	afterID, isID := PageCursor(after)
	if after != "" && !isID {
		// A webhook's id, as cursors were once: it must still exist. In capitals
		// it is the same id, as the API's paths take it.
		err := s.read.QueryRowContext(ctx, "SELECT id FROM subscriptions WHERE uid = ? AND client_id = ?", strings.ToLower(after), clientID).Scan(&afterID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, invalid("cursor", fmt.Sprintf("%q is not one of your webhooks", after))
		}
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
	}
	subs, err := querySubscriptions(ctx, s.read, qPlatformWebhooksWhere, clientID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return subs, nil
}

// WebhookPatch holds the fields a PATCH changes; nil fields stay as they are.
type WebhookPatch struct {
	TargetURL   *string
	Auth        *Auth
	Orcid       *string
	Types       *[]string
	Description *string
	Headers     *map[string]string
}

// UpdateWebhook changes a client's platform webhook. A patch with no field leaves
// it as it is, updated_at included. A description with a character that shows as
// nothing (CheckShown) is refused, unless the webhook has it already. An active
// webhook moved to another record, or to every record, past the client's cap of
// those (FanOutCaps) is a conflict (field orcid) that changes nothing.
func (s *Store) UpdateWebhook(ctx context.Context, clientID, uid string, p WebhookPatch) (Subscription, error) {
	var sub Subscription
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := ownWebhook(ctx, tx, clientID, uid)
		if err != nil {
			return err
		}
		sets := []string{"updated_at = ?"}
		args := []any{ms(s.Now())}
		set := func(col string, v any) {
			sets = append(sets, col+" = ?")
			args = append(args, v)
		}
		if p.TargetURL != nil {
			set("target", *p.TargetURL)
		}
		if (p.TargetURL != nil && *p.TargetURL != cur.Target) || p.Auth != nil {
			// A new address or credentials is how an owner mends a failing webhook:
			// its run of failures starts afresh, so the first failure after the mend
			// does not deactivate it for the old address's failures.
			set("failing_since", nil)
		}
		if p.Auth != nil {
			set("auth_type", p.Auth.Type)
			set("auth_username", p.Auth.Username)
			set("auth_client_id", p.Auth.ClientID)
			set("auth_token_url", p.Auth.TokenURL)
			set("auth_secret", s.box.SealString(p.Auth.Secret))
		}
		if p.Orcid != nil {
			if *p.Orcid != cur.Orcid && cur.Active {
				// Another record, or every record: within the cap of those.
				if err := s.roomFor(ctx, tx, clientID, *p.Orcid, "orcid"); err != nil {
					return err
				}
			}
			set("orcid", nullString(*p.Orcid))
		}
		if p.Types != nil {
			set("types", typesColumn(*p.Types))
		}
		if p.Description != nil {
			// One with a direction control or a zero-width character is refused,
			// unless it is the webhook's own, as an older hookd stored it: a PATCH
			// that sends the whole webhook back sends it unchanged.
			if err := checkShownKept("description", *p.Description, cur.Description); err != nil {
				return err
			}
			set("description", *p.Description)
		}
		if p.Headers != nil {
			h, err := headersColumn(*p.Headers)
			if err != nil {
				return err
			}
			set("headers", h)
		}
		if len(sets) == 1 {
			sub = cur // a patch that gives no field changes nothing, updated_at included
			return nil
		}
		args = append(args, cur.ID)
		if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
			return err
		}
		s.targetCache.forget(cur.ID)
		sub, err = ownWebhook(ctx, tx, clientID, uid)
		return err
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("update webhook: %w", err)
	}
	return sub, nil
}

// DeleteWebhook removes a client's platform webhook; its deliveries stay as history
// (removeSubscriptions).
func (s *Store) DeleteWebhook(ctx context.Context, clientID, uid string) error {
	ctx = removal(ctx) // it may remove webhooks (removeSubscriptions)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := ownWebhook(ctx, tx, clientID, uid)
		if err != nil {
			return err
		}
		return s.removeSubscriptions(ctx, tx, []int64{cur.ID}, ms(s.Now()))
	})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// SetWebhookActive activates or deactivates a client's platform webhook. A
// deactivation by the client has no reason; deliveries pending then become dead
// (replayable), and activating does not replay them by itself. Activating one
// that would take the client past its cap (FanOutCaps) is a conflict that changes
// nothing.
func (s *Store) SetWebhookActive(ctx context.Context, clientID, uid string, active bool) (Subscription, error) {
	if active {
		if err := s.killBacklogFirst(ctx, "client_id = ? AND uid = ?", clientID, uid); err != nil {
			return Subscription{}, fmt.Errorf("set webhook status: %w", err)
		}
	}
	now := ms(s.Now())
	var sub Subscription
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := ownWebhook(ctx, tx, clientID, uid)
		if err != nil {
			return err
		}
		if active && !cur.Active {
			if err := s.roomFor(ctx, tx, clientID, cur.Orcid, ""); err != nil {
				return err
			}
			if err := s.reactivate(ctx, tx, cur.ID, now); err != nil {
				return err
			}
		} else if !active && cur.on() {
			if _, err := s.deactivate(ctx, tx, cur.ID, "", now); err != nil {
				return err
			}
		}
		sub, err = ownWebhook(ctx, tx, clientID, uid)
		return err
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("set webhook status: %w", err)
	}
	return sub, nil
}

// Rotation says what becomes of the signing secret a rotation replaces.
type Rotation int

const (
	// KeepPrevious: it keeps signing beside the new one for SecretOverlap, so that
	// receivers can move to the new one. A second rotation during that overlap is
	// a Conflict: it would end the overlap the first promised.
	KeepPrevious Rotation = iota
	// RevokePrevious: it stops signing at once, and so does a secret still in the
	// overlap of a rotation before, so that a secret that leaked signs nothing more.
	// The new secret signs alone; it may come during an overlap.
	RevokePrevious
)

// Detail is what an audit entry of the rotation says of it: nothing for the usual one.
func (how Rotation) Detail() string {
	if how == RevokePrevious {
		return "previous secrets revoked"
	}
	return ""
}

// RotateWebhookSecret gives a platform webhook a new signing secret. With
// KeepPrevious the old one keeps signing (both signatures are sent) until the time
// it returns; with RevokePrevious no other secret signs, and the time is zero.
func (s *Store) RotateWebhookSecret(ctx context.Context, clientID, uid string, how Rotation) (string, time.Time, error) {
	var signing string
	var until time.Time
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := ownWebhook(ctx, tx, clientID, uid)
		if err != nil {
			return err
		}
		signing, until, err = s.rotate(ctx, tx, cur.ID, how)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("rotate signing secret: %w", err)
	}
	return signing, until, nil
}

// rotate gives subscription id a new signing secret, the one it returns, and keeps
// the secret it had signing until the time it returns (zero when it had none, or
// with RevokePrevious).
func (s *Store) rotate(ctx context.Context, tx *sql.Tx, id int64, how Rotation) (string, time.Time, error) {
	now := s.Now()
	var until time.Time
	previous, previousUntil := "signing_secret", any(nil)
	switch how {
	case KeepPrevious:
		if err := s.overlapEnded(ctx, tx, id); err != nil {
			return "", time.Time{}, err
		}
		var had bool
		if err := tx.QueryRowContext(ctx, "SELECT signing_secret IS NOT NULL FROM subscriptions WHERE id = ?", id).Scan(&had); err != nil {
			return "", time.Time{}, err
		}
		if had { // no overlap when there was no secret to keep (a webhook of an older hookd)
			until = now.Add(SecretOverlap).UTC().Truncate(time.Millisecond)
			previousUntil = ms(until)
		}
	case RevokePrevious:
		previous = "NULL"
	default:
		return "", time.Time{}, fmt.Errorf("unknown rotation %d", how)
	}
	signing := secret.NewSigningSecret()
	if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET previous_secret = `+previous+`, previous_until = ?,
		signing_secret = ?, updated_at = ? WHERE id = ?`, previousUntil, s.box.SealString(signing), ms(now), id); err != nil {
		return "", time.Time{}, err
	}
	s.targetCache.forget(id)
	return signing, until, nil
}

// overlapEnded refuses a rotation of subscription id's signing secret while the
// secret its last rotation replaced still signs: a webhook keeps one previous
// secret, and rotating again would end that secret's overlap before the time the
// last rotation promised (previousSecretValidUntil).
func (s *Store) overlapEnded(ctx context.Context, tx *sql.Tx, id int64) error {
	var until sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT previous_until FROM subscriptions WHERE id = ? AND previous_secret IS NOT NULL", id).Scan(&until); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if until.Valid && until.Int64 > ms(s.Now()) {
		return overlapConflict(until.Int64)
	}
	return nil
}

// overlapConflict is the refusal of a rotation while the secret the last one
// replaced still signs, until the time (unix milliseconds) it promised. The time
// it gives (in Message and Until) is that time rounded up to the whole second,
// the first second a rotation is taken at: the promise keeps milliseconds
// (12:00:31.961), and a refusal saying 12:00:31 refused a rotation at 12:00:31.
func overlapConflict(until int64) *Error {
	t := time.UnixMilli(until).UTC()
	if r := t.Truncate(time.Second); r.Before(t) {
		t = r.Add(time.Second)
	}
	return &Error{Code: Conflict, Until: t, Message: fmt.Sprintf("the secret the last rotation replaced still signs until %s, as that rotation promised: rotate again from then, or revoke both old secrets with this rotation",
		t.Format(time.RFC3339))}
}

// PageCursor reads the cursor of a list of webhooks: the position after which the
// next page begins, which stays valid when the webhook there is removed meanwhile.
// ok is false for anything else (a webhook's public id, the cursor of older versions).
func PageCursor(cursor string) (after int64, ok bool) {
	n, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// ParseID reads an id as hookd writes it (in a URL's path): a positive decimal
// number, so that one object has one URL (not +1, 01 or 1 with spaces as well).
func ParseID(raw string) (int64, bool) {
	id, err := strconv.ParseInt(raw, 10, 64)
	return id, err == nil && id > 0 && strconv.FormatInt(id, 10) == raw
}

// NextCursor is the cursor of the page after the one that ends with s.
func NextCursor(s Subscription) string { return strconv.FormatInt(s.ID, 10) }
