-- What each synced application reports about itself: where its cursor stands, when it last
-- synced, its last error. Operators read it to see each app's lag.
CREATE TABLE sync_status (
    project_id       TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    instance         TEXT NOT NULL,
    cursor           BIGINT NOT NULL,
    last_success_at  TIMESTAMPTZ,
    last_error       TEXT,
    last_error_at    TIMESTAMPTZ,
    reported_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, instance)
);
