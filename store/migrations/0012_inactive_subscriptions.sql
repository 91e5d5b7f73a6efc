-- hookd schema, version 12: the deactivated subscriptions, for the retention pass,
-- which turns what they still have waiting dead a batch at a time (a deactivation
-- turns at most a batch dead in its own transaction).
CREATE INDEX subscriptions_inactive ON subscriptions(id) WHERE active = 0;
