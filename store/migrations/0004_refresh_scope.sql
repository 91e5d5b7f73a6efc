-- hookd schema, version 4: a refresh token keeps the scope it was issued with, even
-- after it was used for a narrower access token (RFC 6749 §6).
ALTER TABLE tokens ADD COLUMN refresh_scope TEXT;
