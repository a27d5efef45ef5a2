-- Sessions: one per login, the family of every refresh (or sliding) token descended from it.
-- `id` is random and travels in the tokens' `sid` claim. Times are whole seconds since the
-- Unix epoch; `expires_at` is the latest expiry of the session's tokens, after which the row
-- may be flushed.
CREATE TABLE sessions (
    id           TEXT   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    client_addr  TEXT   NOT NULL DEFAULT '',
    user_agent   TEXT   NOT NULL DEFAULT '',
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Each outstanding token's session (none for tokens minted without one), and, once a refresh
-- token is rotated, the jti of the token that replaced it: the chain that reuse detection
-- follows to a family's current token.
ALTER TABLE outstanding_tokens ADD COLUMN session_id TEXT;
ALTER TABLE outstanding_tokens ADD COLUMN replaced_by TEXT;
CREATE INDEX outstanding_tokens_session_idx ON outstanding_tokens (session_id);
