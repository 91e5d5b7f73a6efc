-- hookd schema, version 19: a delivery's message revision. A row that has been
-- attempted and then takes in new events (an event merged into a failed row
-- waiting for its retry, a twin folded in, a replay carried by it) is a new
-- message: its webhook-id becomes msg_ID_REV, so a receiver that drops a repeated
-- webhook-id (as it should, for a retry) does not drop the later change with it.
-- NULL is revision 0, msg_ID as before. No NOT NULL: the single event's fan-out,
-- whose merge changes it, must not be able to abort half-way (version 14).
ALTER TABLE deliveries ADD COLUMN msg_rev INTEGER;
