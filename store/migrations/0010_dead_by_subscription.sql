-- hookd schema, version 10: a subscription's dead deliveries, for the console's
-- counts of them, which otherwise read every delivery the subscription has kept.
CREATE INDEX deliveries_dead_subscription ON deliveries(subscription_id) WHERE state = 3;
