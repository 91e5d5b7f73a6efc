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
// answers for it; no registration at all is NotFound.
func (s *Store) OrcidWebhookUID(ctx context.Context, clientID, orcid, callback string) (string, error) {
	var uid, owner string
	err := s.read.QueryRowContext(ctx, `SELECT uid, client_id FROM (
			SELECT uid, coalesce(client_id, '') AS client_id, 1 AS live, 0 AS removed_at FROM subscriptions
				WHERE format = 'empty' AND orcid = ?1 AND target = ?2
			UNION ALL
			SELECT uid, client_id, 0, removed_at FROM removed_subscriptions
				WHERE format = 'empty' AND orcid = ?1 AND target = ?2 AND client_id = ?3)
		ORDER BY client_id = ?3 DESC, live DESC, removed_at DESC LIMIT 1`, orcid, callback, clientID).Scan(&uid, &owner)
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
