//! Prefetched jobs (see [`crate::WorkerConfig::prefetch`]), as on SQLite: a
//! job claimed ahead is `in_progress` with no `started_at` and a short
//! reservation as its lease; its start is marked when a worker takes it, and a
//! reservation given back or expired before the start returns the job to
//! `pending` in its old place, its attempt not counted.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::{JobId, JobStatus};
use crate::store::postgres::claim::lease_refused;
use crate::store::postgres::conn::Conn;

const START: &str = "UPDATE jobq.jobs SET started_at = $1, updated_at = $1, \
     lease_expires_at = $2 WHERE id = $3 AND status = 'in_progress' AND lease_token = $4";

const GIVE_BACK: &str = "UPDATE jobq.jobs SET \
     status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, \
     attempts = CASE WHEN cancel_requested THEN attempts ELSE greatest(attempts - 1, 0) END, \
     completed_at = CASE WHEN cancel_requested THEN $1::bigint ELSE NULL END, \
     updated_at = $1::bigint, started_at = NULL, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = $2 AND status = 'in_progress' AND lease_token = $3 RETURNING status";

/// Marks a reserved job started at `at`, its lease held until `lease_until`.
///
/// # Errors
/// [`crate::Error::LeaseLost`] or [`crate::Error::NotFound`] when the
/// reservation is not held; database errors.
pub(crate) fn start(
    c: &mut Conn,
    id: JobId,
    token: i64,
    at: Timestamp,
    lease_until: Timestamp,
) -> Result<()> {
    let idt = id.to_string();
    let n = c.execute("start", START, &[&at.0, &lease_until.0, &idt, &token])?;
    if n == 0 {
        return Err(lease_refused(c, id, token, "start"));
    }
    Ok(())
}

/// Gives back a reserved job that never started. Returns its new status.
///
/// # Errors
/// [`crate::Error::LeaseLost`] or [`crate::Error::NotFound`] when the
/// reservation is not held; database errors.
pub(crate) fn give_back(c: &mut Conn, id: JobId, token: i64, now: Timestamp) -> Result<JobStatus> {
    let idt = id.to_string();
    match c.opt("give back", GIVE_BACK, &[&now.0, &idt, &token])? {
        Some(r) => Ok(crate::store::postgres::finish::status_of(r.get(0))),
        None => Err(lease_refused(c, id, token, "give back")),
    }
}
