-- hookd schema, version 25: a client's rotated-out signing secret.
--
-- A client's signing secret signs its ORCID-style deliveries (those of every
-- registration it made). A rotation keeps the secret it replaced signing beside
-- the new one until previous_signing_until, as a webhook's own rotation does
-- (subscriptions.previous_secret), so receivers can move to the new one.
ALTER TABLE clients ADD COLUMN previous_signing_secret BLOB;    -- sealed; still signs until previous_signing_until
ALTER TABLE clients ADD COLUMN previous_signing_until  INTEGER;
