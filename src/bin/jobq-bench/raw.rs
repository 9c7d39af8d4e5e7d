//! The raw rusqlite baselines: the least SQL that does the same work, on a file
//! with the same schema, WAL, the same pragmas and UUID v7 keys stored as jobq
//! stores them (16-byte blobs). `lean.rs` has the baseline on the leanest table.

use std::path::Path;
use std::time::Duration;

use jobq::Durability;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::util::{per_second, rate};
use crate::BenchResult;

/// jobq's schema, applied as is.
const SCHEMA: &str = include_str!("../../../schema.sql");

const INSERT: &str = "INSERT INTO jobs (id, job_type, status, priority, payload, attempts, \
     max_attempts, next_retry, created_at, updated_at, completed_at) \
     VALUES (?1, ?2, ?3, 0, ?4, 0, 5, ?5, ?5, ?5, ?6)";

/// What a worker needs back from a claim: the id, type, payload, attempt, token.
/// `LIMIT ?4 + 0` keeps SQLite from re-preparing the statement at every bind.
const CLAIM: &str = "UPDATE jobs SET status = 'in_progress', attempts = attempts + 1, \
     lease_token = lease_token + 1, locked_by = ?1, lease_expires_at = ?2, \
     started_at = ?3, updated_at = ?3 \
     WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' AND queue = 'default' \
       AND next_retry <= ?3 \
       ORDER BY priority DESC, next_retry, id LIMIT ?4 + 0) \
     RETURNING id, job_type, payload, attempts, lease_token";

const COMPLETE: &str = "UPDATE jobs SET status = 'completed', result = ?1, completed_at = ?2, \
     updated_at = ?2, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4";

/// A claimed row: id (16 bytes), job type, payload text, lease token.
pub type Claimed = (Vec<u8>, String, String, i64);

/// Opens a connection with jobq's pragmas (WAL, synchronous, busy_timeout 5 s,
/// foreign_keys) and creates the schema when the file is new.
pub fn open(path: &Path, durability: Durability) -> BenchResult<Connection> {
    let conn = pragmas(Connection::open(path)?, durability)?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        conn.execute_batch(SCHEMA)?;
    }
    Ok(conn)
}

/// Sets jobq's pragmas on `conn`: WAL, `synchronous`, busy_timeout 5 s, foreign_keys.
pub fn pragmas(conn: Connection, durability: Durability) -> BenchResult<Connection> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // The page size jobq gives the files it creates (schema version 9), so the
    // raw loops write pages of the same size.
    conn.pragma_update(None, "page_size", 2048)?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    // jobq's checkpoint threshold: 4 MiB of WAL (2,048 pages of 2,048 bytes).
    conn.pragma_update(None, "wal_autocheckpoint", 2048)?;
    let sync = match durability {
        Durability::Full => 2,
        Durability::Normal => 1,
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", 1)?;
    Ok(conn)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    i64::try_from(crate::util::unix_ns() / 1_000_000).unwrap_or(i64::MAX)
}

fn new_id() -> Vec<u8> {
    uuid::Uuid::now_v7().as_bytes().to_vec()
}

/// The text form of a stored id.
pub fn id_text(id: &[u8]) -> String {
    uuid::Uuid::from_slice(id)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_default()
}

/// Inserts one job row with `status` (completed rows get `completed_at`).
/// Returns its id.
pub fn insert(
    conn: &Connection,
    status: &str,
    payload: &str,
    now: i64,
) -> rusqlite::Result<Vec<u8>> {
    let id = new_id();
    let done = (status != "pending").then_some(now);
    let mut stmt = conn.prepare_cached(INSERT)?;
    stmt.execute(params![id, "noop", status, payload, now, done])?;
    Ok(id)
}

/// Inserts `n` rows of `status`, `batch` per transaction. Used for the baselines
/// and to fabricate history (completed rows) or a backlog (pending rows) fast.
pub fn fill(conn: &mut Connection, n: usize, batch: usize, status: &str) -> BenchResult<()> {
    let mut left = n;
    while left > 0 {
        let take = left.min(batch.max(1));
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        for _ in 0..take {
            insert(&tx, status, "null", now)?;
        }
        tx.commit()?;
        left -= take;
    }
    Ok(())
}

/// A backlog of `n` pending jobs for a timed loop, then the WAL checkpointed
/// and emptied: every drain loop, jobq's and the raw ones, starts from an
/// empty WAL (jobq's backlog is made the same way, and its queue then opens the
/// file anew). A loop that starts on a WAL its fill has already grown only
/// overwrites it, while one that starts empty also grows the file, which costs
/// each FULL commit a metadata flush: the comparison would favour the raw loop.
pub fn backlog(conn: &mut Connection, n: usize) -> BenchResult<()> {
    fill(conn, n, 10_000, "pending")?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

/// Autocommit INSERTs, one per job: jobs per second.
pub fn insert_one(path: &Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let conn = open(path, durability)?;
    rate(n, || {
        for _ in 0..n {
            insert(&conn, "pending", "null", now_ms())?;
        }
        Ok(())
    })
}

/// INSERTs, 1,000 per transaction: jobs per second.
pub fn insert_batched(path: &Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let mut conn = open(path, durability)?;
    rate(n, || fill(&mut conn, n, 1_000, "pending"))
}

/// One claim transaction of up to `n` jobs (`BEGIN IMMEDIATE; UPDATE ... RETURNING; COMMIT`).
pub fn claim(conn: &mut Connection, n: usize) -> rusqlite::Result<Vec<Claimed>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let jobs = claim_in(&tx, n)?;
    tx.commit()?;
    Ok(jobs)
}

/// The claim statement alone, inside the caller's transaction.
pub fn claim_in(conn: &Connection, n: usize) -> rusqlite::Result<Vec<Claimed>> {
    let now = now_ms();
    let mut stmt = conn.prepare_cached(CLAIM)?;
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params!["raw", now + 300_000, now, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(4)?))
    })?;
    rows.collect()
}

/// The bound the pool's rule sets: each transaction completes the previous
/// `k` jobs and claims the next `k` (never more than `k` workers can run), on a
/// fresh backlog of `n`: jobs per second.
pub fn rounds_loop(path: &Path, durability: Durability, n: usize, k: usize) -> BenchResult<f64> {
    let mut conn = open(path, durability)?;
    backlog(&mut conn, n)?;
    let started = std::time::Instant::now();
    let (mut held, mut done) = (Vec::new(), 0);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for job in &held {
            complete(&tx, job, "null")?;
        }
        done += held.len();
        held = claim_in(&tx, k)?;
        tx.commit()?;
        if held.is_empty() {
            return Ok(per_second(done, started.elapsed()));
        }
    }
}

/// One fenced completion statement (autocommit unless inside a transaction).
pub fn complete(conn: &Connection, job: &Claimed, result: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(COMPLETE)?;
    stmt.execute(params![result, now_ms(), job.0, job.3])?;
    Ok(())
}

/// claim(1) then an autocommit completion, one job at a time, on a backlog of
/// `n` jobs: jobs per second.
pub fn claim_one_loop(path: &Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let mut conn = open(path, durability)?;
    backlog(&mut conn, n)?;
    let started = std::time::Instant::now();
    let mut done = 0;
    while let Some(job) = claim(&mut conn, 1)?.pop() {
        complete(&conn, &job, "null")?;
        done += 1;
    }
    Ok(per_second(done, started.elapsed()))
}

/// A retryable failure: back to pending a minute later, with the error kept.
const FAIL: &str = "UPDATE jobs SET status = 'pending', next_retry = ?1, error_message = ?2, \
     error_context = ?3, updated_at = ?4, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = ?5 AND status = 'in_progress' AND lease_token = ?6";

fn fail(conn: &Connection, job: &Claimed, error: &str) -> rusqlite::Result<()> {
    let now = now_ms();
    let context = serde_json::json!({"class": "retryable", "failed_at": now}).to_string();
    let mut stmt = conn.prepare_cached(FAIL)?;
    stmt.execute(params![now + 60_000, error, context, now, job.0, job.3])?;
    Ok(())
}

/// What a handler made of a job: its result text, or its error text.
pub type WorkResult = Result<String, String>;

/// claim(100) then one transaction completing (or failing) the 100, until no
/// job is due. `work` runs on each claimed job. Returns how many jobs ran.
pub fn claim_batch_loop(
    conn: &mut Connection,
    work: &dyn Fn(&Claimed) -> WorkResult,
) -> BenchResult<usize> {
    let mut done = 0;
    loop {
        let jobs = claim(conn, 100)?;
        if jobs.is_empty() {
            return Ok(done);
        }
        let results: Vec<WorkResult> = jobs.iter().map(work).collect();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (job, result) in jobs.iter().zip(&results) {
            match result {
                Ok(text) => complete(&tx, job, text)?,
                Err(error) => fail(&tx, job, error)?,
            }
        }
        tx.commit()?;
        done += jobs.len();
    }
}

/// [`claim_batch_loop`] of no-op jobs on a fresh backlog of `n`: jobs per second.
pub fn claim_batch_noop(path: &Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let mut conn = open(path, durability)?;
    backlog(&mut conn, n)?;
    let started = std::time::Instant::now();
    let done = claim_batch_loop(&mut conn, &|_| Ok("null".to_string()))?;
    Ok(per_second(done, started.elapsed()))
}

const INSERT_TYPED: &str = "INSERT INTO jobs (id, job_type, status, priority, payload, attempts, \
     max_attempts, next_retry, entity_type, entity_id, owner, created_at, updated_at) \
     VALUES (?1, ?2, 'pending', ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?6, ?6)";

/// A pending job with every column a real application sets.
pub struct Typed<'a> {
    /// The job type.
    pub job_type: &'a str,
    /// Priority.
    pub priority: i32,
    /// Payload JSON text.
    pub payload: &'a str,
    /// Total runs allowed.
    pub max_attempts: u32,
    /// Entity type, id and owner.
    pub refs: [Option<&'a str>; 3],
}

/// Inserts one pending job with all its columns.
pub fn insert_typed(conn: &Connection, job: &Typed<'_>) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(INSERT_TYPED)?;
    let [et, ei, owner] = job.refs;
    stmt.execute(params![
        new_id(),
        job.job_type,
        job.priority,
        job.payload,
        job.max_attempts,
        now_ms(),
        et,
        ei,
        owner
    ])?;
    Ok(())
}
