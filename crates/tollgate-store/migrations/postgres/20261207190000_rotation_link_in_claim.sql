-- A rotation's link from the token it spent to the token it issued (for reuse detection) moves
-- from outstanding_tokens into the blacklist row that claims the spent token. The claim is
-- written anyway, so the link costs no write of its own: a rotation no longer updates the
-- spent token's row, which left a dead row version behind it for the vacuum.
ALTER TABLE blacklisted_tokens ADD COLUMN replaced_by TEXT;
UPDATE blacklisted_tokens b SET replaced_by = o.replaced_by
    FROM outstanding_tokens o
    WHERE o.jti = b.jti AND o.replaced_by IS NOT NULL;
ALTER TABLE outstanding_tokens DROP COLUMN replaced_by;
