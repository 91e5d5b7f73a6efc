-- hookd schema, version 28: hookd's own upstream subscription has an index of its own.
--
-- hookd finds its upstream subscription (format 'upstream', one row at most) at
-- every start and whenever an organisation's members or settings change. No index
-- held it, so each lookup read the subscriptions in id order until it came to it,
-- and, without one (no [upstream] configured), read every subscription: 0.4 s of
-- a start beside a million ORCID-style registrations, and as much for each member
-- added. This index holds that row alone.
CREATE INDEX subscriptions_upstream ON subscriptions(id) WHERE format = 'upstream';
