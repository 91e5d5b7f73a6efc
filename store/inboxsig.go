package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"hookd/secret"
)

// The inbox's check of a request's Standard Webhooks signature
// (https://www.standardwebhooks.com/): webhook-id, webhook-timestamp and
// webhook-signature ("v1,<base64 HMAC-SHA256>" values, space-separated), checked
// in the order the reference libraries check them, against the signing secrets of
// the webhooks that call the inbox.

// SignatureTolerance is how far webhook-timestamp may be from the time of receipt,
// either way: the Standard Webhooks libraries' default.
const SignatureTolerance = 5 * time.Minute

// Verdict is what the inbox made of a request's signature.
type Verdict string

// The verdicts.
const (
	VerdictValid    Verdict = "valid"    // it matches a secret of a webhook that calls the inbox, with a timestamp in tolerance
	VerdictInvalid  Verdict = "invalid"  // signed, but it does not hold (Signature.Problem says why)
	VerdictUnsigned Verdict = "unsigned" // no webhook-signature header
)

// SignatureProblem says why a signature is invalid.
type SignatureProblem string

// The problems, in the order they are checked.
const (
	SignatureMalformed SignatureProblem = "malformed_header"  // a header is missing or unreadable
	SignatureTooOld    SignatureProblem = "timestamp_too_old" // webhook-timestamp is older than SignatureTolerance
	SignatureTooNew    SignatureProblem = "timestamp_too_new" // webhook-timestamp is further ahead than SignatureTolerance
	SignatureWrong     SignatureProblem = "wrong_secret"      // it matches none of the secrets of the webhooks that call the inbox
)

// Signer is whose signing secret a signature matches.
type Signer struct {
	// Kind is "client" (the secret of a client's ORCID-style registrations) or
	// "webhook" (a platform webhook's); "" when no secret matches.
	Kind string
	// ID is the client's id or the webhook's id.
	ID string
	// Previous is set for a webhook's rotated-out secret, during its overlap.
	Previous bool
}

// The kinds of Signer.
const (
	SignerClient  = "client"
	SignerWebhook = "webhook"
)

// String says whose secret it is: "client APP-…", "webhook 0190… (previous secret)".
func (s Signer) String() string {
	if s.Kind == "" {
		return ""
	}
	out := s.Kind + " " + s.ID
	if s.Previous {
		out += " (previous secret)"
	}
	return out
}

// Signature is the inbox's verdict on a request's signature.
type Signature struct {
	Verdict Verdict
	Problem SignatureProblem // set when Verdict is invalid
	// Detail says the verdict in words, e.g. "webhook-timestamp is 7m0s old (tolerance 5m0s)".
	Detail string
	// Signer is whose secret the signature matches: set when valid, and when only
	// the timestamp is wrong.
	Signer Signer
}

// String is the verdict with its signer or problem, for one line of a list.
func (s Signature) String() string {
	switch {
	case s.Verdict == VerdictValid:
		return "valid (" + s.Signer.String() + ")"
	case s.Verdict == VerdictInvalid:
		return "invalid (" + strings.ReplaceAll(string(s.Problem), "_", " ") + ")"
	}
	return string(s.Verdict)
}

// signingKey is one secret hookd signs with, and whose it is.
type signingKey struct {
	signer Signer
	secret string
}

// signingKeys returns the secrets that sign subscription subID's deliveries (its
// own, or its client's; a rotated-out one during its overlap).
func (s *Store) signingKeys(ctx context.Context, subID int64, now time.Time) ([]signingKey, error) {
	q := `SELECT CASE WHEN s.signing_secret IS NULL THEN 'client' ELSE 'webhook' END,
				CASE WHEN s.signing_secret IS NULL THEN c.id ELSE s.uid END, coalesce(s.signing_secret, c.signing_secret), 0
			FROM subscriptions s LEFT JOIN clients c ON c.id = s.client_id
			WHERE s.id = ?2 AND coalesce(s.signing_secret, c.signing_secret) IS NOT NULL
			UNION ALL
			SELECT 'webhook', uid, previous_secret, 1 FROM subscriptions
			WHERE id = ?2 AND signing_secret IS NOT NULL AND previous_secret IS NOT NULL AND previous_until > ?1
			UNION ALL
			SELECT 'client', c.id, c.previous_signing_secret, 1 FROM subscriptions s JOIN clients c ON c.id = s.client_id
			WHERE s.id = ?2 AND s.signing_secret IS NULL AND c.previous_signing_secret IS NOT NULL AND c.previous_signing_until > ?1`
	args := []any{ms(now), subID}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("signing secrets: %w", err)
	}
	defer rows.Close()
	var keys []signingKey
	for rows.Next() {
		var k signingKey
		var sealed []byte
		if err := rows.Scan(&k.signer.Kind, &k.signer.ID, &sealed, &k.signer.Previous); err != nil {
			return nil, fmt.Errorf("signing secrets: %w", err)
		}
		if k.secret, err = s.box.OpenString(sealed); err != nil {
			return nil, fmt.Errorf("signing secret of %s: %w", k.signer, err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// inboxTargets is the condition of the index of the targets that may call an
// inbox (schema version 31): a path (the target before its query) that has
// '/inbox' in it, or an escape of one of its characters ('/' %2F, 'i' %69, 'n' %6E,
// 'b' %62, 'o' %6F, 'x' %78, either case), without which it cannot decode to one
// under /inbox/: not a target whose query alone has escapes. The queries write it
// as the index does, so that SQLite sees that they imply it; '/inbox' is
// ssrf.InboxPrefix without its last slash.
const inboxTargets = `instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '/inbox') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%2f') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%69') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%6e') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%62') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%6f') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%78') > 0`

// qInboxCallers is the webhooks that may call an inbox, through the index of
// their targets: their id, target, whether the record's iD is appended to it,
// whether they sign with a secret of their own, their client and organisation.
const qInboxCallers = `SELECT id, target, append_orcid, signing_secret IS NOT NULL, coalesce(client_id, ''), coalesce(org_id, 0)
	FROM subscriptions INDEXED BY subscriptions_inbox WHERE ` + inboxTargets

// inboxSigningKeys returns the secrets that sign the deliveries of the webhooks
// that call inbox (their calls reach it at a host ours takes; an organisation's
// webhook whose calls reach an inbox for each record calls the inboxes of its
// members' iDs): each such webhook's own, and the secret of each client whose
// ORCID-style registrations call it (with rotated-out ones during their overlap),
// each once.
func (s *Store) inboxSigningKeys(ctx context.Context, inbox string, now time.Time, ours ReachedAt) ([]signingKey, error) {
	rows, err := s.read.QueryContext(ctx, qInboxCallers)
	if err != nil {
		return nil, fmt.Errorf("signing secrets: %w", err)
	}
	var subs []int64 // one subscription for each secret (or client) to try
	clients := map[string]bool{}
	perRecord := map[int64][]int64{} // the subscriptions that call the inbox if it is a member's of the organisation
	for rows.Next() {
		var id, org int64
		var target, client string
		var appendOrcid, own bool
		if err := rows.Scan(&id, &target, &appendOrcid, &own, &client, &org); err != nil {
			rows.Close()
			return nil, fmt.Errorf("signing secrets: %w", err)
		}
		name, each, ok := webhookInbox(target, appendOrcid, ours)
		switch {
		case !ok:
			continue
		case each:
			if org != 0 {
				perRecord[org] = append(perRecord[org], id)
			}
			continue
		case name != inbox:
			continue
		}
		if !own {
			if client == "" || clients[client] {
				continue // the client's secret is tried once
			}
			clients[client] = true
		}
		subs = append(subs, id)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("signing secrets: %w", err)
	}
	for org, ids := range perRecord {
		var member bool
		err := s.read.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM members WHERE org_id = ? AND orcid = ?)", org, inbox).Scan(&member)
		if err != nil {
			return nil, fmt.Errorf("signing secrets: %w", err)
		}
		if member {
			subs = append(subs, ids...)
		}
	}
	var keys []signingKey
	for _, id := range subs {
		k, err := s.signingKeys(ctx, id, now)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// checkSignature judges a request's signature to inbox at now. The secrets of
// subscription subID (the delivery that sent it, when one did) are tried first;
// those of every webhook that calls the inbox after them. Not every secret hookd
// holds: anyone may post to an inbox, and each secret is opened and tried, so a
// wrongly signed request cost as many as there are platform webhooks (40 ms
// beside 3,000), and told the inbox's reader whose secret, of any owner, signed
// what it had been sent.
func (s *Store) checkSignature(ctx context.Context, h map[string][]string, body []byte, now time.Time, subID int64, inbox string, ours ReachedAt) (Signature, error) {
	sigHeader := headerValue(h, "Webhook-Signature")
	if sigHeader == "" {
		return Signature{Verdict: VerdictUnsigned, Detail: "no webhook-signature header"}, nil
	}
	malformed := func(format string, args ...any) (Signature, error) {
		return Signature{Verdict: VerdictInvalid, Problem: SignatureMalformed, Detail: fmt.Sprintf(format, args...)}, nil
	}
	id, tsHeader := headerValue(h, "Webhook-Id"), headerValue(h, "Webhook-Timestamp")
	switch {
	case id == "" && tsHeader == "":
		return malformed("webhook-signature without webhook-id and webhook-timestamp")
	case id == "":
		return malformed("webhook-signature without webhook-id")
	case tsHeader == "":
		return malformed("webhook-signature without webhook-timestamp")
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return malformed("webhook-timestamp %q is not a whole number of seconds since 1970", tsHeader)
	}
	var sigs []string
	for _, f := range strings.Split(sigHeader, " ") {
		// As the reference libraries read it: "v1," and what follows up to a comma.
		if parts := strings.Split(f, ","); len(parts) >= 2 && parts[0] == "v1" {
			sigs = append(sigs, parts[1])
		}
	}
	if len(sigs) == 0 {
		return malformed("webhook-signature has no v1,<base64> signature")
	}

	// The message as the libraries sign it: the timestamp written back in decimal.
	msg := secret.SignedContent(id, ts, body)
	var signer Signer
	if subID != 0 {
		keys, err := s.signingKeys(ctx, subID, now)
		if err != nil {
			return Signature{}, err
		}
		signer = matchSignature(keys, msg, sigs)
	}
	if signer.Kind == "" {
		keys, err := s.inboxSigningKeys(ctx, inbox, now, ours)
		if err != nil {
			return Signature{}, err
		}
		signer = matchSignature(keys, msg, sigs)
	}

	sent := time.Unix(ts, 0)
	var sig Signature
	switch {
	case now.Sub(sent) > SignatureTolerance:
		sig = Signature{Verdict: VerdictInvalid, Problem: SignatureTooOld,
			Detail: fmt.Sprintf("webhook-timestamp %s is %s before its receipt (tolerance %s)", tsHeader, now.Sub(sent).Round(time.Second), SignatureTolerance)}
	case sent.After(now.Add(SignatureTolerance)):
		sig = Signature{Verdict: VerdictInvalid, Problem: SignatureTooNew,
			Detail: fmt.Sprintf("webhook-timestamp %s is %s after its receipt (tolerance %s)", tsHeader, sent.Sub(now).Round(time.Second), SignatureTolerance)}
	case signer.Kind == "":
		return Signature{Verdict: VerdictInvalid, Problem: SignatureWrong,
			Detail: "the signature matches none of the signing secrets of the webhooks that call this inbox"}, nil
	default:
		return Signature{Verdict: VerdictValid, Signer: signer, Detail: "signed with the signing secret of " + signer.String()}, nil
	}
	if signer.Kind != "" {
		sig.Signer = signer
		sig.Detail += "; the signature matches the signing secret of " + signer.String()
	} else {
		sig.Detail += "; the signature matches none of the signing secrets of the webhooks that call this inbox"
	}
	return sig, nil
}

// matchSignature returns whose key made one of sigs over msg ("" Kind when none).
func matchSignature(keys []signingKey, msg []byte, sigs []string) Signer {
	var sum [sha256.Size]byte
	expected := make([]byte, 0, base64.StdEncoding.EncodedLen(sha256.Size))
	for _, k := range keys {
		key, err := secret.SigningKey(k.secret)
		if err != nil {
			continue // not a whsec_ secret: it signs nothing
		}
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		expected = base64.StdEncoding.AppendEncode(expected[:0], m.Sum(sum[:0]))
		for _, sig := range sigs {
			if hmac.Equal([]byte(sig), expected) {
				return k.signer
			}
		}
	}
	return Signer{}
}
