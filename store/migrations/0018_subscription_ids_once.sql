-- hookd schema, version 18: a subscription's id is never used twice.
--
-- subscriptions.id is an INTEGER PRIMARY KEY without AUTOINCREMENT, so SQLite gave
-- a new row the highest id plus one: once the newest subscriptions were removed,
-- the next one took an id a removed one had had. A list of webhooks pages by id
-- (its cursor is the id that ended a page), so a webhook registered between two
-- pages, after the newest ones were removed, got an id at or below the cursor and
-- was on no page. SQLite adds AUTOINCREMENT only by rebuilding the table (and every
-- table that refers to it); instead, id_marks keeps the highest id ever given, a
-- trigger raises it on every insert (an older hookd's too), and hookd gives each
-- new subscription the mark plus one.
CREATE TABLE id_marks (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;
INSERT INTO id_marks(name, value) SELECT 'subscriptions', coalesce(max(id), 0) FROM subscriptions;
CREATE TRIGGER subscriptions_id_mark AFTER INSERT ON subscriptions
BEGIN
  UPDATE id_marks SET value = NEW.id WHERE name = 'subscriptions' AND value < NEW.id;
END;
