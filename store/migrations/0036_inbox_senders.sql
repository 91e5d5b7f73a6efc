-- hookd schema, version 36: whose delivery sent an inbox request, kept on the
-- request; and a removed webhook's append-orcid.
--
-- A request a hookd delivery sent shows only to who sees that delivery (and the
-- operator). The rule read the delivery's row for its owner, so once retention
-- purged the delivery, its owner lost its own requests, which the inbox keeps
-- longer. A request now keeps its sender's owner as it was when the request
-- arrived: a client (with when that client was made, so that one made again under
-- its id reads none of the old one's) or an organisation (whose ids are never
-- given again). The rows already kept are left as they are (rewriting them would
-- write the whole inbox again, bodies and all): their owner is still read
-- through their delivery while it is kept.
ALTER TABLE inbox_requests ADD COLUMN sender_client_id TEXT;
ALTER TABLE inbox_requests ADD COLUMN sender_client_since INTEGER;
ALTER TABLE inbox_requests ADD COLUMN sender_org_id INTEGER;

-- Whether a removed webhook's calls had the record's iD appended to its URL, which
-- tells the inbox a call of it was in flight to: NULL for a webhook an older hookd
-- removed (not known then).
ALTER TABLE removed_subscriptions ADD COLUMN append_orcid INTEGER;
