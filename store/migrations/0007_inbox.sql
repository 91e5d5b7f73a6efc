-- hookd schema, version 7: the inbox, a receiver built into hookd for developers
-- (/inbox/{name}/…). Times are unix milliseconds.

-- How an inbox answers, as its developer set it; an inbox without a row answers 204.
CREATE TABLE inboxes (
  name        TEXT    PRIMARY KEY,
  status      INTEGER NOT NULL,              -- the status it answers with
  retry_after INTEGER NOT NULL DEFAULT 0,    -- seconds, sent as Retry-After (429, 503)
  location    TEXT    NOT NULL DEFAULT '',   -- sent as Location (3xx)
  delay_ms    INTEGER NOT NULL DEFAULT 0,    -- how long it waits before answering
  updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- What the inboxes received: at most [inbox] keep_per_inbox per inbox and keep_total
-- in all, the oldest deleted by the transaction that inserts a new one.
CREATE TABLE inbox_requests (
  id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: watchers ask for "after id N"
  inbox           TEXT    NOT NULL,
  received_at     INTEGER NOT NULL,
  method          TEXT    NOT NULL,
  path            TEXT    NOT NULL,            -- as sent (percent-encoding kept), without the query
  query           TEXT    NOT NULL DEFAULT '',
  headers         TEXT    NOT NULL,            -- JSON [[name, value], ...]
  body            BLOB    NOT NULL,
  remote_addr     TEXT    NOT NULL,
  verdict         TEXT    NOT NULL CHECK (verdict IN ('valid', 'invalid', 'unsigned')),
  problem         TEXT    NOT NULL DEFAULT '', -- why invalid: wrong_secret, timestamp_too_old, timestamp_too_new, malformed_header
  detail          TEXT    NOT NULL DEFAULT '', -- the verdict in words
  signer_kind     TEXT    NOT NULL DEFAULT '', -- whose secret the signature matches: client or webhook
  signer_id       TEXT    NOT NULL DEFAULT '', -- the client's id or the webhook's id
  signer_previous INTEGER NOT NULL DEFAULT 0,  -- a webhook's rotated-out secret, during its overlap
  delivery_id     INTEGER,                     -- the hookd delivery that sent it (webhook-id msg_N);
  attempt         INTEGER,                     -- no foreign key: retention purges deliveries
  answer_status   INTEGER NOT NULL,            -- what the inbox answered
  answer_delay_ms INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX inbox_requests_inbox ON inbox_requests(inbox, id);
CREATE INDEX inbox_requests_delivery ON inbox_requests(delivery_id, attempt) WHERE delivery_id IS NOT NULL;

-- The subscriptions with a signing secret of their own (platform webhooks), which the
-- inbox's signature check reads without scanning every registration.
CREATE INDEX subscriptions_signed ON subscriptions(id) WHERE signing_secret IS NOT NULL;
