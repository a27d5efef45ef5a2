-- Pre-published keys (`tollgate keys rotate --publish-first`): a new key is listed in the key
-- set, and verifies, before it signs. It signs from signs_from; the key it replaces keeps
-- signing until that same time, which is its retired_at (then in the future). NULL: the key
-- signed from the moment it was stored. Whole seconds since the Unix epoch.
ALTER TABLE signing_keys ADD COLUMN signs_from BIGINT;
