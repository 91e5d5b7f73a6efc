-- hookd schema, version 13: why a delivery out on a call must not be sent again,
-- set while the call runs (an organisation's member removed meanwhile): a call that
-- fails, or is handed back, ends the delivery dead with this, where it would
-- otherwise wait for its retry. Empty for every other row.
ALTER TABLE deliveries ADD COLUMN not_sent TEXT NOT NULL DEFAULT '';
