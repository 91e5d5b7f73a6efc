-- hookd schema, version 8: what the retention pass deletes, found by age. Without
-- these it read, once a minute, every idempotency key (inside a write transaction)
-- and every delivery the retention keeps (on a read connection) to find the few
-- that had aged out since the minute before.
CREATE INDEX idempotency_created ON idempotency(created_at);
CREATE INDEX deliveries_done ON deliveries(done_at) WHERE state = 2;
