//! Inserting jobs.

use rusqlite::{params, Connection};

use crate::job::Job;

const INSERT: &str = "INSERT INTO jobs (id, job_type, status, priority, payload, attempts, \
     max_attempts, next_retry, entity_type, entity_id, owner, created_at, updated_at, backoff, \
     queue) VALUES (?1, ?2, 'pending', ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)";

/// Inserts a validated job (status pending). `payload` is its JSON text.
pub(crate) fn insert(conn: &Connection, job: &Job, payload: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    let backoff = job.backoff.as_ref().map(crate::retry::Backoff::to_stored);
    stmt.execute(params![
        job.id,
        job.job_type,
        job.priority,
        payload,
        job.max_attempts,
        job.next_retry.0,
        job.entity_type,
        job.entity_id,
        job.owner,
        job.created_at.0,
        backoff,
        job.queue,
    ])?;
    Ok(())
}

const PENDING_OF_TYPE: &str =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND job_type = ?1)";

/// True when a job of `job_type` is pending.
pub(crate) fn pending_of_type(conn: &Connection, job_type: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(PENDING_OF_TYPE)?;
    stmt.query_row(params![job_type], |r| r.get(0))
}
