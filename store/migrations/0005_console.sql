-- hookd schema, version 5: the web console. Times are unix milliseconds. Every
-- statement is IF NOT EXISTS, so a file whose version rows were rolled back by hand
-- (as the upgrade tests do) migrates again.

-- A signed-in console session. The cookie holds a random id; only its SHA-256 is
-- kept. credential is a fingerprint of the secret the session was opened with (the
-- client's secret hash, or a hash of the admin token): rotating the secret changes
-- it, which ends the session.
CREATE TABLE IF NOT EXISTS console_sessions (
  id_hash    BLOB    PRIMARY KEY,
  client_id  TEXT    REFERENCES clients(id) ON DELETE CASCADE, -- NULL: the operator's admin token
  credential BLOB    NOT NULL,
  csrf       TEXT    NOT NULL,
  address    TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  seen_at    INTEGER NOT NULL,
  expires_at INTEGER NOT NULL  -- absolute end; the idle limit is checked against seen_at
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_sessions_client ON console_sessions(client_id);
CREATE INDEX IF NOT EXISTS console_sessions_expires ON console_sessions(expires_at);

-- Console staff credentials: a client bound to an organisation signs in to the
-- console as that organisation's staff. Deleting the organisation removes its
-- staff clients (and so their sessions and tokens).
CREATE TABLE IF NOT EXISTS client_orgs (
  client_id TEXT    PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
  org_id    INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS client_orgs_org ON client_orgs(org_id);
CREATE TRIGGER IF NOT EXISTS organisation_staff_removed BEFORE DELETE ON organisations BEGIN
  DELETE FROM clients WHERE id IN (SELECT client_id FROM client_orgs WHERE org_id = OLD.id);
END;

-- Who did what, in the console and the admin API.
CREATE TABLE IF NOT EXISTS audit_log (
  id        INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  actor     TEXT    NOT NULL, -- a client id, or "admin-token"
  via       TEXT    NOT NULL, -- console or api
  address   TEXT    NOT NULL, -- the remote address of the request
  action    TEXT    NOT NULL, -- e.g. webhook.deactivate
  target    TEXT    NOT NULL DEFAULT '', -- what it acted on, e.g. a webhook's id
  client_id TEXT,             -- the client the target belongs to, when one does
  org_id    INTEGER,          -- the organisation the target belongs to, when one does
  detail    TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log(actor, id);
CREATE INDEX IF NOT EXISTS audit_log_client ON audit_log(client_id, id) WHERE client_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_log_org ON audit_log(org_id, id) WHERE org_id IS NOT NULL;

-- Delivery figures per minute, for the console's charts. The dispatch loop adds to
-- them once per turn, in the transaction that records its outcomes. scope is ''
-- for all of hookd, 'client:ID' or 'org:ID' for the owner of the subscriptions.
CREATE TABLE IF NOT EXISTS stats_minute (
  minute          INTEGER NOT NULL, -- unix time / 60
  scope           TEXT    NOT NULL,
  delivered       INTEGER NOT NULL DEFAULT 0,
  failed          INTEGER NOT NULL DEFAULT 0, -- failed attempts, dead ones included
  dead            INTEGER NOT NULL DEFAULT 0,
  duration_sum_ms INTEGER NOT NULL DEFAULT 0,
  duration_count  INTEGER NOT NULL DEFAULT 0,
  duration_max_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (minute, scope)
) STRICT, WITHOUT ROWID;

-- An organisation's subscriptions (webhook, e-mail) found without scanning the
-- others; ORCID-style and platform rows have no org_id and no entry here.
CREATE INDEX IF NOT EXISTS subscriptions_org_all ON subscriptions(org_id) WHERE org_id IS NOT NULL;
-- The endpoints failing now, for the overview; healthy rows have no entry here.
CREATE INDEX IF NOT EXISTS subscriptions_failing ON subscriptions(failing_since) WHERE failing_since IS NOT NULL;
