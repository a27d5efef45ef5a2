-- Every administrative action (admin API, console, commands): who did what to whom, when and
-- from where. Rows outlive the accounts they name, so the target is not a foreign key and its
-- username is kept as it was.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'user' for an administrator's account, 'cli' for a command.
    actor_kind  TEXT    NOT NULL,
    -- The administrator's user id; NULL for a command.
    actor_id    BIGINT,
    -- The administrator's username, or the operating-system user who ran the command.
    actor_name  TEXT    NOT NULL,
    -- What was done: user.create, user.update, user.delete, user.set_password, session.revoke...
    action      TEXT    NOT NULL,
    -- The account acted on, if any, and its username at the time.
    target_id   BIGINT,
    target_name TEXT,
    -- A JSON object: which fields changed and the like; never a password or a secret.
    details     TEXT    NOT NULL,
    -- The administrator's client address; NULL for a command.
    client_addr TEXT,
    at          BIGINT  NOT NULL
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);
CREATE INDEX audit_log_target_idx ON audit_log (target_id, id);
