-- Keys that trusted backends present (`Authorization: Api-Key <key>`) to have tokens issued to
-- users they name. Only a SHA-256 hash of each key is kept: the key is shown once, when it is
-- made, and a copy of the database opens nothing.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Who holds it, as the operator named it; unique among live keys.
    name         TEXT    NOT NULL,
    -- What it may do, separated by spaces (tokens:issue).
    scopes       TEXT    NOT NULL,
    -- Hex SHA-256 of the key.
    key_hash     TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    -- Set when revoked; the row stays, for the record of what it issued.
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE UNIQUE INDEX api_keys_name_key ON api_keys (name) WHERE revoked_at IS NULL;
