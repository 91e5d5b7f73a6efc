-- hookd schema, version 16: a delivery's attempts by their number. A delivery's log
-- keeps its first 10 failed attempts and its last 40, and each new one forgets the
-- one that falls out by its number: through attempts_delivery alone, that read the
-- whole log of a delivery whose log had grown longer under an older hookd (a
-- receiver answering "Retry-After: 1" for days leaves 100,000s), for each outcome.
-- The new index serves everything the old one did (a delivery's attempts, and the
-- delete of a delivery's, ON DELETE CASCADE).
CREATE INDEX attempts_delivery_attempt ON attempts(delivery_id, attempt);
DROP INDEX IF EXISTS attempts_delivery;
