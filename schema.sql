-- jobq schema, current version (PRAGMA user_version = 4).
-- The one source of truth for tables and indexes. The migrations in
-- src/store/migrate.rs build exactly this; a test compares the two.
-- Times are integer Unix milliseconds, UTC.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY NOT NULL,          -- UUID v7, text form
    job_type         TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    priority         INTEGER NOT NULL DEFAULT 0,
    payload          TEXT NOT NULL DEFAULT 'null',       -- JSON
    result           TEXT,                               -- JSON
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    next_retry       INTEGER NOT NULL,
    error_message    TEXT,
    error_context    TEXT,                               -- JSON
    entity_type      TEXT,
    entity_id        TEXT,
    owner            TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER,
    locked_by        TEXT,
    lease_expires_at INTEGER,
    lease_token      INTEGER NOT NULL DEFAULT 0,         -- fencing token, +1 per claim
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    progress         TEXT,                               -- JSON
    backoff          TEXT                                -- JSON array of ms; NULL: the default schedule (version 3)
);

-- Claim: due pending jobs in run order. Partial, so claim cost does not grow with history.
CREATE INDEX jobs_claim ON jobs (priority DESC, next_retry, id) WHERE status = 'pending';
-- Recovery: expired leases.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'in_progress';
-- Listing newest first, and prune by age.
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE INDEX jobs_owner ON jobs (owner, created_at) WHERE owner IS NOT NULL;
CREATE INDEX jobs_entity ON jobs (entity_type, entity_id) WHERE entity_type IS NOT NULL;
-- Dashboard and metrics (version 4): capped counts by status, the latest failures,
-- jobs started and finished per minute (covering), and prune by age.
CREATE INDEX jobs_status ON jobs (status, completed_at, started_at);
-- Listing and counting by job type (version 4); written once per job.
CREATE INDEX jobs_type ON jobs (job_type, created_at);

-- API tokens (version 2). Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    user        TEXT NOT NULL,
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    token_hash  TEXT NOT NULL UNIQUE,                    -- hex SHA-256
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
