-- hookd schema, version 24: the webhooks that call an inbox, by an index of their own.
--
-- The inboxes a list shows are those that hold requests and those that webhooks
-- call (a target path under /inbox/). Without an index, finding the second read
-- every subscription: the operator's list, or that of the client that owns most
-- registrations, read a million rows for the few that call an inbox. The index
-- holds only those few; its condition is the one the queries write (a literal, so
-- SQLite can tell that they imply it).
CREATE INDEX subscriptions_inbox ON subscriptions(target) WHERE instr(target, '/inbox/') > 0;
