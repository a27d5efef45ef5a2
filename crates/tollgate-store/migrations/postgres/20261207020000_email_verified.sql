-- When the user's email address was confirmed (EMAIL_VERIFICATION): NULL while a registration
-- waits for its activation link. Accounts that existed before are taken as confirmed, so that
-- turning verification on locks nobody out.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
UPDATE users SET email_verified_at = date_joined;

-- An address a user asked to change to, waiting for the link sent to it to be followed; the
-- current address stays until then.
ALTER TABLE users ADD COLUMN pending_email TEXT;
