-- hookd schema, version 9: the finished deliveries of removed webhooks by age, so
-- that retention finds those past delivery.retention without reading, once a minute
-- and inside a write transaction, every one that a removed webhook left.
CREATE INDEX deliveries_removed_done ON deliveries(done_at) WHERE removed_subscription_id IS NOT NULL AND state IN (2, 3);
