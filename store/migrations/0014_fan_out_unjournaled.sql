-- hookd schema, version 14: a single event's fan-out needs no statement journal.
--
-- Inside a transaction, SQLite copies every page a statement changes before it
-- changes it (the statement journal), so that a statement that aborts half-way can
-- be undone alone. The intake's fan-out (INSERT … SELECT with an upsert) paid for
-- that on every event: about a tenth of an event's work, 5 pages copied. SQLite
-- leaves the journal out when nothing in a statement can abort it half-way: no SQL
-- function call, no immediate foreign key, and no constraint with ABORT checked on
-- an insert or on the upsert's update. This version makes the fan-out such a
-- statement:
--
--   - subscriptions.event_mask says which event types a subscription takes, one bit
--     each (UPDATED 1, CREATED 2; NULL takes every type), so the fan-out matches
--     with & instead of instr() on the types list. types stays what the owner gave;
--     two triggers make the mask from it whenever it is written, whichever hookd
--     writes it (an older one still running beside this file knows no mask). The
--     upstream subscription's work orders are neither type: its mask is 0.
--   - the foreign keys of deliveries are checked at the commit (DEFERRABLE INITIALLY
--     DEFERRED). A delete that would orphan a delivery still fails, at the commit.
--     ON DELETE CASCADE still acts at once.
--   - event_type, event_count and last_event_at, the columns the upsert changes, are
--     no longer NOT NULL: the upsert's update checks NOT NULL with ABORT whatever
--     the statement says. Every statement that writes them gives them a value, and
--     a NULL read back fails the scan into Go.
--
-- SQLite changes a foreign key or a NOT NULL only by rebuilding the table, and
-- attempts is rebuilt too (as in version 6): dropping the old deliveries table would
-- otherwise delete every attempt with it. The AUTOINCREMENT counter of deliveries is
-- carried over, so no delivery id (and so no webhook-id) is ever used twice.

ALTER TABLE subscriptions ADD COLUMN event_mask INTEGER;
CREATE TRIGGER subscriptions_event_mask_insert AFTER INSERT ON subscriptions WHEN NEW.types IS NOT NULL
BEGIN
  UPDATE subscriptions SET event_mask =
    (CASE WHEN instr(NEW.types, ',UPDATED,') > 0 THEN 1 ELSE 0 END) |
    (CASE WHEN instr(NEW.types, ',CREATED,') > 0 THEN 2 ELSE 0 END)
  WHERE id = NEW.id;
END;
CREATE TRIGGER subscriptions_event_mask_update AFTER UPDATE OF types ON subscriptions
BEGIN
  UPDATE subscriptions SET event_mask = CASE WHEN NEW.types IS NULL THEN NULL ELSE
    (CASE WHEN instr(NEW.types, ',UPDATED,') > 0 THEN 1 ELSE 0 END) |
    (CASE WHEN instr(NEW.types, ',CREATED,') > 0 THEN 2 ELSE 0 END) END
  WHERE id = NEW.id;
END;
UPDATE subscriptions SET types = types WHERE types IS NOT NULL; -- the masks of the webhooks there are
-- The fan-out's three ways to a record's subscriptions carry the mask, so that it
-- reads no subscription row (SQLite counts a partial index's "active = 1" as
-- covered, but not its IS NULL terms: the webhooks for every record are indexed
-- with the columns of their condition too). The id comes before the mask, so each
-- way still gives its subscriptions in id order (the order the fan-out makes rows
-- in, and the admin list's).
DROP INDEX subscriptions_by_orcid;
DROP INDEX subscriptions_by_org;
DROP INDEX subscriptions_everything;
CREATE INDEX subscriptions_by_orcid ON subscriptions(orcid, id, event_mask) WHERE active = 1 AND orcid IS NOT NULL;
CREATE INDEX subscriptions_by_org ON subscriptions(org_id, id, event_mask) WHERE active = 1 AND org_id IS NOT NULL;
CREATE INDEX subscriptions_everything ON subscriptions(id, event_mask, active, orcid, org_id) WHERE active = 1 AND orcid IS NULL AND org_id IS NULL;

ALTER TABLE deliveries RENAME TO deliveries_v13;
CREATE TABLE deliveries (
  id               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: it makes the webhook-id
  subscription_id  INTEGER REFERENCES subscriptions(id) DEFERRABLE INITIALLY DEFERRED,  -- NULL once the subscription is removed
  removed_subscription_id INTEGER REFERENCES removed_subscriptions(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  subject          TEXT    NOT NULL,           -- the ORCID iD
  event_type       TEXT,                       -- CREATED or UPDATED (CREATED wins a merge); never NULL
  state            INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 in flight, 2 delivered, 3 dead
  due_at           INTEGER NOT NULL,
  lease_until      INTEGER,
  attempts         INTEGER NOT NULL DEFAULT 0, -- every attempt ever made, replays included
  attempt_base     INTEGER NOT NULL DEFAULT 0, -- attempts made before the last replay
  event_count      INTEGER DEFAULT 1,          -- never NULL
  first_event_at   INTEGER NOT NULL,
  last_event_at    INTEGER,                    -- never NULL
  first_attempt_at INTEGER,                    -- since the last replay: give_up_after counts from it
  last_status      INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT    NOT NULL DEFAULT '',
  ok_started_at    INTEGER,
  ok_duration_ms   INTEGER NOT NULL DEFAULT 0,
  ok_response      TEXT    NOT NULL DEFAULT '',
  done_at          INTEGER,
  replayed_at      INTEGER,
  not_sent         TEXT    NOT NULL DEFAULT '', -- why a delivery out on a call must not be sent again (version 13)
  CHECK ((subscription_id IS NULL) != (removed_subscription_id IS NULL))
) STRICT;
INSERT INTO deliveries(id, subscription_id, removed_subscription_id, subject, event_type, state, due_at, lease_until,
  attempts, attempt_base, event_count, first_event_at, last_event_at, first_attempt_at, last_status, last_error,
  ok_started_at, ok_duration_ms, ok_response, done_at, replayed_at, not_sent)
SELECT id, subscription_id, removed_subscription_id, subject, event_type, state, due_at, lease_until,
  attempts, attempt_base, event_count, first_event_at, last_event_at, first_attempt_at, last_status, last_error,
  ok_started_at, ok_duration_ms, ok_response, done_at, replayed_at, not_sent
FROM deliveries_v13;
DELETE FROM sqlite_sequence WHERE name = 'deliveries';
UPDATE sqlite_sequence SET name = 'deliveries' WHERE name = 'deliveries_v13';

ALTER TABLE attempts RENAME TO attempts_v13;
CREATE TABLE attempts (
  id          INTEGER PRIMARY KEY,
  delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  started_at  INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  status      INTEGER NOT NULL,                -- HTTP status, 0 when there was no response
  error       TEXT    NOT NULL DEFAULT '',
  response    TEXT    NOT NULL DEFAULT ''      -- the first bytes of the response body
) STRICT;
INSERT INTO attempts(id, delivery_id, attempt, started_at, duration_ms, status, error, response)
SELECT id, delivery_id, attempt, started_at, duration_ms, status, error, response FROM attempts_v13;
DROP TABLE attempts_v13;
DROP TABLE deliveries_v13;

-- The indexes of versions 6, 8, 9 and 10, as they were.
CREATE UNIQUE INDEX deliveries_one_pending ON deliveries(subscription_id, subject) WHERE state = 0;
CREATE INDEX deliveries_due ON deliveries(due_at) WHERE state = 0;
CREATE INDEX deliveries_in_flight ON deliveries(subscription_id, subject, lease_until) WHERE state = 1;
CREATE INDEX deliveries_dead ON deliveries(id) WHERE state = 3;
CREATE INDEX deliveries_subscription ON deliveries(subscription_id);
CREATE INDEX deliveries_removed ON deliveries(removed_subscription_id) WHERE removed_subscription_id IS NOT NULL;
CREATE INDEX deliveries_done ON deliveries(done_at) WHERE state = 2;
CREATE INDEX deliveries_removed_done ON deliveries(done_at) WHERE removed_subscription_id IS NOT NULL AND state IN (2, 3);
CREATE INDEX deliveries_dead_subscription ON deliveries(subscription_id) WHERE state = 3;
CREATE INDEX attempts_delivery ON attempts(delivery_id);
