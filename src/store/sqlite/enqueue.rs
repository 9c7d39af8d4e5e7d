//! Inserting jobs, and the unique index that refuses a second job with a key
//! held by another (checked by the insert itself, in its own transaction).

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::store::sqlite::id;
use crate::store::sqlite::row::{job_columns, job_from_row};

/// A job's unique key counts while its status is one of the statuses stored
/// with it (bit `i` of `unique_states` is `JobStatus::ALL[i]`). The partial
/// unique index `jobs_unique` has exactly this predicate; a test keeps the
/// statuses' order and this CASE in step.
macro_rules! holds_key {
    () => {
        "unique_key IS NOT NULL AND ((unique_states >> (CASE status WHEN 'pending' THEN 0 \
         WHEN 'in_progress' THEN 1 WHEN 'completed' THEN 2 WHEN 'failed' THEN 3 \
         WHEN 'cancelled' THEN 4 END)) & 1) = 1"
    };
}

const INSERT: &str = "INSERT INTO jobs (id, job_type, status, priority, payload, attempts, \
     max_attempts, next_retry, entity_type, entity_id, owner, created_at, updated_at, backoff, \
     queue, unique_key, unique_states, schedule, fire_time) \
     VALUES (?1, ?2, 'pending', ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, ?14, \
     ?15, ?16) ON CONFLICT DO NOTHING";

const HOLDER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE unique_key = ?1 AND ",
    holds_key!()
);

/// Inserts a validated job (status pending). `payload` is its JSON text.
/// Returns `None` when it was inserted, or the job already holding its unique
/// key (then nothing was inserted).
pub(crate) fn insert(conn: &Connection, job: &Job, payload: &str) -> Result<Option<Job>> {
    let mut stmt = conn.prepare_cached(INSERT).map_err(Error::db("enqueue"))?;
    let backoff = job.backoff.as_ref().map(crate::retry::Backoff::to_stored);
    let (key, states) = match &job.unique {
        Some(k) => (Some(&k.key), Some(k.states.bits())),
        None => (None, None),
    };
    let n = stmt
        .execute(params![
            id::key(job.id),
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
            key,
            states,
            job.schedule,
            job.fire_time.map(|t| t.0),
        ])
        .map_err(Error::db("enqueue"))?;
    if n == 1 {
        return Ok(None);
    }
    let key = key.ok_or_else(|| Error::Invalid {
        field: "id",
        reason: format!("job {} already exists", job.id),
    })?;
    holder(conn, key)?
        .map(Some)
        .ok_or(Error::NotFound { id: job.id })
}

/// The job holding `key` now, if any.
pub(crate) fn holder(conn: &Connection, key: &[u8]) -> Result<Option<Job>> {
    let mut stmt = conn.prepare_cached(HOLDER).map_err(Error::db("enqueue"))?;
    stmt.query_row(params![key], job_from_row)
        .optional()
        .map_err(Error::db("enqueue"))
}

/// The job other than `id` holding the key `id` has, if any.
pub(crate) fn other_holder(conn: &Connection, id: JobId) -> Result<Option<Job>> {
    let mut stmt = conn
        .prepare_cached("SELECT unique_key FROM jobs WHERE id = ?1")
        .map_err(Error::db("retry"))?;
    let key: Option<Vec<u8>> = stmt
        .query_row(params![id::key(id)], |r| r.get(0))
        .optional()
        .map_err(Error::db("retry"))?
        .flatten();
    match key {
        Some(k) => Ok(holder(conn, &k)?.filter(|j| j.id != id)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_predicate_follows_the_status_order() {
        for (i, s) in crate::JobStatus::ALL.iter().enumerate() {
            assert!(
                holds_key!().contains(&format!("WHEN '{}' THEN {i}", s.as_str())),
                "{s}"
            );
        }
        let schema = include_str!("../../../schema.sql");
        let flat: String = schema.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(holds_key!()),
            "schema.sql's jobs_unique predicate"
        );
    }
}
