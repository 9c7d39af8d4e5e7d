//! Operator transitions: cancel and manual retry; and pruning old jobs.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobId, JobStatus};
use crate::state::{next, Move, Transition};
use crate::store::sqlite::id::key;

const STATUS: &str = "SELECT status FROM jobs WHERE id = ?1";

const CANCEL_PENDING: &str = "UPDATE jobs SET status = 'cancelled', completed_at = ?1, \
     updated_at = ?1 WHERE id = ?2 AND status = 'pending'";

const REQUEST_CANCEL: &str = "UPDATE jobs SET cancel_requested = 1, updated_at = ?1 \
     WHERE id = ?2 AND status = 'in_progress'";

const RETRY: &str = "UPDATE jobs SET status = 'pending', attempts = 0, next_retry = ?1, \
     updated_at = ?1, completed_at = NULL, cancel_requested = 0, locked_by = NULL, \
     lease_expires_at = NULL, result = NULL, progress = NULL \
     WHERE id = ?2 AND status IN ('failed', 'cancelled')";

/// Final jobs only, so the statement says `status != 'pending'`: it reads
/// `jobs_status` (status, then completed_at), not the table.
pub(crate) const PRUNE: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
     WHERE status IN (SELECT value FROM json_each(?1)) AND status != 'pending' \
     AND completed_at < ?2 LIMIT ?3 + 0)";

fn status_of(conn: &Connection, id: JobId, operation: &'static str) -> Result<JobStatus> {
    let mut stmt = conn.prepare_cached(STATUS).map_err(Error::db(operation))?;
    stmt.query_row(params![key(id)], |r| r.get(0))
        .optional()
        .map_err(Error::db(operation))?
        .ok_or(Error::NotFound { id })
}

/// Cancels a pending job, requests cancellation of a running one, accepts a
/// cancelled one; refuses completed and failed. Returns the resulting move.
pub(crate) fn cancel(conn: &Connection, id: JobId, now: Timestamp) -> Result<Move> {
    let status = status_of(conn, id, "cancel")?;
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
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("cancel"))?;
    stmt.execute(params![now.0, key(id)])
        .map_err(Error::db("cancel"))?;
    Ok(mv)
}

/// failed or cancelled -> pending, attempts 0, due now; the error history stays.
pub(crate) fn retry(conn: &Connection, id: JobId, now: Timestamp) -> Result<()> {
    let status = status_of(conn, id, "retry")?;
    if next(status, false, Transition::Retry).is_none() {
        return Err(Error::Conflict {
            id,
            status,
            operation: "retry",
        });
    }
    let mut stmt = conn.prepare_cached(RETRY).map_err(Error::db("retry"))?;
    match stmt.execute(params![now.0, key(id)]) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            match crate::store::sqlite::enqueue::other_holder(conn, id)? {
                Some(holder) => Err(Error::UniqueConflict {
                    id,
                    holder: holder.id,
                }),
                None => Err(Error::db("retry")(e)),
            }
        }
        Err(e) => Err(Error::db("retry")(e)),
    }
}

/// Deletes up to `limit` jobs in `statuses` (final ones only) that finished
/// before `cutoff`. Returns how many were deleted.
pub(crate) fn prune_batch(
    conn: &Connection,
    statuses: &[JobStatus],
    cutoff: Timestamp,
    limit: usize,
) -> Result<usize> {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let list = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
    let mut stmt = conn.prepare_cached(PRUNE).map_err(Error::db("prune"))?;
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    stmt.execute(params![list, cutoff.0, lim])
        .map_err(Error::db("prune"))
}
