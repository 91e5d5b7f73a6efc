-- hookd schema, version 1. Times are unix milliseconds.

CREATE TABLE clients (
  id             TEXT    PRIMARY KEY,          -- APP-XXXXXXXXXXXXXXXX or an id given at creation
  name           TEXT    NOT NULL UNIQUE,
  secret_salt    BLOB    NOT NULL,
  secret_hash    BLOB    NOT NULL,             -- HMAC-SHA256(salt, client secret)
  scopes         TEXT    NOT NULL,             -- space-separated: /webhook /notify /admin
  signing_secret BLOB    NOT NULL,             -- sealed whsec_ secret for ORCID-style deliveries
  created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
  id           INTEGER PRIMARY KEY,
  client_id    TEXT    NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
  access_hash  BLOB    NOT NULL UNIQUE,
  refresh_hash BLOB    UNIQUE,
  scope        TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  revoked_at   INTEGER
) STRICT;
CREATE INDEX tokens_client ON tokens(client_id);

CREATE TABLE organisations (
  id                 INTEGER PRIMARY KEY,
  name               TEXT    NOT NULL UNIQUE,
  tech_contact_email TEXT    NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
  org_id     INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  orcid      TEXT    NOT NULL,
  name       TEXT    NOT NULL DEFAULT '',
  email      TEXT    NOT NULL DEFAULT '',
  eppn       TEXT    NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  PRIMARY KEY (org_id, orcid)
) STRICT, WITHOUT ROWID;
CREATE INDEX members_orcid ON members(orcid);

-- A subscription says who is told about which records, and how.
CREATE TABLE subscriptions (
  id              INTEGER PRIMARY KEY,
  uid             TEXT    NOT NULL UNIQUE,     -- public id (UUID)
  client_id       TEXT    REFERENCES clients(id) ON DELETE CASCADE,
  org_id          INTEGER REFERENCES organisations(id) ON DELETE CASCADE,
  format          TEXT    NOT NULL CHECK (format IN ('empty', 'hub', 'standard', 'email', 'upstream')),
  target          TEXT    NOT NULL,            -- callback URL, or an e-mail address
  orcid           TEXT,                        -- only this record; with org_id NULL too: all records
  types           TEXT,                        -- ",UPDATED,CREATED," or NULL for every type
  description     TEXT    NOT NULL DEFAULT '',
  headers         TEXT,                        -- JSON object of custom headers
  auth_type       TEXT    NOT NULL DEFAULT 'noauth',
  auth_username   TEXT    NOT NULL DEFAULT '',
  auth_client_id  TEXT    NOT NULL DEFAULT '',
  auth_token_url  TEXT    NOT NULL DEFAULT '',
  auth_secret     BLOB,                        -- sealed password or client secret
  signing_secret  BLOB,                        -- sealed whsec_; NULL means the owner client's
  previous_secret BLOB,                        -- sealed; still signs until previous_until
  previous_until  INTEGER,
  apikey          BLOB,                        -- sealed Hub apikey header value
  append_orcid    INTEGER NOT NULL DEFAULT 0,
  active          INTEGER NOT NULL DEFAULT 1,
  reason          TEXT    NOT NULL DEFAULT '', -- why hookd deactivated it
  failing_since   INTEGER,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX subscriptions_orcid_webhook ON subscriptions(orcid, target) WHERE format = 'empty';
CREATE INDEX subscriptions_by_orcid ON subscriptions(orcid) WHERE active = 1 AND orcid IS NOT NULL;
CREATE INDEX subscriptions_by_org ON subscriptions(org_id) WHERE active = 1 AND org_id IS NOT NULL;
CREATE INDEX subscriptions_everything ON subscriptions(id) WHERE active = 1 AND orcid IS NULL AND org_id IS NULL;
CREATE INDEX subscriptions_client ON subscriptions(client_id);

-- The outbox: one row per (subscription, record) awaiting a call.
CREATE TABLE deliveries (
  id               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: it makes the webhook-id
  subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  subject          TEXT    NOT NULL,           -- the ORCID iD
  event_type       TEXT    NOT NULL,           -- CREATED or UPDATED (CREATED wins a merge)
  state            INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 in flight, 2 delivered, 3 dead
  due_at           INTEGER NOT NULL,
  lease_until      INTEGER,
  attempts         INTEGER NOT NULL DEFAULT 0,
  event_count      INTEGER NOT NULL DEFAULT 1,
  first_event_at   INTEGER NOT NULL,
  last_event_at    INTEGER NOT NULL,
  first_attempt_at INTEGER,
  last_status      INTEGER NOT NULL DEFAULT 0,
  last_error       TEXT    NOT NULL DEFAULT '',
  -- The successful attempt is kept here rather than as an attempts row, which saves a
  -- row and an index entry per delivery; Attempts shows it with the failed ones.
  ok_started_at    INTEGER,
  ok_duration_ms   INTEGER NOT NULL DEFAULT 0,
  ok_response      TEXT    NOT NULL DEFAULT '',
  done_at          INTEGER
) STRICT;
CREATE UNIQUE INDEX deliveries_one_pending ON deliveries(subscription_id, subject) WHERE state = 0;
CREATE INDEX deliveries_due ON deliveries(due_at) WHERE state = 0;
-- In-flight rows are few (at most the claimed batch): this small index answers "is this
-- pair in flight?" for the claim and lists leases for crash recovery.
CREATE INDEX deliveries_in_flight ON deliveries(subscription_id, subject, lease_until) WHERE state = 1;
-- Dead rows are few and wait for an operator: counted for metrics, listed for replay.
CREATE INDEX deliveries_dead ON deliveries(id) WHERE state = 3;
-- Never changes after insert: serves ON DELETE CASCADE and per-subscription listings.
CREATE INDEX deliveries_subscription ON deliveries(subscription_id);

-- The log of every failed try (a success is kept on its delivery row).
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
CREATE INDEX attempts_delivery ON attempts(delivery_id);

-- Intake idempotency: a repeated key within 24 h answers the first response.
CREATE TABLE idempotency (
  client_id  TEXT    NOT NULL,
  key        TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  response   TEXT    NOT NULL,
  PRIMARY KEY (client_id, key)
) STRICT, WITHOUT ROWID;
