-- Dashboard operators, their roles, their sessions and failed logins.
--
-- An operator's `global_role` applies to every project, present and future (the first-start
-- admin is a global owner); `operator_roles` grants a role in one project. The effective role in
-- a project is the higher of the two.
CREATE TABLE operators (
    id             TEXT PRIMARY KEY,
    -- Trimmed and lower-cased, so uniqueness is case-insensitive.
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    -- An argon2id PHC string.
    password_hash  TEXT NOT NULL,
    global_role    TEXT CHECK (global_role IN ('owner', 'admin', 'viewer')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE operator_roles (
    operator_id  TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    PRIMARY KEY (operator_id, project_id)
);
CREATE INDEX operator_roles_by_project ON operator_roles (project_id);

-- A session is known by the SHA-256 of its 256-bit random token; the token itself lives only in
-- the operator's cookie.
CREATE TABLE operator_sessions (
    token_hash    BLOB PRIMARY KEY,
    operator_id   TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    address       TEXT,
    user_agent    TEXT
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_by_last_seen ON operator_sessions (last_seen_at);

-- Failed logins, by account (`email:…`) and by address (`address:…`), for throttling.
CREATE TABLE login_failures (
    subject    TEXT NOT NULL,
    failed_at  TEXT NOT NULL
);
CREATE INDEX login_failures_by_subject ON login_failures (subject, failed_at);
CREATE INDEX login_failures_by_time ON login_failures (failed_at);
