-- hookd schema, version 38: a client or an organisation being removed.
--
-- Removing a client of 980,000 webhooks deleted them, and the client, in one
-- transaction: every other write waited 51.7 s for it. The removal now marks its
-- client (or organisation, and its staff clients) in one short transaction, and
-- then removes its webhooks a batch a transaction, the row itself last. From the
-- mark on, the client's tokens and secret are refused, its webhooks are sent
-- nothing, and the lists leave it out; a removal stopped half-way is finished
-- forward (by the command run again, or by the daemon), never undone.
-- removing_at: when the removal last stepped (its mark, then each of its
-- transactions), so that a daemon leaves alone one that another process runs;
-- NULL: not being removed.
ALTER TABLE clients ADD COLUMN removing_at INTEGER;
ALTER TABLE organisations ADD COLUMN removing_at INTEGER;
