-- hookd schema, version 32: a copy's new revisions as two numbers, not a rewrite of
-- every delivery.
--
-- A database taken for a copy of another (store.Lineage: a restored backup or
-- replica, a copy started elsewhere) gives every delivery it holds a revision past
-- any the original can have given, so that what it sends from now on goes under a
-- new webhook-id. That was an UPDATE of every delivery, in the transaction that
-- starts the daemon: 3 to 12 s at a million deliveries, with nothing sent or taken
-- in meanwhile. The revision is now read through the lineage row: a delivery whose
-- id is below rev_below (those the database held when it moved) is at rev_floor
-- at least, its own msg_rev when that is higher. Both 0 until a move.
ALTER TABLE lineage ADD COLUMN rev_floor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE lineage ADD COLUMN rev_below INTEGER NOT NULL DEFAULT 0;
