-- hookd schema, version 2: ORCID Hub mode. Times are unix milliseconds.

-- hookd's own registration of a record's webhook at the upstream ORCID API, for
-- every record that a member of an organisation with webhook or e-mail enabled.
-- A row means "should be registered"; registered says the upstream confirmed it.
CREATE TABLE upstream_registrations (
  orcid      TEXT    PRIMARY KEY,
  registered INTEGER NOT NULL DEFAULT 0,
  last_error TEXT    NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Secrets hookd makes for itself, sealed with the key file (e.g. the relay key).
CREATE TABLE server_secrets (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
) STRICT, WITHOUT ROWID;
