-- hookd schema, version 34: an index of removed ORCID-style registrations by
-- client and record.
--
-- The deliveries list of an ORCID-style registration (?orcid=…&callback=…) finds
-- the client's removed registration of that record and callback
-- (OrcidWebhookUID). removed_subscriptions had an index by client alone, so the
-- list read every registration the client ever removed, a row each, and one that
-- registers and removes a webhook per record has one for each record it followed
-- until retention. This one seeks to the client's registrations of the record.
CREATE INDEX removed_subscriptions_client_orcid ON removed_subscriptions(client_id, orcid)
  WHERE client_id IS NOT NULL AND orcid IS NOT NULL;
