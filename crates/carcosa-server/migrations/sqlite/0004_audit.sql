-- The audit log: one entry per mutation, written in the same transaction as the change.
-- Append-only: a trigger refuses updates. Rows are removed only by retention. There is no
-- foreign key to projects: an entry outlives the objects it describes.

CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    occurred_at   TEXT NOT NULL,
    actor_kind    TEXT NOT NULL CHECK (actor_kind IN ('key', 'cli', 'operator')),
    actor_id      TEXT NOT NULL,
    action        TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    -- The target's public state (JSON) before and after; never a secret or a key hash.
    before_state  TEXT,
    after_state   TEXT,
    request_id    TEXT NOT NULL,
    address       TEXT,
    user_agent    TEXT
);
-- Listing newest first, alone or by actor or target; retention by time.
CREATE INDEX audit_log_by_project ON audit_log (project_id, id);
CREATE INDEX audit_log_by_actor ON audit_log (project_id, actor_id, id);
CREATE INDEX audit_log_by_target ON audit_log (project_id, target_id, id);
CREATE INDEX audit_log_by_time ON audit_log (occurred_at);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
