-- A user's live tokens that belong to a session are found through the user's sessions
-- (sessions_user_idx, then outstanding_tokens_session_idx); only the live tokens without a
-- session (minted by the command line, imported from Django) need finding by user. Every
-- rotation added its new token to the index by user and took the old one out: on a database
-- with many users and refreshes spread over them, a page of its own per user refreshed, and a
-- WAL frame per rotation. Deleting a user looked through the whole table for the foreign key
-- before this too (migration 20261206000700).
DROP INDEX outstanding_tokens_user_idx;
CREATE INDEX outstanding_tokens_user_idx ON outstanding_tokens (user_id)
    WHERE replaced_by IS NULL AND session_id IS NULL;
