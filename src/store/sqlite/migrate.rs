//! Numbered, append-only migrations tracked by `PRAGMA user_version`.
//! `schema.sql` is the shape they build; a test keeps the two in step.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};
use crate::store::sqlite::id::id_from_text;

/// jobq's `PRAGMA application_id`: "JOBQ" in ASCII.
pub const APPLICATION_ID: i32 = 0x4A4F_4251;

/// Migration `i` brings a database from version `i` to `i + 1`. Never edit one
/// that has shipped: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: jobs and their indexes.
    "CREATE TABLE jobs (
        id TEXT PRIMARY KEY NOT NULL,
        job_type TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
        priority INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL DEFAULT 'null',
        result TEXT,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
        next_retry INTEGER NOT NULL,
        error_message TEXT,
        error_context TEXT,
        entity_type TEXT,
        entity_id TEXT,
        owner TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        locked_by TEXT,
        lease_expires_at INTEGER,
        lease_token INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
        progress TEXT
    );
    CREATE INDEX jobs_claim ON jobs (priority DESC, next_retry, id) WHERE status = 'pending';
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'in_progress';
    CREATE INDEX jobs_created ON jobs (created_at, id);
    CREATE INDEX jobs_owner ON jobs (owner, created_at) WHERE owner IS NOT NULL;
    CREATE INDEX jobs_entity ON jobs (entity_type, entity_id) WHERE entity_type IS NOT NULL;",
    // 2: API tokens for the HTTP server.
    "CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        user TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );",
    // 3: the retry schedule travels with each job (JSON array of ms; NULL: default).
    "ALTER TABLE jobs ADD COLUMN backoff TEXT;",
    // 4: named queues (pause and limits across processes; starts of rate-limited
    // queues), and snoozes.
    "ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE jobs ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0 CHECK (snoozes >= 0);
    DROP INDEX jobs_claim;
    CREATE INDEX jobs_claim ON jobs (queue, priority DESC, next_retry, id) WHERE status = 'pending';
    CREATE TABLE queues (
        name TEXT PRIMARY KEY NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
        paused_until INTEGER,
        concurrency INTEGER CHECK (concurrency >= 1),
        rate_count INTEGER CHECK (rate_count >= 1),
        rate_period_ms INTEGER CHECK (rate_period_ms >= 1),
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE queue_starts (queue TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX queue_starts_at ON queue_starts (queue, at);",
    // 5: unique jobs (a key held in the statuses stored with it) and recurring
    // schedules (the jobs they enqueue, and each schedule's last fire time).
    "ALTER TABLE jobs ADD COLUMN unique_key BLOB;
    ALTER TABLE jobs ADD COLUMN unique_states INTEGER;
    ALTER TABLE jobs ADD COLUMN schedule TEXT;
    ALTER TABLE jobs ADD COLUMN fire_time INTEGER;
    CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key) WHERE unique_key IS NOT NULL AND ((unique_states >> (CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'completed' THEN 2 WHEN 'failed' THEN 3 WHEN 'cancelled' THEN 4 END)) & 1) = 1;
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY NOT NULL,
        last_fire_at INTEGER,
        last_job_id TEXT,
        updated_at INTEGER NOT NULL
    );",
    // 6: live worker pools: what each serves and its heartbeat.
    "CREATE TABLE workers (
        id TEXT PRIMARY KEY NOT NULL,
        types TEXT NOT NULL,
        queues TEXT,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );",
    // 7: the dashboard's and metrics' reads stay bounded on a big history.
    "CREATE INDEX jobs_status ON jobs (status, completed_at, started_at, queue, job_type) WHERE status != 'pending';
    CREATE INDEX jobs_type ON jobs (job_type, created_at);",
    // 8: the id is the UUID's 16 bytes, the key of a WITHOUT ROWID table: one
    // b-tree less per job (no rowid table beside the key's index) and a key of
    // 16 bytes instead of 36 in every index. jobs_lease is gone: running jobs
    // are found through jobs_status, which already holds them, so a claim and
    // a completion write one index less. The table is rebuilt in this step's
    // one transaction; ids that are not UUID text are kept as they are.
    concat!(
        "ALTER TABLE jobs RENAME TO jobs_v7;
    CREATE TABLE jobs (
        id BLOB PRIMARY KEY NOT NULL,
        job_type TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
        priority INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL DEFAULT 'null',
        result TEXT,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
        next_retry INTEGER NOT NULL,
        error_message TEXT,
        error_context TEXT,
        entity_type TEXT,
        entity_id TEXT,
        owner TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        locked_by TEXT,
        lease_expires_at INTEGER,
        lease_token INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
        progress TEXT,
        backoff TEXT,
        queue TEXT NOT NULL DEFAULT 'default',
        snoozes INTEGER NOT NULL DEFAULT 0 CHECK (snoozes >= 0),
        unique_key BLOB,
        unique_states INTEGER,
        schedule TEXT,
        fire_time INTEGER
    ) WITHOUT ROWID;
    INSERT INTO jobs SELECT ",
        id_from_text!(),
        ", job_type, status, priority, payload, result, attempts, max_attempts, next_retry,
        error_message, error_context, entity_type, entity_id, owner, created_at, updated_at,
        started_at, completed_at, locked_by, lease_expires_at, lease_token, cancel_requested,
        progress, backoff, queue, snoozes, unique_key, unique_states, schedule, fire_time
        FROM jobs_v7;
    DROP TABLE jobs_v7;
    CREATE INDEX jobs_claim ON jobs (queue, priority DESC, next_retry, id) WHERE status = 'pending';
    CREATE INDEX jobs_created ON jobs (created_at, id);
    CREATE INDEX jobs_owner ON jobs (owner, created_at) WHERE owner IS NOT NULL;
    CREATE INDEX jobs_entity ON jobs (entity_type, entity_id) WHERE entity_type IS NOT NULL;
    CREATE INDEX jobs_status ON jobs (status, completed_at, started_at, queue, job_type) WHERE status != 'pending';
    CREATE INDEX jobs_type ON jobs (job_type, created_at);
    CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key) WHERE unique_key IS NOT NULL AND ((unique_states >> (CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'completed' THEN 2 WHEN 'failed' THEN 3 WHEN 'cancelled' THEN 4 END)) & 1) = 1;"
    ),
    // 9: a one-call enqueue writes the table and jobs_claim only. Listings are
    // in the key's order (a new job's id carries its created_at, so that is
    // creation order), so jobs_created goes; jobs_owner is keyed (owner, id)
    // for the same order. jobs_type holds finished jobs only (written by the
    // completion, not the insert); pending jobs are found by type through
    // jobs_claim, which now ends with job_type, and running ones through
    // jobs_status.
    "DROP INDEX jobs_created;
    DROP INDEX jobs_type;
    DROP INDEX jobs_owner;
    DROP INDEX jobs_claim;
    CREATE INDEX jobs_claim ON jobs (queue, priority DESC, next_retry, id, job_type) WHERE status = 'pending';
    CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL;
    CREATE INDEX jobs_type ON jobs (job_type) WHERE status IN ('completed', 'failed', 'cancelled');",
    // 10: a completion writes one index fewer. Finished jobs are found by type
    // through jobs_status, which ends with job_type (a covering scan of the
    // finished entries; a type with many finished jobs is read along the key).
    "DROP INDEX IF EXISTS jobs_type;",
    // 11: the status CHECK as five comparisons instead of `IN (...)`. SQLite
    // tests an IN list of more than two values through a temporary b-tree
    // that it builds and frees for every row written (measured: a tenth of a
    // worker's time in a drain). Same statuses, so no stored row is touched:
    // the table's stored definition is edited in place after this step's SQL
    // (`rewrite_status_check`), SQLite's documented procedure for a constraint
    // change that leaves the stored rows as they are.
    "",
];

/// From this version on, the later steps change nothing a read sees (11 only
/// rewrites a CHECK): a read-only file at such a version opens without them.
const READS_AS_CURRENT: i32 = 10;

/// The status CHECK every version from 1 to 10 created.
const STATUS_IN: &str =
    "CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled'))";
/// The same CHECK from version 11 on (`schema.sql`).
const STATUS_EQ: &str = "CHECK (status = 'pending' OR status = 'in_progress' \
     OR status = 'completed' OR status = 'failed' OR status = 'cancelled')";

/// Work a step does in Rust after its SQL, by the version the step reaches.
fn after_sql(tx: &Connection, reached: i32) -> Result<()> {
    match reached {
        11 => rewrite_status_check(tx),
        _ => Ok(()),
    }
}

/// Version 11: replaces [`STATUS_IN`] with [`STATUS_EQ`] in the stored
/// definition of `jobs` (SQLite's "other kinds of table schema changes":
/// `writable_schema`, then the schema cookie moves on so that every other
/// connection parses the schema again, and `RESET` makes this one do so).
/// A definition without that text (a table made otherwise) is left as it is.
///
/// # Errors
/// Database errors naming the step.
fn rewrite_status_check(tx: &Connection) -> Result<()> {
    let cookie: i64 = tx
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .map_err(Error::db("read schema cookie"))?;
    tx.execute_batch("PRAGMA writable_schema = ON")
        .map_err(Error::db("allow a schema edit"))?;
    let edited = tx
        .execute(
            "UPDATE sqlite_master SET sql = replace(sql, ?1, ?2) \
             WHERE type = 'table' AND name = 'jobs' AND instr(sql, ?1) > 0",
            [STATUS_IN, STATUS_EQ],
        )
        .map_err(Error::db("rewrite the status check"))
        .and_then(|n| {
            if n > 0 {
                tx.pragma_update(None, "schema_version", cookie + 1)
                    .map_err(Error::db("move the schema cookie on"))?;
            }
            Ok(n)
        });
    // RESET: OFF, and this connection parses the schema again.
    let off = tx
        .execute_batch("PRAGMA writable_schema = RESET")
        .map_err(Error::db("end the schema edit"));
    edited.and(off)
}

/// The schema version this build writes.
pub fn current_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the database up to [`current_version`], one transaction per step, so a
/// crash mid-upgrade leaves a consistent older version. Idempotent.
///
/// # Errors
/// [`Error::Invalid`] when the file is newer than this build; database errors naming the step.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, current_version())
}

/// Applies migrations up to `target` (tests use this to build old versions).
///
/// # Errors
/// As [`migrate`].
pub fn migrate_to(conn: &mut Connection, target: i32) -> Result<()> {
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Error::db("read schema version"))?;
    if version == target {
        return Ok(()); // Nothing to do: no write transaction (read-only files open too).
    }
    let read_only = conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false);
    if read_only && (READS_AS_CURRENT..target).contains(&version) {
        // Every step from here on leaves what a read sees as it is: a file
        // that cannot be written is read at its version (its writes fail).
        log::debug!("read-only database at schema version {version}: read without upgrading");
        return Ok(());
    }
    let mut ran = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("begin migration"))?;
        let version: i32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(Error::db("read schema version"))?;
        if version > current_version() {
            return Err(Error::Invalid {
                field: "database",
                reason: format!(
                    "schema version {version} is newer than this jobq understands ({})",
                    current_version()
                ),
            });
        }
        if version >= target {
            // One line for the whole upgrade (a new file runs every step).
            match (ran, version - ran) {
                (0, _) => {}
                (_, 0) => log::info!("created the database schema (version {version})"),
                (_, from) => {
                    log::info!("database schema upgraded from version {from} to {version}")
                }
            }
            return Ok(());
        }
        let step = MIGRATIONS[usize::try_from(version).unwrap_or(0)];
        tx.execute_batch(step)
            .map_err(Error::db("migrate schema"))?;
        after_sql(&tx, version + 1)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(Error::db("set application_id"))?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(Error::db("set schema version"))?;
        tx.commit().map_err(Error::db("commit migration"))?;
        log::debug!("database schema migrated to version {}", version + 1);
        ran += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(sql: &str) -> String {
        let no_comments: Vec<&str> = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect();
        let joined = no_comments.join(" ");
        let spaced = joined
            .replace('(', " ( ")
            .replace(')', " ) ")
            .replace(',', " , ");
        spaced.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn schema_of(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(|s| normalized(&s.unwrap())).collect()
    }

    #[test]
    fn migrations_build_exactly_schema_sql() {
        let mut migrated = Connection::open_in_memory().unwrap();
        migrate(&mut migrated).unwrap();
        let from_file = Connection::open_in_memory().unwrap();
        from_file
            .execute_batch(include_str!("../../../schema.sql"))
            .unwrap();
        assert_eq!(schema_of(&migrated), schema_of(&from_file));
        let v: i32 = migrated
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, current_version());
        assert!(include_str!("../../../schema.sql")
            .contains(&format!("PRAGMA user_version = {}", current_version())));
    }

    #[test]
    fn migrate_is_idempotent_and_upgrades_old_versions() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 1).unwrap();
        let v: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let tokens: i64 = conn
            .query_row("SELECT count(*) FROM api_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tokens, 0);
    }

    #[test]
    fn status_check_matches_the_enum() {
        let schema = include_str!("../../../schema.sql");
        let list: Vec<String> = crate::JobStatus::ALL
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let listed = format!("CHECK (status IN ({}))", list.join(", "));
        assert_eq!(STATUS_IN, listed);
        assert!(MIGRATIONS[0].contains(&listed));
        let compared: Vec<String> = list.iter().map(|s| format!("status = {s}")).collect();
        let compared = format!("CHECK ({})", compared.join(" OR "));
        assert_eq!(STATUS_EQ, compared);
        let schema = normalized(schema);
        assert!(schema.contains(&normalized(&compared)), "{schema}");
    }

    /// The plan of a statement on `conn`, one opcode name per step.
    fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(1)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn a_version_10_file_checks_status_without_a_temporary_table_and_still_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v10.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, 10).unwrap();
        conn.execute(
            "INSERT INTO jobs (id, job_type, next_retry, created_at, updated_at) \
             VALUES (x'01', 't', 0, 0, 0)",
            [],
        )
        .unwrap();
        let write = "UPDATE jobs SET status = 'completed' WHERE id = x'01'";
        // Two connections that have parsed the schema at version 10: the one
        // that upgrades and another one (another process's, say). Both then
        // see the new definition, and so does a connection opened after.
        let other = Connection::open(&path).unwrap();
        for c in [&conn, &other] {
            assert!(opcodes(c, write).contains(&"OpenEphemeral".to_string()));
        }
        migrate(&mut conn).unwrap();
        let later = Connection::open(&path).unwrap();
        for c in [&conn, &other, &later] {
            // A statement run checks the schema cookie (EXPLAIN alone does
            // not), and parses the schema again when it moved.
            let n: i64 = c
                .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 1);
            assert!(!opcodes(c, write).contains(&"OpenEphemeral".to_string()));
            let refused = c.execute("UPDATE jobs SET status = 'done' WHERE id = x'01'", []);
            assert!(
                matches!(&refused, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation),
                "{refused:?}"
            );
            c.execute(write, []).unwrap();
            let ok: String = c
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
        }
        let sql: String = other
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'jobs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains(STATUS_EQ) && !sql.contains(STATUS_IN), "{sql}");
    }

    #[test]
    fn a_read_only_file_at_version_10_is_read_as_it_is_and_older_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (at, opens) in [(10, true), (9, false)] {
            let path = dir.path().join(format!("v{at}.db"));
            let mut conn = Connection::open(&path).unwrap();
            migrate_to(&mut conn, at).unwrap();
            drop(conn);
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
            let mut ro = Connection::open_with_flags(&path, flags).unwrap();
            let got = migrate(&mut ro);
            assert_eq!(got.is_ok(), opens, "version {at}: {got:?}");
            let v: i32 = ro
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, at);
            if opens {
                let n: i64 = ro
                    .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(n, 0);
            }
        }
    }
}
