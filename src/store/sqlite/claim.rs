//! Claiming due jobs and holding their leases: claim, heartbeat, progress.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::queues::QueueSettings;
use crate::store::fold::share_slots;
use crate::store::sqlite::queues;
use crate::store::sqlite::row::{cannot_run, job_columns, job_from_row, JOB_COLUMNS};

/// pending and due -> in_progress (see [`crate::state`]): one statement, at most
/// `?5` jobs of queue `?6`, run order (`?7` = 1: reserved for the pool's
/// prefetch buffer, not started: `started_at` stays NULL; see `reserve.rs`), through the partial index `jobs_claim`. The subquery
/// yields rowids (what the partial index stores), so each claimed row is one
/// b-tree seek, not a walk through the primary-key index.
///
/// `LIMIT ?5 + 0`, not `LIMIT ?5`: SQLite's planner reads a bare bound LIMIT and
/// marks the statement to be re-prepared whenever it is bound again, which costs
/// a full parse and plan on every claim (measured: a third of the claim's time).
const CLAIM: &str = concat!(
    "UPDATE jobs SET status = 'in_progress', attempts = attempts + 1, \
     lease_token = lease_token + 1, locked_by = ?1, lease_expires_at = ?2, \
     started_at = CASE ?7 WHEN 1 THEN NULL ELSE ?3 END, updated_at = ?3, progress = NULL \
     WHERE rowid IN (SELECT rowid FROM jobs WHERE status = 'pending' AND queue = ?6 \
       AND next_retry <= ?3 AND (?4 IS NULL OR job_type IN (SELECT value FROM json_each(?4))) \
       ORDER BY priority DESC, next_retry, id LIMIT ?5 + 0) \
     RETURNING ",
    job_columns!(),
    ", rowid"
);

/// Ends a claimed job that cannot run as stored (see [`cannot_run`]): failed,
/// permanently, addressed by rowid (its id may be what is unreadable).
const FAIL_UNREADABLE: &str = "UPDATE jobs SET status = 'failed', error_message = ?1, \
     error_context = ?2, completed_at = ?3, updated_at = ?3, locked_by = NULL, \
     lease_expires_at = NULL WHERE rowid = ?4 AND status = 'in_progress'";

const HEARTBEAT: &str = "UPDATE jobs SET lease_expires_at = ?1, updated_at = ?2 \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4 RETURNING cancel_requested";

const PROGRESS: &str = "UPDATE jobs SET progress = ?1, updated_at = ?2 \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4";

const LOOKUP: &str = "SELECT lease_token FROM jobs WHERE id = ?1";

/// What to claim in one round (inside `BEGIN IMMEDIATE`).
pub(crate) struct ClaimArgs<'a> {
    pub worker: &'a str,
    /// The job types as a JSON array; `None`: any type.
    pub types: Option<&'a str>,
    /// Only these queues; `None`: every queue.
    pub queues: Option<&'a [String]>,
    pub n: usize,
    pub now: Timestamp,
    pub lease_until: Timestamp,
    /// Reserve (prefetch: not started yet) instead of starting the jobs.
    pub reserve: bool,
    /// Where the round starts in the list of queues with pending jobs, so that
    /// successive rounds take turns (one busy queue does not starve another).
    pub rotation: usize,
}

/// Claims up to `n` due jobs for `worker`, with leases until `lease_until`,
/// from the queues it serves that are not paused, within each queue's
/// concurrency and rate limits (read in this transaction, so they are exact
/// across processes). Slots are shared between the queues with due jobs (each
/// gets an even share first, then the rest goes to whoever can use it).
/// Returned in run order. Run inside `BEGIN IMMEDIATE`.
///
/// A claimed job that cannot run as stored (an unreadable id, payload or
/// number) is ended `failed` in the same transaction, with a permanent error
/// naming the column, and not returned: it runs never, and stops nothing.
pub(crate) fn claim(conn: &Connection, a: &ClaimArgs<'_>) -> Result<Vec<Job>> {
    let settings = queues::settings(conn)?;
    let mut candidates = queues::pending_queues(conn)?;
    candidates.retain(|q| {
        a.queues.is_none_or(|only| only.contains(q))
            && !settings.get(q).is_some_and(|s| s.is_paused(a.now))
    });
    share_slots(candidates, a.n, a.rotation, |q, want| {
        let room = queues::room(conn, q, settings.get(q), a.now)?;
        let got = claim_queue(conn, a, q, want(room), settings.get(q))?;
        Ok((room, got))
    })
}

/// Claims up to `n` due jobs of one queue (and records their starts when it is
/// rate-limited).
fn claim_queue(
    conn: &Connection,
    a: &ClaimArgs<'_>,
    queue: &str,
    n: usize,
    settings: Option<&QueueSettings>,
) -> Result<Vec<Job>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(CLAIM).map_err(Error::db("claim"))?;
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            params![
                a.worker,
                a.lease_until.0,
                a.now.0,
                a.types,
                limit,
                queue,
                a.reserve
            ],
            |r| Ok((job_from_row(r)?, r.get::<_, i64>(JOB_COLUMNS)?)),
        )
        .map_err(Error::db("claim"))?;
    let claimed = rows
        .collect::<rusqlite::Result<Vec<(Job, i64)>>>()
        .map_err(Error::db("claim"))?;
    if let Some(limit) = settings.and_then(|s| s.rate_limit) {
        queues::record_starts(conn, queue, limit, claimed.len(), a.now)?;
    }
    let mut jobs = Vec::with_capacity(claimed.len());
    for (job, rowid) in claimed {
        if cannot_run(&job) {
            fail_unreadable(conn, &job, rowid, a.now)?;
        } else {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Ends `job` (claimed or expired, at `rowid`) failed because it cannot run as stored.
pub(crate) fn fail_unreadable(
    conn: &Connection,
    job: &Job,
    rowid: i64,
    now: Timestamp,
) -> Result<()> {
    let message = job.unreadable.join("; ");
    log::error!(
        "job {} ({}) cannot run as stored: {message}; it ends failed",
        job.id,
        job.job_type
    );
    let entry = serde_json::json!({
        "attempt": job.attempts,
        "class": "permanent",
        "failed_at": now,
        "worker": job.locked_by,
        "duration_ms": 0,
    });
    let mut context = entry.clone();
    let mut first = entry;
    first["message"] = serde_json::Value::String(message.clone());
    context["errors"] = serde_json::json!([first]);
    let mut stmt = conn
        .prepare_cached(FAIL_UNREADABLE)
        .map_err(Error::db("claim"))?;
    stmt.execute(params![message, context.to_string(), now.0, rowid])
        .map_err(Error::db("claim"))?;
    Ok(())
}

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
        .query_row(params![lease_until.0, now.0, id, token], |r| r.get(0))
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
        .execute(params![report, now.0, id, token])
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
    let found = conn
        .prepare_cached(LOOKUP)
        .and_then(|mut s| s.query_row(params![id], |r| r.get::<_, i64>(0)).optional());
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

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn the_claim_keeps_its_partial_index_beside_the_dashboards() {
        let p = crate::store::sqlite::overview::tests::plan(CLAIM);
        assert!(p.contains("INDEX jobs_claim"), "{p}");
    }
}
