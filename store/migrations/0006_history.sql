-- hookd schema, version 6: a subscription's history outlives it, and attempt numbers
-- go on after a replay. Times are unix milliseconds.
--
-- Before the store deletes a subscription that has deliveries, it records what the
-- subscription was in removed_subscriptions and points those deliveries there
-- (subscription_id NULL, removed_subscription_id set): they and their attempts stay
-- until retention purges them. The foreign key from deliveries to subscriptions has
-- no ON DELETE action any more, so a delete that skipped this step fails instead of
-- dropping history.
--
-- SQLite changes a foreign key only by rebuilding the table. attempts is rebuilt too:
-- dropping the old deliveries table would otherwise delete every attempt with it.
-- The AUTOINCREMENT counter of deliveries is carried over, so no delivery id (and so
-- no webhook-id) is ever used twice.

CREATE TABLE removed_subscriptions (
  id         INTEGER PRIMARY KEY,
  uid        TEXT    NOT NULL UNIQUE,            -- the public id it had
  client_id  TEXT,                               -- its owner then (the client may be gone too)
  org_id     INTEGER,                            -- or its organisation then
  format     TEXT    NOT NULL,
  target     TEXT    NOT NULL,
  orcid      TEXT,
  removed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX removed_subscriptions_client ON removed_subscriptions(client_id) WHERE client_id IS NOT NULL;
CREATE INDEX removed_subscriptions_org ON removed_subscriptions(org_id) WHERE org_id IS NOT NULL;

ALTER TABLE deliveries RENAME TO deliveries_v5;
CREATE TABLE deliveries (
  id               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: it makes the webhook-id
  subscription_id  INTEGER REFERENCES subscriptions(id),  -- NULL once the subscription is removed
  removed_subscription_id INTEGER REFERENCES removed_subscriptions(id) ON DELETE CASCADE,
  subject          TEXT    NOT NULL,           -- the ORCID iD
  event_type       TEXT    NOT NULL,           -- CREATED or UPDATED (CREATED wins a merge)
  state            INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 in flight, 2 delivered, 3 dead
  due_at           INTEGER NOT NULL,
  lease_until      INTEGER,
  attempts         INTEGER NOT NULL DEFAULT 0, -- every attempt ever made, replays included
  attempt_base     INTEGER NOT NULL DEFAULT 0, -- attempts made before the last replay
  event_count      INTEGER NOT NULL DEFAULT 1,
  first_event_at   INTEGER NOT NULL,
  last_event_at    INTEGER NOT NULL,
  first_attempt_at INTEGER,                    -- since the last replay: give_up_after counts from it
  last_status      INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT    NOT NULL DEFAULT '',
  ok_started_at    INTEGER,
  ok_duration_ms   INTEGER NOT NULL DEFAULT 0,
  ok_response      TEXT    NOT NULL DEFAULT '',
  done_at          INTEGER,
  replayed_at      INTEGER,
  CHECK ((subscription_id IS NULL) != (removed_subscription_id IS NULL))
) STRICT;
INSERT INTO deliveries(id, subscription_id, subject, event_type, state, due_at, lease_until, attempts, event_count,
  first_event_at, last_event_at, first_attempt_at, last_status, last_error, ok_started_at, ok_duration_ms, ok_response, done_at)
SELECT id, subscription_id, subject, event_type, state, due_at, lease_until, attempts, event_count,
  first_event_at, last_event_at, first_attempt_at, last_status, last_error, ok_started_at, ok_duration_ms, ok_response, done_at
FROM deliveries_v5;
DELETE FROM sqlite_sequence WHERE name = 'deliveries';
UPDATE sqlite_sequence SET name = 'deliveries' WHERE name = 'deliveries_v5';

ALTER TABLE attempts RENAME TO attempts_v5;
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
SELECT id, delivery_id, attempt, started_at, duration_ms, status, error, response FROM attempts_v5;
DROP TABLE attempts_v5;
DROP TABLE deliveries_v5;

-- The indexes of version 1, and one for the history of removed subscriptions.
CREATE UNIQUE INDEX deliveries_one_pending ON deliveries(subscription_id, subject) WHERE state = 0;
CREATE INDEX deliveries_due ON deliveries(due_at) WHERE state = 0;
CREATE INDEX deliveries_in_flight ON deliveries(subscription_id, subject, lease_until) WHERE state = 1;
CREATE INDEX deliveries_dead ON deliveries(id) WHERE state = 3;
CREATE INDEX deliveries_subscription ON deliveries(subscription_id);
CREATE INDEX deliveries_removed ON deliveries(removed_subscription_id) WHERE removed_subscription_id IS NOT NULL;
CREATE INDEX attempts_delivery ON attempts(delivery_id);
