-- Every login attempt on an existing account: who, when, from where, and how it ended.
-- Attempts naming no account are not kept (a mistyped password often lands in the username).
CREATE TABLE login_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    succeeded   BOOLEAN NOT NULL,
    -- Why it failed: wrong_password, inactive or locked; NULL on success.
    reason      TEXT,
    client_addr TEXT    NOT NULL,
    user_agent  TEXT,
    at          BIGINT  NOT NULL
);
CREATE INDEX login_events_user_idx ON login_events (user_id, at);
CREATE INDEX login_events_at_idx ON login_events (at);

-- Consecutive failed logins per account (user:<id>) or, for identifiers that name no account,
-- per identifier (name:<lower-case identifier>), so that both lock the same way and a lock
-- reveals nothing about which accounts exist. A row goes away on a successful login.
CREATE TABLE login_lockouts (
    key          TEXT    NOT NULL PRIMARY KEY,
    failures     BIGINT  NOT NULL,
    last_failure BIGINT  NOT NULL,
    -- Locked until this time; NULL while under the threshold.
    locked_until BIGINT
);
