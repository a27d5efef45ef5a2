-- Signing keys made by `tollgate keys rotate`: the active one (retired_at NULL) and the retired
-- ones that still verify until verify_until. The private key or HMAC secret is sealed with
-- AES-256-GCM under KEYS_ENCRYPTION_KEY, which is never stored here; the key configured in
-- SIGNING_KEY appears, once retired, as a row without sealed_key. Public keys are plain PEM.
-- Times are whole seconds since the Unix epoch.
CREATE TABLE signing_keys (
    kid          TEXT   NOT NULL PRIMARY KEY,
    algorithm    TEXT   NOT NULL,
    public_key   TEXT,
    sealed_key   TEXT,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT,
    verify_until BIGINT,
    CHECK (retired_at IS NULL OR verify_until IS NOT NULL)
);
-- At most one active key: of two rotations at once, one fails instead of both signing.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;
