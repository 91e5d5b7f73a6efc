-- hookd schema, version 27: a client's platform webhooks have an index of their own.
--
-- The platform API's list of a client's webhooks (format 'standard') found them
-- through subscriptions_client, which holds every subscription of the client: a
-- client with an ORCID-style registration per researcher read all of those for
-- each page of its few platform webhooks. This index holds the platform webhooks
-- alone, in id order per client, so a page reads its own rows.
CREATE INDEX subscriptions_platform ON subscriptions(client_id, id) WHERE format = 'standard';
