//! Transitions out of `in_progress`: complete, fail, release and recover. Each is
//! fenced by the attempt's lease token (see [`crate::state`]).

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::Job;
use crate::job::{JobId, JobStatus};
use crate::retry::{Backoff, ErrorClass};
use crate::state::MAX_SNOOZES;
use crate::store::plan::{plan_failure, Running};
use crate::store::sqlite::claim::fail_unreadable;
use crate::store::sqlite::id::{self, key};
use crate::store::sqlite::lease::lease_refused;
use crate::store::sqlite::reserve;
use crate::store::sqlite::row::{cannot_run, job_columns, job_from_row, JOB_COLUMNS};
use crate::store::{refusal_is_an_outcome, Recovered};

/// in_progress -> `$status` for a job whose cancel request is `$cancel`. `?5`:
/// the start time of a prefetched job whose start is written with its
/// completion (NULL: `started_at` stays as it is). No RETURNING: the number
/// of rows changed says enough, and RETURNING's buffer costs more than the
/// one-row update.
macro_rules! complete_sql {
    ($status:literal, $cancel:literal) => {
        concat!(
            "UPDATE jobs SET status = '",
            $status,
            "', result = ?1, completed_at = ?2, updated_at = ?2, locked_by = NULL, \
             lease_expires_at = NULL, started_at = coalesce(?5, started_at) \
             WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4 \
             AND cancel_requested = ",
            $cancel
        )
    };
}

/// The common case: no cancel requested.
const COMPLETE: &str = complete_sql!("completed", "0");
/// A cancel was requested while it ran: it ends cancelled.
const COMPLETE_CANCELLED: &str = complete_sql!("cancelled", "1");

const RELEASE: &str = "UPDATE jobs SET \
     status = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'pending' END, \
     attempts = CASE cancel_requested WHEN 1 THEN attempts ELSE max(attempts - 1, 0) END, \
     completed_at = CASE cancel_requested WHEN 1 THEN ?1 ELSE NULL END, \
     next_retry = ?1, updated_at = ?1, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = ?2 AND status = 'in_progress' AND lease_token = ?3 RETURNING status";

const SNOOZES: &str = "SELECT snoozes, cancel_requested FROM jobs \
     WHERE id = ?1 AND status = 'in_progress' AND lease_token = ?2";

const SNOOZE: &str = "UPDATE jobs SET \
     status = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'pending' END, \
     attempts = CASE cancel_requested WHEN 1 THEN attempts ELSE max(attempts - 1, 0) END, \
     snoozes = snoozes + 1, next_retry = ?1, \
     completed_at = CASE cancel_requested WHEN 1 THEN ?2 ELSE NULL END, \
     updated_at = ?2, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = ?3 AND status = 'in_progress' AND lease_token = ?4 RETURNING status";

const RUNNING: &str = "SELECT attempts, max_attempts, cancel_requested, error_context, locked_by, \
     job_type, backoff, next_retry FROM jobs WHERE id = ?1 AND status = 'in_progress' \
     AND lease_token = ?2";

const HELD_BY: &str = "SELECT id, lease_token, started_at IS NULL FROM jobs \
     WHERE status = 'in_progress' AND status != 'pending' \
     AND locked_by = ?1 ORDER BY id";

const RECORD_FAILURE: &str = "UPDATE jobs SET status = ?1, next_retry = ?2, error_message = ?3, \
     error_context = ?4, completed_at = ?5, updated_at = ?6, locked_by = NULL, \
     lease_expires_at = NULL WHERE id = ?7 AND status = 'in_progress' AND lease_token = ?8";

const EXPIRED: &str = concat!(
    "SELECT ",
    job_columns!(),
    ", id FROM jobs WHERE status = 'in_progress' AND status != 'pending' AND lease_expires_at < ?1 \
     ORDER BY lease_expires_at LIMIT ?2 + 0"
);

/// in_progress -> completed (or cancelled when requested), for each of
/// `done` (id, lease token, result text) with its start time in `started`
/// (same order; `None`: the job's start is not in this round). Returns each
/// one's new status, or its refusal: [`Error::LeaseLost`] or
/// [`Error::NotFound`] when the lease is not held (the start is then not
/// written either).
///
/// One prepared statement serves them all: looking a statement up in the
/// connection's cache hashes its text and puts it back after, which cost
/// about an eighth of a completion when done per job (BENCHMARKS.md, "One
/// completion statement per round").
///
/// # Errors
/// Database errors (the round's end).
pub(crate) fn complete_many(
    conn: &Connection,
    done: &[(JobId, i64, String)],
    started: &[Option<Timestamp>],
    now: Timestamp,
) -> Result<Vec<Result<JobStatus>>> {
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(COMPLETE)
        .map_err(Error::db("complete"))?;
    let mut out = Vec::with_capacity(done.len());
    for ((id, token, text), at) in done.iter().zip(started) {
        let at = at.map(|t| t.0);
        let n = stmt
            .execute(params![text, now.0, key(*id), token, at])
            .map_err(Error::db("complete"))?;
        out.push(if n == 1 {
            Ok(JobStatus::Completed)
        } else {
            refusal_is_an_outcome(complete_cancelled(conn, *id, *token, text, at, now))?
        });
    }
    Ok(out)
}

/// The completion of a job whose cancel was requested while it ran: it ends
/// cancelled. [`Error::LeaseLost`] or [`Error::NotFound`] when the lease is
/// not held.
fn complete_cancelled(
    conn: &Connection,
    id: JobId,
    token: i64,
    result: &str,
    started: Option<i64>,
    now: Timestamp,
) -> Result<JobStatus> {
    let mut stmt = conn
        .prepare_cached(COMPLETE_CANCELLED)
        .map_err(Error::db("complete"))?;
    let n = stmt
        .execute(params![result, now.0, key(id), token, started])
        .map_err(Error::db("complete"))?;
    if n == 1 {
        return Ok(JobStatus::Cancelled);
    }
    Err(lease_refused(conn, id, token, "complete"))
}

/// in_progress -> pending with the attempt given back (or cancelled when requested).
pub(crate) fn release(
    conn: &Connection,
    id: JobId,
    token: i64,
    now: Timestamp,
) -> Result<JobStatus> {
    let mut stmt = conn.prepare_cached(RELEASE).map_err(Error::db("release"))?;
    let status: Option<JobStatus> = stmt
        .query_row(params![now.0, key(id), token], |r| r.get(0))
        .optional()
        .map_err(Error::db("release"))?;
    status.ok_or_else(|| lease_refused(conn, id, token, "release"))
}

fn running(conn: &Connection, id: JobId, token: i64) -> rusqlite::Result<Option<Running>> {
    let mut stmt = conn.prepare_cached(RUNNING)?;
    // The history column is read leniently: unreadable history must not stop the
    // attempt's end from being written (it then starts afresh).
    let text = |r: &rusqlite::Row<'_>, i| -> Option<String> {
        match r.get_ref(i).ok()? {
            rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        }
    };
    stmt.query_row(params![key(id), token], |r| {
        Ok(Running {
            attempts: r.get(0)?,
            max_attempts: r.get(1)?,
            cancel_requested: r.get::<_, i64>(2)? != 0,
            error_context: text(r, 3),
            locked_by: text(r, 4),
            job_type: text(r, 5).unwrap_or_default(),
            backoff: text(r, 6).and_then(|t| Backoff::from_stored(&t)),
            next_retry: Timestamp(r.get_ref(7)?.as_i64().unwrap_or(0)),
            lease_token: token,
        })
    })
    .optional()
}

/// in_progress -> pending after `delay` with the attempt given back and
/// `snoozes + 1` (cancelled when requested); a job that has snoozed
/// [`MAX_SNOOZES`] times fails instead, permanently.
pub(crate) fn snooze(
    conn: &Connection,
    id: JobId,
    token: i64,
    delay: std::time::Duration,
    now: Timestamp,
) -> Result<JobStatus> {
    let found: Option<(i64, i64)> = conn
        .prepare_cached(SNOOZES)
        .and_then(|mut s| {
            s.query_row(params![key(id), token], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(Error::db("snooze"))?;
    let (snoozes, cancel) = found.ok_or_else(|| lease_refused(conn, id, token, "snooze"))?;
    let exhausted = snoozes >= i64::from(MAX_SNOOZES);
    if exhausted && cancel == 0 {
        let msg = format!("snoozed {snoozes} times, the most allowed ({MAX_SNOOZES})");
        let failure = Failure::new(&msg, ErrorClass::Permanent);
        return fail(conn, id, token, &failure, &|_| Backoff::default(), now);
    }
    let mut stmt = conn.prepare_cached(SNOOZE).map_err(Error::db("snooze"))?;
    let at = now.plus(delay);
    stmt.query_row(params![at.0, now.0, key(id), token], |r| r.get(0))
        .optional()
        .map_err(Error::db("snooze"))?
        .ok_or_else(|| lease_refused(conn, id, token, "snooze"))
}

/// Records a failed attempt: back to pending after backoff, or failed, or
/// cancelled (see [`crate::state`]). The delay comes from the failure's
/// `retry_after`, else the schedule stored with the job, else `backoff_for`
/// (this process's catalogue, for jobs stored without one).
pub(crate) fn fail(
    conn: &Connection,
    id: JobId,
    token: i64,
    failure: &Failure,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
) -> Result<JobStatus> {
    fail_with(conn, id, token, failure, backoff_for, now, false)
}

/// As [`fail`]; with `keep_place`, a job going back to pending keeps the due time
/// it had before its claim (its place in the run order) instead of a backoff.
fn fail_with(
    conn: &Connection,
    id: JobId,
    token: i64,
    failure: &Failure,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
    keep_place: bool,
) -> Result<JobStatus> {
    let run = running(conn, id, token)
        .map_err(Error::db("fail"))?
        .ok_or_else(|| lease_refused(conn, id, token, "fail"))?;
    let mut plan = plan_failure(&run, failure, backoff_for, now);
    if keep_place && plan.status == JobStatus::Pending {
        plan.next_retry = run.next_retry.min(now);
    }
    let mut stmt = conn
        .prepare_cached(RECORD_FAILURE)
        .map_err(Error::db("fail"))?;
    stmt.execute(params![
        plan.status,
        plan.next_retry.0,
        plan.error_message,
        plan.error_context.to_string(),
        plan.completed_at.map(|t| t.0),
        now.0,
        key(id),
        token
    ])
    .map_err(Error::db("fail"))?;
    Ok(plan.status)
}

/// Recovers up to `limit` jobs whose lease expired before `now`: each counts as
/// a failed attempt with the retryable error "lease expired"; a reserved job
/// that never started (prefetch) goes back to pending uncounted instead.
/// Returns each job's new status.
pub(crate) fn recover_expired(
    conn: &Connection,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Recovered>> {
    let expired: Vec<(Job, Value)> = {
        let mut stmt = conn.prepare_cached(EXPIRED).map_err(Error::db("recover"))?;
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![now.0, lim], |r| {
                Ok((job_from_row(r)?, r.get(JOB_COLUMNS)?))
            })
            .map_err(Error::db("recover"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::db("recover"))?
    };
    let mut out = Vec::with_capacity(expired.len());
    for (job, stored) in expired {
        if cannot_run(&job) {
            fail_unreadable(conn, &job, &stored, now)?;
            out.push(Recovered::attempt(job.id, JobStatus::Failed));
            continue;
        }
        let (id, token) = (job.id, job.lease_token);
        if job.started_at.is_none() {
            let status = reserve::give_back(conn, id, token, None, now)?;
            out.push(Recovered::reservation(id, status));
            continue;
        }
        let ran = job.started_at.map(|s| now.since(s)).unwrap_or_default();
        let failure = Failure::new("lease expired", ErrorClass::Retryable).with_duration(ran);
        let status = fail(conn, id, token, &failure, backoff_for, now)?;
        out.push(Recovered::attempt(id, status));
    }
    Ok(out)
}

/// Hands back every job `worker` holds in progress, at once (its process is
/// known to be dead): each counts as a failed attempt with the retryable error
/// `message`, and a job that goes back to pending keeps its place in the run
/// order (a reserved job that never started goes back uncounted). Returns each
/// job's new status.
pub(crate) fn recover_worker(
    conn: &Connection,
    worker: &str,
    message: &str,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
) -> Result<Vec<Recovered>> {
    let held: Vec<(JobId, i64, bool)> = {
        let mut stmt = conn
            .prepare_cached(HELD_BY)
            .map_err(Error::db("recover worker"))?;
        let rows = stmt
            .query_map(params![worker], |r| {
                Ok((id::get(r, 0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(Error::db("recover worker"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::db("recover worker"))?
    };
    let failure = Failure::new(message, ErrorClass::Retryable);
    held.into_iter()
        .map(|(id, token, reserved)| {
            Ok(if reserved {
                Recovered::reservation(id, reserve::give_back(conn, id, token, None, now)?)
            } else {
                let status = fail_with(conn, id, token, &failure, backoff_for, now, true)?;
                Recovered::attempt(id, status)
            })
        })
        .collect()
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::store::sqlite::overview::tests::plan;

    /// Every read of running jobs goes through `jobs_status` (which holds them
    /// since version 8 dropped `jobs_lease`), never a scan of the whole table.
    #[test]
    fn reads_of_running_jobs_use_the_status_index() {
        for sql in [
            EXPIRED,
            HELD_BY,
            crate::store::sqlite::read::CANCEL_REQUESTS,
            crate::store::sqlite::queues::RUNNING,
            crate::store::sqlite::queues::RUNNING_BY_QUEUE,
            crate::store::sqlite::workers::FORGET_OLD,
            crate::store::sqlite::workers::ALL,
            crate::store::sqlite::workers::RUNNING_WORKERS,
        ] {
            let p = plan(sql);
            // No scan of the jobs table or of an index of it, under its name
            // or its alias `j` (`SCAN j USING INDEX jobs_status` reads every
            // finished job too); every read of it seeks the status index.
            let steps: Vec<&str> = p.split(" | ").collect();
            let scans = steps.iter().any(|step| {
                ["SCAN jobs", "SCAN j"]
                    .iter()
                    .any(|s| *step == *s || step.starts_with(&format!("{s} ")))
            });
            let reads = sql.matches("FROM jobs").count();
            let seeks = steps
                .iter()
                .filter(|step| step.starts_with("SEARCH") && step.contains("INDEX jobs_status"))
                .count();
            assert!(!scans && seeks >= reads, "{sql}: {p}");
        }
    }
}
