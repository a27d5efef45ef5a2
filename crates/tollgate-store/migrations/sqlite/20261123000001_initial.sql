-- Users, with Django's auth_user fields plus a phone and free-form profile fields (JSON text).
-- Times are whole seconds since the Unix epoch.
CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username     TEXT    NOT NULL,
    email        TEXT    NOT NULL DEFAULT '',
    phone        TEXT,
    first_name   TEXT    NOT NULL DEFAULT '',
    last_name    TEXT    NOT NULL DEFAULT '',
    password     TEXT    NOT NULL,
    is_active    BOOLEAN NOT NULL DEFAULT TRUE,
    is_staff     BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    date_joined  BIGINT  NOT NULL,
    last_login   BIGINT,
    profile      TEXT    NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email <> '';
CREATE UNIQUE INDEX users_phone_key ON users (phone) WHERE phone IS NOT NULL;

-- Every refresh or sliding token issued, by jti. The raw token is never stored.
CREATE TABLE outstanding_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    jti        TEXT   NOT NULL,
    user_id    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT,
    expires_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX outstanding_tokens_jti_key ON outstanding_tokens (jti);
CREATE INDEX outstanding_tokens_user_idx ON outstanding_tokens (user_id);
CREATE INDEX outstanding_tokens_expires_idx ON outstanding_tokens (expires_at);

-- Blacklisted token ids. Keyed by jti itself so that the hot-path lookup needs no join, and
-- the unique key makes "blacklist this token" an atomic claim: one writer wins.
CREATE TABLE blacklisted_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    jti            TEXT   NOT NULL,
    blacklisted_at BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX blacklisted_tokens_jti_key ON blacklisted_tokens (jti);
CREATE INDEX blacklisted_tokens_expires_idx ON blacklisted_tokens (expires_at);
