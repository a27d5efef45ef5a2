-- Only the tokens of a session that are still live need finding by session (to blacklist them
-- when the session is revoked): a rotated token (replaced_by set) was blacklisted in the same
-- transaction that linked it. Indexing live tokens alone keeps the index at about one entry per
-- session instead of one per token ever rotated, so a batch of refreshes dirties a few pages of
-- it, not one page per session refreshed. On SQLite each dirty page is a write to the WAL, and
-- this index was the largest cost of a rotation.
DROP INDEX outstanding_tokens_session_idx;
CREATE INDEX outstanding_tokens_session_idx ON outstanding_tokens (session_id)
    WHERE replaced_by IS NULL;
