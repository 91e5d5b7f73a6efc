-- hookd schema, version 21: a row that an older hookd let take in new events after
-- an attempt (it kept its webhook-id then) goes out as a new message. Which of a
-- waiting row's events came after its attempts is not known: every waiting or
-- in-flight row that has been attempted and carries more than one event is
-- revised, trading a repeat under a new id for a change a receiver would drop.
UPDATE deliveries SET msg_rev = 1 WHERE state IN (0, 1) AND attempts > 0 AND event_count > 1 AND msg_rev IS NULL;
