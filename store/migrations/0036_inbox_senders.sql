-- hookd schema, version 36: whose delivery sent an inbox request, kept on the
-- request; and a removed webhook's append-orcid.
--
-- A request a hookd delivery sent shows only to who sees that delivery (and the
-- operator). The rule read the delivery's row for its owner, so once retention
-- purged the delivery, its owner lost its own requests, which the inbox keeps
-- longer. The request now keeps its sender's owner (a client or an
-- organisation), as it was when the request arrived.
ALTER TABLE inbox_requests ADD COLUMN sender_client_id TEXT;
ALTER TABLE inbox_requests ADD COLUMN sender_org_id INTEGER;

UPDATE inbox_requests SET
  sender_client_id = (SELECT coalesce(s.client_id, r.client_id) FROM deliveries d
    LEFT JOIN subscriptions s ON s.id = d.subscription_id
    LEFT JOIN removed_subscriptions r ON r.id = d.removed_subscription_id
    WHERE d.id = inbox_requests.delivery_id),
  sender_org_id = (SELECT coalesce(s.org_id, r.org_id) FROM deliveries d
    LEFT JOIN subscriptions s ON s.id = d.subscription_id
    LEFT JOIN removed_subscriptions r ON r.id = d.removed_subscription_id
    WHERE d.id = inbox_requests.delivery_id)
WHERE delivery_id IS NOT NULL;

-- Whether a removed webhook's calls had the record's iD appended to its URL, which
-- tells the inbox a call of it was in flight to: NULL for a webhook an older hookd
-- removed (not known then).
ALTER TABLE removed_subscriptions ADD COLUMN append_orcid INTEGER;
