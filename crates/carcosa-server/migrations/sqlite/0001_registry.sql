-- Carcosa registry schema for SQLite: projects, API keys, tenants, the events outbox and
-- idempotency records. Timestamps are RFC 3339 text in UTC; JSON is text.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- The seq of the project's newest event; bumped inside every tenant write transaction.
    last_seq    INTEGER NOT NULL DEFAULT 0,
    -- Every event with seq <= pruned_seq has been removed by retention.
    pruned_seq  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret_hash   BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    label         TEXT,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_keys_by_project ON api_keys (project_id, created_at);

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    plan        TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    version     INTEGER NOT NULL CHECK (version >= 1),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
-- Slugs are unique among live tenants only: deleting a tenant releases its slug.
CREATE UNIQUE INDEX tenants_live_slug ON tenants (project_id, slug) WHERE status <> 'deleted';
-- Keyset pagination, with and without a status filter.
CREATE INDEX tenants_by_project ON tenants (project_id, id);
CREATE INDEX tenants_by_project_status ON tenants (project_id, status, id);

CREATE TABLE events (
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    id           TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    PRIMARY KEY (project_id, seq)
);
CREATE INDEX events_by_time ON events (occurred_at);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);

CREATE TABLE idempotency_keys (
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (project_id, key)
);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
