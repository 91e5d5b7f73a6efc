-- hookd schema, version 37: the deactivated webhooks by what the lists and the
-- metrics ask of them. Only deactivated rows enter these indexes: registering a
-- webhook, taking in an event and delivering it write none of them; deactivating
-- and activating one write one entry in each.
--
-- With half of a million webhooks switched off (a 410 each), their one index
-- (subscriptions_inactive, by id) was no help: a scrape of /metrics read each of
-- them for its reason, to leave out those switched off on purpose (0.5 s; and the
-- console's overview read it too), a list of the webhooks of one record read each
-- for its iD (0.4 s), and the list of one owner's deactivated webhooks read every
-- owner's (0.4 s).
--
-- Those switched off on purpose (none given, by an operator, being removed,
-- hookd's upstream registration without [upstream]): the metrics count the others
-- as all deactivated ones less these. The condition is the one the query writes (a
-- literal, so SQLite can tell that it implies it).
CREATE INDEX subscriptions_off_on_purpose ON subscriptions(id)
  WHERE active = 0 AND reason IN ('', 'deactivated by an operator', 'being removed', 'upstream registration is not configured');
-- A record's deactivated webhooks (ORCID-style and platform ones have an iD).
CREATE INDEX subscriptions_off_by_orcid ON subscriptions(orcid) WHERE active = 0 AND orcid IS NOT NULL;
-- A client's deactivated webhooks, in id order.
CREATE INDEX subscriptions_off_by_client ON subscriptions(client_id, id) WHERE active = 0 AND client_id IS NOT NULL;
