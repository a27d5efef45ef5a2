-- Whether an email address (or a new username) is another user's username, without regard to
-- case, is asked on every registration, import and email change: without an index on
-- lower(username) each asking read the whole users table, and importing a million users took
-- time quadratic in their number.
CREATE INDEX users_username_lower_idx ON users (lower(username));
