//! Inserting jobs; operator transitions (cancel, manual retry); pruning.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::state::{next, Move, Transition};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::row::{job_columns, job_from_row};

macro_rules! insert {
    () => {
        "INSERT INTO jobq.jobs (id, job_type, status, priority, payload, attempts, \
         max_attempts, next_retry, entity_type, entity_id, owner, created_at, updated_at, backoff, \
         queue, unique_key, unique_states, schedule, fire_time) \
         VALUES ($1, $2, 'pending', $3, $4::text::json, 0, $5, $6, $7, $8, $9, $10, $10, \
         $11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING"
    };
}

const INSERT: &str = insert!();

/// The insert and the wake-up in one autocommit statement (one round trip): the
/// notification is delivered only if the insert commits.
const INSERT_NOTIFY: &str = concat!(
    "WITH ins AS (",
    insert!(),
    " RETURNING 1) SELECT pg_notify('jobq_insert', '') FROM ins"
);

/// A job's unique key counts while its status is one of the statuses stored
/// with it (bit `i` of `unique_states` is `JobStatus::ALL[i]`), as the partial
/// unique index `jobs_unique` says.
const HOLDER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobq.jobs WHERE unique_key = $1 AND unique_key IS NOT NULL AND ((unique_states >> \
     (CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'completed' THEN 2 \
     WHEN 'failed' THEN 3 WHEN 'cancelled' THEN 4 END)) & 1) = 1"
);

const KEY_OF: &str = "SELECT unique_key FROM jobq.jobs WHERE id = $1";

/// Wakes listeners when the transaction commits.
pub(crate) const NOTIFY: &str = "SELECT pg_notify('jobq_insert', '')";

const STATUS: &str = "SELECT status FROM jobq.jobs WHERE id = $1 FOR UPDATE";

const CANCEL_PENDING: &str = "UPDATE jobq.jobs SET status = 'cancelled', completed_at = $1, \
     updated_at = $1 WHERE id = $2 AND status = 'pending'";

const REQUEST_CANCEL: &str = "UPDATE jobq.jobs SET cancel_requested = true, updated_at = $1 \
     WHERE id = $2 AND status = 'in_progress'";

const RETRY: &str = "UPDATE jobq.jobs SET status = 'pending', attempts = 0, next_retry = $1, \
     updated_at = $1, completed_at = NULL, cancel_requested = false, locked_by = NULL, \
     lease_expires_at = NULL, result = NULL, progress = NULL \
     WHERE id = $2 AND status IN ('failed', 'cancelled')";

/// A batch of old final jobs; rows being changed by others are skipped.
const PRUNE: &str = "DELETE FROM jobq.jobs WHERE id IN (SELECT id FROM jobq.jobs \
     WHERE status = ANY($1) AND completed_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)";

/// Inserts a validated job (pending); with `notify`, wakes listeners on
/// commit. Returns `None` when inserted, or the job already holding its unique
/// key (then nothing was inserted).
pub(crate) fn insert(c: &mut Conn, job: &Job, payload: &str, notify: bool) -> Result<Option<Job>> {
    // `validate::build` holds it to `MAX_ATTEMPTS`; refused, never cut down.
    let max_attempts = i32::try_from(job.max_attempts).map_err(|_| Error::Invalid {
        field: "max_attempts",
        reason: format!(
            "{} is more than PostgreSQL stores (2147483647)",
            job.max_attempts
        ),
    })?;
    let backoff = job.backoff.as_ref().map(crate::retry::Backoff::to_stored);
    let (key, states) = match &job.unique {
        Some(k) => (Some(&k.key), Some(k.states.bits())),
        None => (None, None),
    };
    let params: &[&(dyn postgres::types::ToSql + Sync)] = &[
        &job.id.to_string(),
        &job.job_type,
        &job.priority,
        &payload,
        &max_attempts,
        &job.next_retry.0,
        &job.entity_type,
        &job.entity_id,
        &job.owner,
        &job.created_at.0,
        &backoff,
        &job.queue,
        &key,
        &states,
        &job.schedule,
        &job.fire_time.map(|t| t.0),
    ];
    let already = || Error::Invalid {
        field: "id",
        reason: format!("job {} already exists", job.id),
    };
    // The insert met a holder of the key that had committed; that holder may
    // have finished (freeing the key) before the holder is read, under READ
    // COMMITTED: then the insert is tried again. Each try either inserts or
    // finds a holder unless the key keeps changing hands between the two.
    for _ in 0..HOLDER_TRIES {
        let n = if notify {
            c.query("enqueue", INSERT_NOTIFY, params)?.len() as u64
        } else {
            c.execute("enqueue", INSERT, params)?
        };
        if n == 1 {
            return Ok(None);
        }
        if let Some(found) = holder(c, key.ok_or_else(already)?)? {
            return Ok(Some(found));
        }
    }
    // A conflict on the id itself finds no holder of the key either.
    if c.opt("enqueue", KEY_OF, &[&job.id.to_string()])?.is_some() {
        return Err(already());
    }
    Err(Error::Busy {
        operation: "enqueue",
    })
}

/// How often an enqueue of a unique job tries again when the holder its insert
/// met has gone by the time it is read.
const HOLDER_TRIES: usize = 8;

/// The job holding `key` now, if any.
pub(crate) fn holder(c: &mut Conn, key: &[u8]) -> Result<Option<Job>> {
    Ok(c.opt("enqueue", HOLDER, &[&key])?.map(|r| job_from_row(&r)))
}

/// The job other than `id` holding the key `id` has, if any.
fn other_holder(c: &mut Conn, id: JobId) -> Result<Option<Job>> {
    let key: Option<Vec<u8>> = c
        .opt("retry", KEY_OF, &[&id.to_string()])?
        .and_then(|r| r.get(0));
    match key {
        Some(k) => Ok(holder(c, &k)?.filter(|j| j.id != id)),
        None => Ok(None),
    }
}

fn status_of(c: &mut Conn, id: JobId, op: &'static str) -> Result<JobStatus> {
    let row = c
        .opt(op, STATUS, &[&id.to_string()])?
        .ok_or(Error::NotFound { id })?;
    Ok(row.get::<_, String>(0).parse().unwrap_or(JobStatus::Failed))
}

/// Cancels a pending job, requests cancellation of a running one, accepts a
/// cancelled one; refuses completed and failed.
pub(crate) fn cancel(c: &mut Conn, id: JobId, now: Timestamp) -> Result<Move> {
    let status = status_of(c, id, "cancel")?;
    let mv = next(status, false, Transition::Cancel).ok_or(Error::Conflict {
        id,
        status,
        operation: "cancel",
    })?;
    let sql = match mv {
        Move::To(_) => CANCEL_PENDING,
        Move::RequestCancel => REQUEST_CANCEL,
        Move::Unchanged => return Ok(mv),
    };
    c.execute("cancel", sql, &[&now.0, &id.to_string()])?;
    Ok(mv)
}

/// failed or cancelled -> pending, attempts 0, due now; the error history stays.
pub(crate) fn retry(c: &mut Conn, id: JobId, now: Timestamp) -> Result<()> {
    let status = status_of(c, id, "retry")?;
    if next(status, false, Transition::Retry).is_none() {
        return Err(Error::Conflict {
            id,
            status,
            operation: "retry",
        });
    }
    c.batch("retry", "SAVEPOINT retry")?;
    match c.execute("retry", RETRY, &[&now.0, &id.to_string()]) {
        Ok(_) => c.batch("retry", "RELEASE SAVEPOINT retry"),
        Err(Error::Postgres { source, .. })
            if source.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            c.batch("retry", "ROLLBACK TO SAVEPOINT retry")?;
            match other_holder(c, id)? {
                Some(holder) => Err(Error::UniqueConflict {
                    id,
                    holder: holder.id,
                }),
                None => Err(Error::Postgres {
                    operation: "retry",
                    source,
                }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Deletes up to `limit` jobs in `statuses` that finished before `cutoff`.
pub(crate) fn prune_batch(
    c: &mut Conn,
    statuses: &[JobStatus],
    cutoff: Timestamp,
    limit: usize,
) -> Result<usize> {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let n = c.execute("prune", PRUNE, &[&names, &cutoff.0, &lim])?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
