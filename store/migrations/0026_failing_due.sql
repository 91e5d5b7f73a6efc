-- hookd schema, version 26: when a webhook's run of failures expected its next try.
--
-- A run of failures (failing_since) holds only while hookd keeps trying the
-- webhook: each failure records here the latest retry it planned (its backoff, or
-- the Retry-After the receiver asked for; the failure itself when its delivery
-- ended), and a failure that comes more than retry_max_delay after it, or none at
-- all for that long, ends the run. A webhook failing when this version arrives
-- takes what its deliveries show: the latest due time of those waiting, or the
-- latest end of those that died.
ALTER TABLE subscriptions ADD COLUMN failing_due INTEGER;
UPDATE subscriptions SET failing_due = (
	SELECT max(CASE WHEN d.state = 3 THEN d.done_at ELSE d.due_at END) FROM deliveries d
	WHERE d.subscription_id = subscriptions.id AND d.state IN (0, 1, 3))
WHERE failing_since IS NOT NULL;
