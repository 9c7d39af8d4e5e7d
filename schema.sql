-- jobq schema, current version (PRAGMA user_version = 11).
-- The one source of truth for tables and indexes. The migrations in
-- src/store/migrate.rs build exactly this; a test compares the two.
-- Times are integer Unix milliseconds, UTC.

CREATE TABLE jobs (
    id               BLOB PRIMARY KEY NOT NULL,          -- UUID v7, its 16 bytes (version 8);
                                                         -- its time is created_at (jobs made from version 9 on)
    job_type         TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'     -- comparisons, not IN (...), which SQLite
                     CHECK (status = 'pending' OR status = 'in_progress'   -- tests through a temporary
                            OR status = 'completed' OR status = 'failed'   -- b-tree per row written
                            OR status = 'cancelled'),                      -- (version 11)
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
    backoff          TEXT,                               -- JSON array of ms; NULL: the default schedule (version 3)
    queue            TEXT NOT NULL DEFAULT 'default',    -- version 4
    snoozes          INTEGER NOT NULL DEFAULT 0 CHECK (snoozes >= 0),
    unique_key       BLOB,                               -- SHA-256 (version 5)
    unique_states    INTEGER,                            -- statuses holding the key: bit i = JobStatus::ALL[i]
    schedule         TEXT,                               -- the schedule that enqueued it
    fire_time        INTEGER                             -- the fire time it serves
) WITHOUT ROWID;                                         -- the id is the key (version 8)

-- Claim: due pending jobs of a queue in run order (and the queues with pending
-- jobs, one seek each). Partial, so claim cost does not grow with history.
-- job_type last (version 9): pending jobs by type are read from it alone.
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, next_retry, id, job_type) WHERE status = 'pending';
-- Listing newest first is the primary key's order (version 9: no jobs_created;
-- an id's UUID v7 time is its job's created_at). These two end with the id too.
CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL;
CREATE INDEX jobs_entity ON jobs (entity_type, entity_id) WHERE entity_type IS NOT NULL;
-- Dashboard and metrics (version 7): capped counts by status, the latest failures,
-- jobs started and finished per minute and failed or recent jobs by queue and type
-- (all covering); prune by age. Pending jobs are left out: their queries keep jobs_claim.
-- Running jobs (recovery of expired leases, a worker's jobs, counts by queue) are
-- found here too (version 8; a query says `status != 'pending'` to use it), and
-- running and finished jobs by type (version 10: no jobs_type, so a completion
-- writes one index fewer; pending jobs by type: jobs_claim).
CREATE INDEX jobs_status ON jobs (status, completed_at, started_at, queue, job_type) WHERE status != 'pending';
-- Unique jobs: no two rows with one key while each is in a status its rule lists.
CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key) WHERE unique_key IS NOT NULL AND ((unique_states >> (CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'completed' THEN 2 WHEN 'failed' THEN 3 WHEN 'cancelled' THEN 4 END)) & 1) = 1;

-- API tokens (version 2). Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    user        TEXT NOT NULL,
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    token_hash  TEXT NOT NULL UNIQUE,                    -- hex SHA-256
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Named queues (version 4): pause and limits, stored so every process obeys them.
-- paused = 1 with paused_until NULL: until resumed; with a time: until then (ms).
CREATE TABLE queues (
    name           TEXT PRIMARY KEY NOT NULL,
    paused         INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    paused_until   INTEGER,
    concurrency    INTEGER CHECK (concurrency >= 1),       -- NULL: unlimited
    rate_count     INTEGER CHECK (rate_count >= 1),        -- NULL: no rate limit
    rate_period_ms INTEGER CHECK (rate_period_ms >= 1),
    updated_at     INTEGER NOT NULL
);

-- Starts of jobs in rate-limited queues, for the sliding window (pruned as it slides).
CREATE TABLE queue_starts (
    queue TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX queue_starts_at ON queue_starts (queue, at);

-- Recurring schedules (version 5): the latest fire time enqueued (ms), so every
-- process agrees which fire times are done; a unique key per (schedule, fire
-- time) makes each one job.
CREATE TABLE schedules (
    name         TEXT PRIMARY KEY NOT NULL,
    last_fire_at INTEGER,
    last_job_id  TEXT,
    updated_at   INTEGER NOT NULL
);

-- Live worker pools (version 6): the job types (JSON array) and queues (JSON
-- array; NULL: every queue) each serves, and its heartbeat (ms), so any process
-- can tell which due jobs no live pool serves.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY NOT NULL,
    types        TEXT NOT NULL,
    queues       TEXT,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
