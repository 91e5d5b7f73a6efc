-- hookd schema, version 35: an organisation's id is never used twice.
--
-- organisations.id is an INTEGER PRIMARY KEY without AUTOINCREMENT, so SQLite gave
-- a new row the highest id plus one: once the newest organisation was deleted, the
-- next one made took its id. The command line, the console (its links and forms,
-- /console/organisations/N…, a Clients form's organisation) and the Hub and admin
-- APIs name an organisation by its id, so whatever still held the deleted one's
-- (a page shown before, a script, an API client) acted on the newcomer: a staff
-- client made for the deleted organisation became the newcomer's. As version 18
-- did for subscriptions, id_marks keeps the highest id ever given, a trigger
-- raises it on every insert (an older hookd's too), and hookd gives each new
-- organisation the mark plus one.
--
-- The mark starts above every id an organisation has had that the file still
-- names: the organisations', and those the audit log and removed webhooks' history
-- keep of deleted ones (both read through their indexes of org_id). The per-minute
-- figures are not read: an organisation's go with it, and only live webhooks'
-- owners are counted.
INSERT INTO id_marks(name, value) SELECT 'organisations', max(
  coalesce((SELECT max(id) FROM organisations), 0),
  coalesce((SELECT max(org_id) FROM audit_log WHERE org_id IS NOT NULL), 0),
  coalesce((SELECT max(org_id) FROM removed_subscriptions WHERE org_id IS NOT NULL), 0))
ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value);
CREATE TRIGGER IF NOT EXISTS organisations_id_mark AFTER INSERT ON organisations
BEGIN
  UPDATE id_marks SET value = NEW.id WHERE name = 'organisations' AND value < NEW.id;
END;
