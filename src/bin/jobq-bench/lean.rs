//! The lean baseline: the same work as the raw loops, on the leanest table that
//! holds the job (what a handler and a fenced claim need, nothing for listing,
//! history or the dashboard). An integer key (the rowid itself: one b-tree) and
//! the one index the claim needs, so jobq's rows beside it show what its schema
//! costs; the raw rows on jobq's own schema show what jobq's code costs.

use std::path::Path;

use jobq::Durability;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::raw::now_ms;
use crate::util::{per_second, rate};
use crate::BenchResult;

/// Status 0 pending, 1 running, 2 completed.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    job_type TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_retry INTEGER NOT NULL,
    lease_expires_at INTEGER,
    lease_token INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (priority DESC, next_retry, id) WHERE status = 0;";

const INSERT: &str = "INSERT INTO jobs (job_type, payload, next_retry, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?3, ?3)";

const CLAIM: &str = "UPDATE jobs SET status = 1, attempts = attempts + 1, \
     lease_token = lease_token + 1, lease_expires_at = ?1, updated_at = ?2 \
     WHERE id IN (SELECT id FROM jobs WHERE status = 0 AND next_retry <= ?2 \
       ORDER BY priority DESC, next_retry, id LIMIT ?3 + 0) \
     RETURNING id, job_type, payload, lease_token";

const COMPLETE: &str = "UPDATE jobs SET status = 2, result = ?1, updated_at = ?2, \
     lease_expires_at = NULL WHERE id = ?3 AND status = 1 AND lease_token = ?4";

/// A claimed row: id, job type, payload text, lease token.
type Claimed = (i64, String, String, i64);

/// Opens the file with jobq's pragmas and creates the lean table.
fn open(path: &Path, durability: Durability) -> BenchResult<Connection> {
    let conn = crate::raw::pragmas(Connection::open(path)?, durability)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn insert(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    stmt.execute(params!["noop", "null", now])?;
    Ok(())
}

/// Autocommit INSERTs, one per job: jobs per second.
pub fn insert_one(path: &Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let conn = open(path, durability)?;
    rate(n, || {
        for _ in 0..n {
            insert(&conn, now_ms())?;
        }
        Ok(())
    })
}

fn fill(conn: &mut Connection, n: usize) -> BenchResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    for _ in 0..n {
        insert(&tx, now)?;
    }
    tx.commit()?;
    Ok(())
}

fn claim(conn: &Connection, k: usize) -> rusqlite::Result<Vec<Claimed>> {
    let now = now_ms();
    let mut stmt = conn.prepare_cached(CLAIM)?;
    let limit = i64::try_from(k).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![now + 300_000, now, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}

fn complete(conn: &Connection, job: &Claimed) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(COMPLETE)?;
    stmt.execute(params!["null", now_ms(), job.0, job.3])?;
    Ok(())
}

/// One transaction per round that completes the previous `k` jobs and claims
/// the next `k`, on a fresh backlog of `n`: jobs per second (the bound of a pool
/// of `k` workers that never claims more jobs than it has idle workers).
pub fn rounds_loop(path: &Path, durability: Durability, n: usize, k: usize) -> BenchResult<f64> {
    let mut conn = open(path, durability)?;
    fill(&mut conn, n)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let started = std::time::Instant::now();
    let (mut held, mut done) = (Vec::new(), 0);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for job in &held {
            complete(&tx, job)?;
        }
        done += held.len();
        held = claim(&tx, k)?;
        tx.commit()?;
        if held.is_empty() {
            return Ok(per_second(done, started.elapsed()));
        }
    }
}
