-- Messages to deliver outside the request that caused them (mail, webhooks), kept until they
-- are delivered or given up on, so that nothing is lost when the receiver is down or the
-- process restarts. A sender claims a due row for a lease; several instances never claim one
-- row at once, and a sender that died mid-delivery leaves a lease that simply runs out.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- What delivers it: email or webhook.
    channel         TEXT    NOT NULL,
    -- Where to: an email address, a webhook URL.
    destination     TEXT    NOT NULL,
    -- What it is, for listings and metrics (password_reset, user.created...).
    topic           TEXT    NOT NULL,
    -- The message, as its channel reads it; NULL once delivered (it may hold a secret link).
    body            TEXT,
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    -- While a sender holds it: until when.
    claimed_until   BIGINT,
    delivered_at    BIGINT,
    -- Given up on (a dead letter): retried only by an administrator.
    failed_at       BIGINT,
    last_error      TEXT
);
-- The sender's question: what is due and not delivered or given up on.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created_idx ON outbox (created_at);

-- Single-use tokens of the account flows (password reset, email verification, email change),
-- kept only as a SHA-256 hash. A token is void once used, once expired, once a newer one of
-- its purpose is issued to the user, and (for a reset) once the password it was issued under
-- has changed.
CREATE TABLE account_tokens (
    token_hash   TEXT    NOT NULL PRIMARY KEY,
    purpose      TEXT    NOT NULL,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The password fingerprint the token was issued under.
    password_fingerprint TEXT NOT NULL,
    -- For an email change: the new address.
    email        TEXT,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose);
