-- hookd schema, version 11: access tokens by when they stopped being of use (their
-- expiry, or their revocation if sooner), for the retention pass.
CREATE INDEX tokens_spent ON tokens(min(expires_at, coalesce(revoked_at, expires_at)));
