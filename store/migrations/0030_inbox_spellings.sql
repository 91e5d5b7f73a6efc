-- hookd schema, version 30: the index of the webhooks that call an inbox holds
-- every target whose path hookd reads as one under /inbox/.
--
-- hookd routes a request by its path decoded: /inbox%2Fdemo/x and /%69nbox/demo/x
-- reach the inbox demo as /inbox/demo/x does. Version 24's index held only the
-- targets with '/inbox/' written out, so a webhook that called an inbox by another
-- spelling was none of its callers: a request of its sent again by hand was
-- wrong_secret, its owner did not see the inbox, and another client whose webhook
-- called the inbox by its plain name saw it, the requests of the first one's
-- deliveries too, as its only caller's. A path that decodes to one under /inbox/
-- has '/inbox' written out or an escape ('%'); so has an organisation's webhook at
-- …/inbox, to which hookd appends the record's iD (/inbox/{iD}). The queries decode
-- each target the index holds and keep those that reach the inbox; targets with an
-- escape are few. The condition is the one the queries write (a literal, so SQLite
-- can tell that they imply it).
DROP INDEX subscriptions_inbox;
CREATE INDEX subscriptions_inbox ON subscriptions(target) WHERE instr(target, '/inbox') > 0 OR instr(target, '%') > 0;
