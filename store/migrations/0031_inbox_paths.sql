-- hookd schema, version 31: the index of the webhooks that may call an inbox holds
-- the targets whose path may decode to one under /inbox/, and no other.
--
-- Version 30's held every target with an escape anywhere, in its query too: a
-- client whose callback URLs carry an encoded query (…/cb?next=https%3A%2F%2F…)
-- had each of its webhooks in it, and each request to an inbox with a wrong
-- signature, which anyone can send, and each look at who calls an inbox (an inbox
-- page, each check of its owner) read and decoded them all: 2.9 s a request beside
-- 1,000,000 such registrations. A path decodes to one with '/inbox' in it only when
-- it has each of these characters written out or escaped: '/inbox' itself, or an
-- escape of one of them ('/' %2F, 'i' %69, 'n' %6E, 'b' %62, 'o' %6F, 'x' %78, in
-- either case), before its query ('?'); lower() reads both cases at once. The
-- condition is the one the queries write (a literal, so SQLite can tell that they
-- imply it).
DROP INDEX subscriptions_inbox;
CREATE INDEX subscriptions_inbox ON subscriptions(target) WHERE instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '/inbox') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%2f') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%69') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%6e') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%62') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%6f') > 0 OR instr(lower(substr(target, 1, instr(target || '?', '?') - 1)), '%78') > 0;
