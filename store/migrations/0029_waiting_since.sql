-- hookd schema, version 29: a delivery handed back unattempted keeps how long it
-- has waited.
--
-- The dispatcher claims due rows and hands back, unattempted, those of a host at
-- its per_host limit (or one that has stopped answering), each due again a tick or
-- more later. The oldest due delivery's age (hookd_oldest_due_delivery_age_seconds,
-- the console's overview) was read from due_at alone, so a backlog handed back
-- turn after turn looked a tick old while it had waited for minutes. waiting_since
-- is the due time a row had when it was first handed back, kept across hand-backs
-- and cleared when the row is attempted (or replayed); the index holds only the
-- rows that have it, so the age reads it at once and nothing else pays for it.
ALTER TABLE deliveries ADD COLUMN waiting_since INTEGER;
CREATE INDEX deliveries_waiting ON deliveries(waiting_since) WHERE state = 0 AND waiting_since IS NOT NULL;
