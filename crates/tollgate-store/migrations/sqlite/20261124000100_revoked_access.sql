-- Access tokens revoked before their expiry (ACCESS_TOKEN_REVOCATION): one row per revocation,
-- of one token (kind 'jti', subject = its jti), of a session (kind 'sid'), or of a user's
-- tokens issued before a time (kind 'user', subject = the user-id claim, issued_before set).
-- A row may be deleted once expires_at has passed: no token it affects is alive then.
CREATE TABLE revoked_access (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT   NOT NULL,
    subject       TEXT   NOT NULL,
    issued_before BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX revoked_access_expires_idx ON revoked_access (expires_at);
