//! Prefetched jobs (see [`crate::WorkerConfig::prefetch`]): a job claimed ahead
//! is `in_progress` with no `started_at` and a short reservation as its lease.
//! Its start is marked when a worker takes it; a reservation that is given back
//! (shutdown) or expires (the process died) before the start returns the job to
//! `pending` in its old place, its attempt not counted. A pool's give-back
//! also forgets the start its claim recorded in the queue's rate window.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobId, JobStatus};
use crate::store::sqlite::id::key;
use crate::store::sqlite::lease::lease_refused;
use crate::store::sqlite::queues;

/// A reserved job starts: `started_at` set, the full lease from now.
const START: &str = "UPDATE jobs SET started_at = ?1, updated_at = ?1, lease_expires_at = ?2 \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4";

/// A reserved job that never started goes back: pending, due as before (its
/// place in the run order kept); cancelled instead when a cancel was
/// requested meanwhile. Either way the attempt is not counted: it never ran.
/// Returns the new status and the job's queue.
const GIVE_BACK: &str = "UPDATE jobs SET \
     status = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'pending' END, \
     attempts = max(attempts - 1, 0), \
     completed_at = CASE cancel_requested WHEN 1 THEN ?1 ELSE NULL END, \
     updated_at = ?1, started_at = NULL, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = ?2 AND status = 'in_progress' AND lease_token = ?3 RETURNING status, queue";

/// Marks a reserved job started at `at`, its lease held until `lease_until`.
///
/// # Errors
/// [`Error::LeaseLost`] or [`Error::NotFound`] when the reservation is not held.
pub(crate) fn start(
    conn: &Connection,
    id: JobId,
    token: i64,
    at: Timestamp,
    lease_until: Timestamp,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(START).map_err(Error::db("start"))?;
    let n = stmt
        .execute(params![at.0, lease_until.0, key(id), token])
        .map_err(Error::db("start"))?;
    if n == 0 {
        return Err(lease_refused(conn, id, token, "start"));
    }
    Ok(())
}

/// Gives back a reserved job that never started. Returns its new status.
///
/// `claimed_at` is when it was claimed (its claim round's time), when known:
/// the start that claim recorded in the queue's rate window is forgotten too
/// (the job did not start), so the queue's whole limit is there again. `None`
/// (recovery of a reservation that ran out: its row no longer says when it
/// was claimed) leaves the window as it is; the start slides out of it.
///
/// # Errors
/// [`Error::LeaseLost`] or [`Error::NotFound`] when the reservation is not held.
pub(crate) fn give_back(
    conn: &Connection,
    id: JobId,
    token: i64,
    claimed_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<JobStatus> {
    let mut stmt = conn
        .prepare_cached(GIVE_BACK)
        .map_err(Error::db("give back"))?;
    let back: Option<(JobStatus, String)> = stmt
        .query_row(params![now.0, key(id), token], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(Error::db("give back"))?;
    let (status, queue) = back.ok_or_else(|| lease_refused(conn, id, token, "give back"))?;
    if let Some(at) = claimed_at {
        queues::forget_start(conn, &queue, at)?;
    }
    Ok(status)
}
