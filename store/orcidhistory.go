package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// OrcidWebhookUID returns the public id of client clientID's ORCID-style
// registration of callback for orcid, by which its deliveries are listed
// (DeliveryFilter.Webhook): the live registration's or, once it was removed, the
// most recently removed one's, whose deliveries are kept until retention. When
// the client has none, another client's live registration is Forbidden, as ORCID
// answers for it; no registration at all is NotFound. The callback is found
// under any spelling of its scheme, host and default port (CanonicalURL): of two
// live ones, the one spelled as given, then the canonical one (as OrcidWebhook);
// of removed ones, the most recently removed, whatever its spelling (one removed,
// then registered again under the same spelling, is kept canonical).
//
// The removed ones are found through removed_subscriptions_client_orcid (client
// and record), not every registration the client ever removed.
func (s *Store) OrcidWebhookUID(ctx context.Context, clientID, orcid, callback string) (string, error) {
	var uid, owner string
	target, head, ported, portedHead := receiverSpellings(callback)
	err := s.read.QueryRowContext(ctx, qOrcidWebhookUID, orcid, target, clientID, head, callback, ported, portedHead).Scan(&uid, &owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", errNoOrcidWebhook
	case err != nil:
		return "", fmt.Errorf("find webhook: %w", err)
	case owner != clientID:
		return "", errOrcidWebhookTaken
	}
	return uid, nil
}

// qOrcidWebhookUID finds OrcidWebhookUID's registration: ?1 the record, ?2 the
// callback's canonical form, ?3 the client, ?4 the length of its scheme and host,
// ?5 the callback as given, ?6 and ?7 the callback with its scheme's default port
// written out and that one's length (receiverSpellings).
var qOrcidWebhookUID = `SELECT uid, client_id FROM (
			SELECT uid, coalesce(client_id, '') AS client_id, 1 AS live, 0 AS removed_at, target = ?5 AS as_given, target = ?2 AS canonical FROM subscriptions
				WHERE format = 'empty' AND orcid = ?1 AND ` + spelledAs(4, 2, 7, 6) + `
			UNION ALL
			SELECT uid, client_id, 0, removed_at, target = ?5, target = ?2 FROM removed_subscriptions
				WHERE format = 'empty' AND orcid = ?1 AND ` + spelledAs(4, 2, 7, 6) + ` AND client_id = ?3)
		ORDER BY client_id = ?3 DESC, live DESC, live AND as_given DESC, live AND canonical DESC, removed_at DESC, as_given DESC LIMIT 1`
