-- A counter that every change of a user moves, whoever makes it (this server, another process
-- on the same file, the command line, a hand-written UPDATE). Servers caching users
-- (USER_CACHE_TTL) read it once a second and drop their cache when it moved: SQLite has no
-- notifications, PostgreSQL's triggers NOTIFY instead. A login's last_login update alone is
-- not a change worth dropping caches for.
CREATE TABLE user_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO user_changes (id, version) VALUES (1, 0);

CREATE TRIGGER users_count_update AFTER UPDATE ON users
    WHEN OLD.last_login IS NEW.last_login
BEGIN
    UPDATE user_changes SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER users_count_delete AFTER DELETE ON users
BEGIN
    UPDATE user_changes SET version = version + 1 WHERE id = 1;
END;
