-- A rotation's link from the token it spent to the token it issued (for reuse detection) moves
-- from outstanding_tokens into the blacklist row that claims the spent token. The claim is
-- written anyway, so the link costs no write of its own: a rotation no longer rewrites the
-- spent token's row (a page of the table, wherever that token lies, per rotation).
ALTER TABLE blacklisted_tokens ADD COLUMN replaced_by TEXT;
UPDATE blacklisted_tokens SET replaced_by = (
        SELECT o.replaced_by FROM outstanding_tokens o WHERE o.jti = blacklisted_tokens.jti)
    WHERE jti IN (SELECT jti FROM outstanding_tokens WHERE replaced_by IS NOT NULL);

-- The indexes of live tokens (migrations 20261124000600, 20261207180000) were partial on
-- replaced_by. The index by session now holds every token of a session: a rotation adds its
-- new token's entry beside the session's other entries, on the page it dirtied before to add
-- that entry and take the old one out. The index by user still holds only the tokens without
-- a session.
DROP INDEX outstanding_tokens_session_idx;
CREATE INDEX outstanding_tokens_session_idx ON outstanding_tokens (session_id);
DROP INDEX outstanding_tokens_user_idx;
CREATE INDEX outstanding_tokens_user_idx ON outstanding_tokens (user_id)
    WHERE session_id IS NULL;
ALTER TABLE outstanding_tokens DROP COLUMN replaced_by;
