package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"hookd/secret"
)

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
	// SigningSecret is the whsec_ secret that signs the webhook's calls, as every
	// webhook's are (webhook-signature): only in SetHubSettings's answer, when it
	// made the secret (with the webhook, or for one older than signing), so it is
	// shown once. RotateOrgSecret makes a new one.
	SigningSecret string
	// WebhookUID is the webhook's public id (its page, its deliveries): "" when
	// there is none. WebhookSigned says whether it has a signing secret (one made
	// by an older hookd has none until its next change or rotation).
	WebhookUID    string
	WebhookSigned bool
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

// hubSettings reads an organisation's settings.
func hubSettings(ctx context.Context, q queryRower, orgID int64) (HubSettings, error) {
	var h HubSettings
	if err := orgExists(ctx, q, orgID); err != nil {
		return h, err
	}
	hub, ok, err := orgSub(ctx, q, orgID, FormatHub)
	if err != nil {
		return h, err
	}
	if ok {
		h.Enabled, h.URL, h.AppendOrcid, h.WebhookReason, h.WebhookUID = hub.Active, hub.Target, hub.AppendOrcid, hub.Reason, hub.UID
		if err := q.QueryRowContext(ctx, "SELECT apikey IS NOT NULL AND length(apikey) > 0, signing_secret IS NOT NULL FROM subscriptions WHERE id = ?",
			hub.ID).Scan(&h.APIKeySet, &h.WebhookSigned); err != nil {
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
const techContactTarget = TechContactTarget

// TechContactTarget is the target of an organisation's e-mail subscription that
// writes to its technical contact, for a front that names it in words of its own.
const TechContactTarget = "tech-contact"

// HubSettings returns an organisation's settings (without the apikey itself).
func (s *Store) HubSettings(ctx context.Context, orgID int64) (HubSettings, error) {
	h, err := hubSettings(ctx, s.read, orgID)
	if err != nil {
		return HubSettings{}, fmt.Errorf("get organisation settings: %w", err)
	}
	return h, nil
}

// Check reports what is wrong with settings before they are stored, as
// SetHubSettings does; the webhook's URL is checked there, against the targets
// hookd may call.
func (h HubSettings) Check() error {
	if h.Enabled && h.URL == "" {
		return invalid("url", "required when enabled is true")
	}
	if h.NotificationEmail != "" {
		// Its local part is SetHubSettings's to check (CheckMailbox), for a new
		// address: one an older hookd took stays until another is given.
		if err := CheckEmail("notification-email", h.NotificationEmail); err != nil {
			return err
		}
	}
	if h.APIKey != nil && *h.APIKey != "" {
		if h.URL == "" {
			// Settings without a url have no webhook to send it with: it would be
			// dropped, and a url given later would start without it.
			return invalid("apikey", "needs the webhook's url: without one there is no webhook to send it with")
		}
		if err := CheckSentHeaderValue("apikey", *h.APIKey); err != nil {
			return err
		}
	}
	return nil
}

// SetHubSettings replaces an organisation's settings. The webhook is kept as a
// subscription of format hub (active when Enabled) and e-mail as one of format email,
// both with the organisation's id, so every present and future member's events reach
// them. Validation of the URL is the caller's (CheckURL). It reports whether a
// setting that was off (or absent) is now on.
func (s *Store) SetHubSettings(ctx context.Context, orgID int64, h HubSettings) (HubSettings, bool, error) {
	ctx = removal(ctx) // it may remove webhooks (removeSubscriptions)
	if err := h.Check(); err != nil {
		return HubSettings{}, false, err
	}
	if h.NotificationEmail != "" {
		// A notification address with a local part in another script is refused
		// when it is given anew; one an older hookd took, given again as it is
		// (the settings are given whole), does not stop the others from changing,
		// the e-mail from being turned off among them.
		cur, err := hubSettings(ctx, s.read, orgID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return HubSettings{}, false, fmt.Errorf("set organisation settings: %w", err)
		}
		if h.NotificationEmail != cur.NotificationEmail {
			if err := CheckMailbox("notification-email", h.NotificationEmail); err != nil {
				return HubSettings{}, false, err
			}
		}
	}
	// What a setting turned on again had left waiting dies first, a batch a
	// transaction; a setting removed instead keeps its own for the removal ("not
	// sent: webhook removed").
	for format, on := range map[string]bool{FormatHub: h.Enabled && h.URL != "", FormatEmail: h.EmailEnabled} {
		if !on {
			continue
		}
		if err := s.killBacklogFirst(ctx, "org_id = ? AND format = ?", orgID, format); err != nil {
			return HubSettings{}, false, fmt.Errorf("set organisation settings: %w", err)
		}
	}
	now := ms(s.Now())
	var out HubSettings
	var newlyEnabled bool
	var signing string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := orgExists(ctx, tx, orgID); err != nil {
			return err
		}
		webhookOn, made, err := s.setOrgWebhook(ctx, tx, orgID, h, now)
		if err != nil {
			return err
		}
		signing = made
		emailOn, err := s.setOrgEmail(ctx, tx, orgID, h, now)
		if err != nil {
			return err
		}
		newlyEnabled = webhookOn || emailOn
		if err := s.syncOrgUpstream(ctx, tx, orgID, now); err != nil {
			return err
		}
		out, err = hubSettings(ctx, tx, orgID)
		return err
	})
	if err != nil {
		return HubSettings{}, false, fmt.Errorf("set organisation settings: %w", err)
	}
	out.SigningSecret = signing
	if err := s.finishUpstreamLeft(ctx); err != nil {
		return out, newlyEnabled, fmt.Errorf("set organisation settings: %w", err)
	}
	return out, newlyEnabled, nil
}

// setOrgWebhook makes an organisation's webhook what h says: without a URL there is
// none; with one, it is on when h.Enabled, and keeps its apikey unless h gives one,
// and its signing secret. It reports whether the webhook was turned on, and the
// signing secret when it made one: for a new webhook, or one made before
// organisations' webhooks were signed.
func (s *Store) setOrgWebhook(ctx context.Context, tx *sql.Tx, orgID int64, h HubSettings, now int64) (on bool, signing string, err error) {
	if h.URL == "" {
		return false, "", s.deleteOrgSub(ctx, tx, orgID, FormatHub)
	}
	id, on, err := s.putOrgSub(ctx, tx, orgID, FormatHub, h.URL, h.Enabled, now)
	if err != nil {
		return false, "", err
	}
	var appendWas bool
	var keyWas []byte
	if err := tx.QueryRowContext(ctx, "SELECT append_orcid, apikey FROM subscriptions WHERE id = ?", id).Scan(&appendWas, &keyWas); err != nil {
		return false, "", err
	}
	mended := appendWas != h.AppendOrcid // the address called changes
	if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET append_orcid = ? WHERE id = ?", h.AppendOrcid, id); err != nil {
		return false, "", err
	}
	if h.APIKey != nil {
		var sealed any // "" removes the apikey
		if *h.APIKey != "" {
			sealed = s.box.SealString(*h.APIKey)
		}
		// The same key given again (a settings PUT that repeats it) is no mend.
		if was, err := s.box.OpenString(keyWas); err != nil || was != *h.APIKey {
			mended = true
		}
		if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET apikey = ? WHERE id = ?", sealed, id); err != nil {
			return false, "", err
		}
	}
	if mended {
		// A new key, or the record's iD now added to the URL or no longer, starts
		// the webhook's run of failures afresh, as a new URL does (putOrgSub).
		s.targetCache.forget(id)
		if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET failing_since = NULL WHERE id = ?", id); err != nil {
			return false, "", err
		}
	}
	signing = secret.NewSigningSecret()
	r, err := tx.ExecContext(ctx, "UPDATE subscriptions SET signing_secret = ? WHERE id = ? AND signing_secret IS NULL",
		s.box.SealString(signing), id)
	if err != nil {
		return false, "", err
	}
	if made, err := r.RowsAffected(); err != nil || made == 0 {
		return on, "", err
	}
	s.targetCache.forget(id)
	return on, signing, nil
}

// RotateOrgSecret gives an organisation's webhook a new signing secret. With
// KeepPrevious the old one keeps signing (both signatures are sent) until the time
// it returns (zero when the webhook had none: one made by an older hookd); with
// RevokePrevious no other secret signs, and the time is zero. NotFound when the
// organisation has no webhook.
func (s *Store) RotateOrgSecret(ctx context.Context, orgID int64, how Rotation) (string, time.Time, error) {
	var signing string
	var until time.Time
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := orgExists(ctx, tx, orgID); err != nil {
			return err
		}
		hub, ok, err := orgSub(ctx, tx, orgID, FormatHub)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(fmt.Sprintf("organisation %d has no webhook: set its url first", orgID))
		}
		signing, until, err = s.rotate(ctx, tx, hub.ID, how)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("rotate organisation signing secret: %w", err)
	}
	return signing, until, nil
}

// setOrgEmail makes an organisation's e-mail notifications what h says: to the
// notification address, or to the technical contact; kept (off) while an address is
// set, forgotten when neither is. It reports whether e-mail was turned on.
func (s *Store) setOrgEmail(ctx context.Context, tx *sql.Tx, orgID int64, h HubSettings, now int64) (bool, error) {
	if !h.EmailEnabled && h.NotificationEmail == "" {
		return false, s.deleteOrgSub(ctx, tx, orgID, FormatEmail)
	}
	_, on, err := s.putOrgSub(ctx, tx, orgID, FormatEmail, cmp.Or(h.NotificationEmail, techContactTarget), h.EmailEnabled, now)
	return on, err
}

// putOrgSub makes an organisation's subscription of a format exist with target,
// active or not: it creates it, or changes its target and turns it on (clearing why
// hookd had turned it off) or off (its pending deliveries become dead). It returns
// the subscription's id and whether it was turned on.
func (s *Store) putOrgSub(ctx context.Context, tx *sql.Tx, orgID int64, format, target string, active bool, now int64) (int64, bool, error) {
	cur, ok, err := orgSub(ctx, tx, orgID, format)
	if err != nil {
		return 0, false, err
	}
	if !ok {
		id, err := createOrgSub(ctx, tx, orgID, format, target, active, now)
		return id, active, err
	}
	s.targetCache.forget(cur.ID)
	// A new address starts its run of failures afresh (UpdateWebhook).
	if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET target = ?1, updated_at = ?2,
		failing_since = CASE WHEN target = ?1 THEN failing_since END WHERE id = ?3`, target, now, cur.ID); err != nil {
		return 0, false, err
	}
	switch {
	case active && !cur.Active:
		return cur.ID, true, s.reactivate(ctx, tx, cur.ID, now)
	case !active && cur.on():
		_, err := s.deactivate(ctx, tx, cur.ID, "", now)
		return cur.ID, false, err
	}
	return cur.ID, false, nil
}

// createOrgSub inserts an organisation's subscription of a format and returns its id.
func createOrgSub(ctx context.Context, tx *sql.Tx, orgID int64, format, target string, active bool, now int64) (int64, error) {
	r, err := tx.ExecContext(ctx, `INSERT INTO subscriptions(id, uid, org_id, format, target, active, created_at, updated_at)
		VALUES (`+newSubscriptionID+`, ?, ?, ?, ?, ?, ?, ?)`, newUID(), orgID, format, target, active, now, now)
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

// deleteOrgSub removes an organisation's subscription of a format, if any; its
// deliveries stay as history (removeSubscriptions).
func (s *Store) deleteOrgSub(ctx context.Context, tx *sql.Tx, orgID int64, format string) error {
	return s.removeSubscriptionsWhere(ctx, tx, ms(s.Now()), "org_id = ? AND format = ?", orgID, format)
}

// DeleteHubSettings turns an organisation's webhook and e-mail off and forgets them,
// with their deliveries.
func (s *Store) DeleteHubSettings(ctx context.Context, orgID int64) error {
	ctx = removal(ctx) // it may remove webhooks (removeSubscriptions)
	now := ms(s.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := orgExists(ctx, tx, orgID); err != nil {
			return err
		}
		for _, format := range []string{FormatHub, FormatEmail} {
			if err := s.deleteOrgSub(ctx, tx, orgID, format); err != nil {
				return err
			}
		}
		return s.syncOrgUpstream(ctx, tx, orgID, now)
	})
	if err == nil {
		err = s.finishUpstreamLeft(ctx)
	}
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
	// To is where an e-mail goes: the notification address, or else the technical
	// contact (as the ORCID Hub sends it: the contact is not copied).
	To     string
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
