-- hookd schema, version 3: a contact address per client, told when hookd
-- deactivates one of its webhooks.
ALTER TABLE clients ADD COLUMN email TEXT NOT NULL DEFAULT '';
