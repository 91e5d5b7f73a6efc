-- hookd schema, version 22: version 21 revised every attempted waiting row of more
-- than one event; those whose events all came before their first attempt (a
-- coalescing window's, the usual case) carry nothing their receiver did not have,
-- and keep their webhook-id. An event taken in after an attempt has its time at or
-- after the attempt's start (first_attempt_at); no such row is touched, nor one
-- revised by this hookd since (it took in such an event).
UPDATE deliveries SET msg_rev = NULL
WHERE msg_rev = 1 AND state IN (0, 1) AND first_attempt_at IS NOT NULL AND last_event_at < first_attempt_at;
