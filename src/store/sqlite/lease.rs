//! Holding a claimed job's lease: heartbeat, progress, and the error a fenced
//! statement gives when the lease is not held.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::store::sqlite::id::key;

/// Never shortens a lease: a reservation's renewal that commits after the
/// round that wrote the job's start (and its full lease) must not cut that
/// lease back to the reservation.
const HEARTBEAT: &str = "UPDATE jobs SET \
     lease_expires_at = max(coalesce(lease_expires_at, ?1), ?1), updated_at = ?2 \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4 RETURNING cancel_requested";

const PROGRESS: &str = "UPDATE jobs SET progress = ?1, updated_at = ?2 \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4";

const LOOKUP: &str = "SELECT lease_token FROM jobs WHERE id = ?1";

/// Extends a lease to `lease_until`. Returns whether a cancel was requested.
///
/// # Errors
/// [`Error::LeaseLost`] or [`Error::NotFound`] when the lease is not held.
pub(crate) fn heartbeat(
    conn: &Connection,
    id: JobId,
    token: i64,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<bool> {
    let mut stmt = conn
        .prepare_cached(HEARTBEAT)
        .map_err(Error::db("heartbeat"))?;
    let flag: Option<i64> = stmt
        .query_row(params![lease_until.0, now.0, key(id), token], |r| r.get(0))
        .optional()
        .map_err(Error::db("heartbeat"))?;
    match flag {
        Some(f) => Ok(f != 0),
        None => Err(lease_refused(conn, id, token, "heartbeat")),
    }
}

/// Stores a progress report (JSON text) on a job whose lease is held.
pub(crate) fn progress(
    conn: &Connection,
    id: JobId,
    token: i64,
    report: &str,
    now: Timestamp,
) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(PROGRESS)
        .map_err(Error::db("progress"))?;
    let n = stmt
        .execute(params![report, now.0, key(id), token])
        .map_err(Error::db("progress"))?;
    if n == 0 {
        return Err(lease_refused(conn, id, token, "progress"));
    }
    Ok(())
}

/// The error for a fenced statement that changed nothing: not found, or lease lost.
pub(crate) fn lease_refused(
    conn: &Connection,
    id: JobId,
    token: i64,
    operation: &'static str,
) -> Error {
    let found = conn.prepare_cached(LOOKUP).and_then(|mut s| {
        s.query_row(params![key(id)], |r| r.get::<_, i64>(0))
            .optional()
    });
    match found {
        Ok(None) => Error::NotFound { id },
        Ok(Some(_)) => Error::LeaseLost {
            id,
            lease_token: token,
            operation,
        },
        Err(e) => Error::db(operation)(e),
    }
}
