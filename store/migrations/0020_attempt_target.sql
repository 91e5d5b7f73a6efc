-- hookd schema, version 20: where each failed attempt went. A webhook's URL may
-- change (a PATCH of targetURL, an organisation's new URL) while a delivery
-- retries: its history showed the URL of now beside errors from the URL of then.
-- NULL: not known (an attempt logged before, or a success, whose URL is the
-- webhook's at the time).
ALTER TABLE attempts ADD COLUMN target TEXT;
