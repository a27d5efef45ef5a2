-- As for sessions (migration 0600): only a user's live tokens need finding by user (to
-- blacklist them on a password change or a log-out everywhere); a rotated token was
-- blacklisted in the same transaction that linked it. The full index took one entry per token
-- ever rotated, grouped by user, so with many users every rotation of a batch wrote a page of
-- its own (a WAL frame each). Indexing live tokens keeps it at about one entry per chain.
-- Deleting a user now looks through the whole table for the foreign key's ON DELETE SET NULL.
DROP INDEX outstanding_tokens_user_idx;
CREATE INDEX outstanding_tokens_user_idx ON outstanding_tokens (user_id)
    WHERE replaced_by IS NULL;
