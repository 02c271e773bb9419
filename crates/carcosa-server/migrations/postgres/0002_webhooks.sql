-- Webhooks: endpoints, the durable delivery queue (written in the same transaction as the event
-- it carries), and the log of every attempt.

CREATE TABLE webhook_endpoints (
    id                          TEXT COLLATE "C" PRIMARY KEY,
    project_id                  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url                         TEXT NOT NULL,
    description                 TEXT,
    -- JSON array of patterns; NULL = every event type.
    event_types                 JSONB,
    enabled                     BOOLEAN NOT NULL,
    disabled_reason             TEXT,
    -- AEAD-encrypted signing keys (nonce || ciphertext).
    secret                      BYTEA NOT NULL,
    previous_secret             BYTEA,
    previous_secret_expires_at  TIMESTAMPTZ,
    failing_since               TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_by_project ON webhook_endpoints (project_id, id);

CREATE TABLE webhook_deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    -- The exact body sent on every attempt.
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    -- Position in the retry schedule; reset by resend and recover.
    retry_index      INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    -- A dispatcher that claimed the delivery owns it until then; after, anyone may take it.
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    completed_at     TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    attempted_at     TIMESTAMPTZ NOT NULL,
    response_status  INTEGER,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    response_body    TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
