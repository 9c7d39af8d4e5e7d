//! Inserting jobs; operator transitions (cancel, manual retry); pruning.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::state::{next, Move, Transition};
use crate::store::postgres::conn::Conn;

macro_rules! insert {
    () => {
        "INSERT INTO jobq.jobs (id, job_type, status, priority, payload, attempts, \
         max_attempts, next_retry, entity_type, entity_id, owner, created_at, updated_at, backoff, \
         queue) VALUES ($1, $2, 'pending', $3, $4::text::json, 0, $5, $6, $7, $8, $9, $10, $10, \
         $11, $12)"
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

/// Wakes listeners when the transaction commits.
pub(crate) const NOTIFY: &str = "SELECT pg_notify('jobq_insert', '')";

/// Serializes inserts of one job type that look for a pending one first.
const LOCK_TYPE: &str = "SELECT pg_advisory_xact_lock(hashtextextended('jobq.type:' || $1, 0))";

const PENDING_OF_TYPE: &str =
    "SELECT EXISTS (SELECT 1 FROM jobq.jobs WHERE status = 'pending' AND job_type = $1)";

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

/// Inserts a validated job (pending); with `notify`, wakes listeners on commit.
pub(crate) fn insert(c: &mut Conn, job: &Job, payload: &str, notify: bool) -> Result<()> {
    let backoff = job.backoff.as_ref().map(crate::retry::Backoff::to_stored);
    let params: &[&(dyn postgres::types::ToSql + Sync)] = &[
        &job.id.to_string(),
        &job.job_type,
        &job.priority,
        &payload,
        &i32::try_from(job.max_attempts).unwrap_or(i32::MAX),
        &job.next_retry.0,
        &job.entity_type,
        &job.entity_id,
        &job.owner,
        &job.created_at.0,
        &backoff,
        &job.queue,
    ];
    if notify {
        c.query("enqueue", INSERT_NOTIFY, params)?;
    } else {
        c.execute("enqueue", INSERT, params)?;
    }
    Ok(())
}

/// Waits for other inserts of `job_type` that look first, then says whether a
/// job of that type is pending.
pub(crate) fn pending_of_type(c: &mut Conn, job_type: &str) -> Result<bool> {
    c.query("enqueue_unless_pending", LOCK_TYPE, &[&job_type])?;
    let row = c.opt("enqueue_unless_pending", PENDING_OF_TYPE, &[&job_type])?;
    Ok(row.is_some_and(|r| r.get(0)))
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
    c.execute("retry", RETRY, &[&now.0, &id.to_string()])?;
    Ok(())
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
