-- hookd schema, version 23: which state of the database this is.
--
-- A delivery's id makes its webhook-id (msg_<id>), by which receivers drop repeats.
-- A restored backup, a restored Litestream replica or a copy started elsewhere
-- holds the id counter of the moment it was taken: the deliveries the original
-- made after it would see their ids given again, to other messages, which such
-- receivers would drop. The daemon keeps a mark here and the same mark in its lock
-- file beside the database, and makes a new one at every start, every minute and
-- at its stop; a database whose mark is not the lock file's is such a copy, and the
-- ids of its new deliveries move past any the original can have given
-- (store.Lineage).
CREATE TABLE lineage (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  mark TEXT    NOT NULL
) STRICT;
