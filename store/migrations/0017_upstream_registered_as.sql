-- hookd schema, version 17: what hookd's upstream subscription registered records
-- as: its client id at the upstream ORCID API and the base of the callbacks it
-- gave (http.public_url). When either changes, every record is registered again:
-- ORCID keeps a webhook by record and callback, and went on calling the old
-- address, while hookd took the records as registered. NULL: not known yet (a
-- database from before), taken as what is configured now.
ALTER TABLE subscriptions ADD COLUMN registered_as TEXT;
