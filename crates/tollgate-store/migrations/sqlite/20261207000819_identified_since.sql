-- When the user took the identifier its tokens carry (USER_ID_FIELD): set at creation and when
-- that field changes. A token issued (iat) before it was issued to whoever held the value
-- before, and does not authenticate as this user. 0 for accounts older than the rule: their
-- tokens keep working.
ALTER TABLE users ADD COLUMN identified_since BIGINT NOT NULL DEFAULT 0;
