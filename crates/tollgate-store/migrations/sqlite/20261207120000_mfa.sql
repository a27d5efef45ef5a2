-- Second factors. A TOTP factor's `secret` is its base32 secret, sealed with
-- KEYS_ENCRYPTION_KEY when one is set; a passkey's is its credential as the WebAuthn library
-- serialises it. A factor is pending (`confirmed_at` NULL) until the user proves they hold it.
-- `last_used_step` is the TOTP time step of the last accepted code: a code works once.
CREATE TABLE mfa_factors (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT   NOT NULL,
    name           TEXT   NOT NULL DEFAULT '',
    secret         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    last_used_step BIGINT,
    last_used_at   BIGINT
);
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id);

-- Recovery codes, stored only as hashes; each works once.
CREATE TABLE mfa_recovery_codes (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- The second step of a login whose password was right (or of an enrolment the policy
-- requires): the `mfa_token` handed to the client, stored only as a hash, bound to the user,
-- the kind of answer the login asked for, the password it was issued under, and the client.
CREATE TABLE mfa_challenges (
    token_hash           TEXT    NOT NULL PRIMARY KEY,
    user_id              BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose              TEXT    NOT NULL,
    login_kind           TEXT    NOT NULL,
    password_fingerprint TEXT    NOT NULL,
    client_addr          TEXT    NOT NULL DEFAULT '',
    user_agent           TEXT    NOT NULL DEFAULT '',
    failures             INTEGER NOT NULL DEFAULT 0,
    created_at           BIGINT  NOT NULL,
    expires_at           BIGINT  NOT NULL
);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);

-- A passkey (WebAuthn) ceremony between its two requests: the library's state for the
-- answer to come, under the hash of the token the client carries back (for the second step of
-- a login, the mfa_token's). Used once; `user_id` is NULL for a passwordless sign-in, whose
-- user the authenticator names.
CREATE TABLE webauthn_ceremonies (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    user_id    BIGINT REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_idx ON webauthn_ceremonies (expires_at);

-- How the session's user signed in (the tokens' `amr` claim), space-separated.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
