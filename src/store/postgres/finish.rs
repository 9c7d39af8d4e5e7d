//! Transitions out of `in_progress`: complete, fail, release and recover. Each
//! is fenced by the attempt's lease token (see [`crate::state`]).

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::failure::Failure;
use crate::job::{JobId, JobStatus};
use crate::retry::{Backoff, ErrorClass};
use crate::state::MAX_SNOOZES;
use crate::store::plan::{cannot_run, plan_failure, Running};
use crate::store::postgres::claim::{fail_unreadable, lease_refused, outcomes_by_id};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::reserve;
use crate::store::postgres::row::{job_columns, job_from_row};
use crate::store::Recovered;

/// Every completion of a round in one statement: the jobs of `$2` whose
/// attempt `$3` still holds its lease get the results `$4`; a prefetched job
/// whose start is written with its completion gets its start time from `$5`
/// (NULL: `started_at` stays as it is).
macro_rules! complete_many_sql {
    () => {
        "UPDATE jobq.jobs j SET \
     status = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'completed' END, \
     result = d.result::json, completed_at = $1, updated_at = $1, locked_by = NULL, \
     lease_expires_at = NULL, started_at = coalesce(d.started, j.started_at) \
     FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[]) \
       AS d(id, token, result, started) \
     WHERE j.id = d.id AND j.status = 'in_progress' AND j.lease_token = d.token \
     RETURNING j.id, d.token, j.status"
    };
}
pub(crate) use complete_many_sql;

const COMPLETE_MANY: &str = complete_many_sql!();

const RELEASE: &str = "UPDATE jobq.jobs SET \
     status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, \
     attempts = CASE WHEN cancel_requested THEN attempts ELSE greatest(attempts - 1, 0) END, \
     completed_at = CASE WHEN cancel_requested THEN $1::bigint ELSE NULL END, \
     next_retry = $1::bigint, updated_at = $1::bigint, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = $2 AND status = 'in_progress' AND lease_token = $3 RETURNING status";

const SNOOZES: &str = "SELECT snoozes, cancel_requested FROM jobq.jobs \
     WHERE id = $1 AND status = 'in_progress' AND lease_token = $2 FOR UPDATE";

const SNOOZE: &str = "UPDATE jobq.jobs SET \
     status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, \
     attempts = CASE WHEN cancel_requested THEN attempts ELSE greatest(attempts - 1, 0) END, \
     snoozes = snoozes + 1, next_retry = $1, \
     completed_at = CASE WHEN cancel_requested THEN $2::bigint ELSE NULL END, \
     updated_at = $2::bigint, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = $3 AND status = 'in_progress' AND lease_token = $4 RETURNING status";

/// The running attempt, locked until the transaction ends.
const RUNNING: &str = "SELECT attempts, max_attempts, cancel_requested, error_context::text, \
     locked_by, job_type, backoff, next_retry FROM jobq.jobs \
     WHERE id = $1 AND status = 'in_progress' AND lease_token = $2 FOR UPDATE";

/// The jobs a worker holds, locked until the transaction ends.
const HELD_BY: &str = "SELECT id, lease_token, started_at IS NULL FROM jobq.jobs \
     WHERE status = 'in_progress' \
     AND locked_by = $1 ORDER BY id FOR UPDATE";

const RECORD_FAILURE: &str = "UPDATE jobq.jobs SET status = $1, next_retry = $2, \
     error_message = $3, error_context = $4::text::json, completed_at = $5, updated_at = $6, \
     locked_by = NULL, lease_expires_at = NULL \
     WHERE id = $7 AND status = 'in_progress' AND lease_token = $8";

/// Expired leases, oldest first; rows another recoverer holds are skipped.
const EXPIRED: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobq.jobs WHERE status = 'in_progress' AND lease_expires_at < $1 \
     ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
);

pub(crate) fn status_of(text: &str) -> JobStatus {
    text.parse().unwrap_or(JobStatus::Failed)
}

/// The columns of a round's completions, as the statement's arrays.
pub(crate) struct CompleteArrays<'a> {
    pub ids: Vec<String>,
    pub tokens: Vec<i64>,
    pub results: Vec<&'a str>,
    pub started: Vec<Option<i64>>,
}

impl<'a> CompleteArrays<'a> {
    pub(crate) fn of(done: &'a [(JobId, i64, String)], started: &[Option<Timestamp>]) -> Self {
        CompleteArrays {
            ids: done.iter().map(|d| d.0.to_string()).collect(),
            tokens: done.iter().map(|d| d.1).collect(),
            results: done.iter().map(|d| d.2.as_str()).collect(),
            started: (0..done.len())
                .map(|i| started.get(i).copied().flatten().map(|t| t.0))
                .collect(),
        }
    }
}

/// Completes every (id, lease token, result JSON text) of `done` with one
/// statement; `started` gives, per entry, the start time of a prefetched job
/// whose start is written with its completion (`None`: not in this round).
/// Returns each one's outcome in input order: its new status, or its refusal
/// ([`crate::Error::LeaseLost`], [`crate::Error::NotFound`]) when its lease is
/// not held (its start is then not written either).
///
/// # Errors
/// Database errors (the whole round then rolls back).
pub(crate) fn complete_many(
    c: &mut Conn,
    done: &[(JobId, i64, String)],
    started: &[Option<Timestamp>],
    now: Timestamp,
) -> Result<Vec<Result<JobStatus>>> {
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let a = CompleteArrays::of(done, started);
    let rows = c.query(
        "complete",
        COMPLETE_MANY,
        &[&now.0, &a.ids, &a.tokens, &a.results, &a.started],
    )?;
    let changed: HashMap<(String, i64), JobStatus> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), status_of(r.get(2))))
        .collect();
    let entries = done.iter().map(|d| (d.0, d.1));
    outcomes_by_id(c, entries, &a.ids, changed, "complete")
}

/// in_progress -> pending with the attempt given back (or cancelled when requested).
pub(crate) fn release(c: &mut Conn, id: JobId, token: i64, now: Timestamp) -> Result<JobStatus> {
    let idt = id.to_string();
    match c.opt("release", RELEASE, &[&now.0, &idt, &token])? {
        Some(r) => Ok(status_of(r.get(0))),
        None => Err(lease_refused(c, id, token, "release")),
    }
}

/// in_progress -> pending after `delay` with the attempt given back and
/// `snoozes + 1` (cancelled when requested); a job that has snoozed
/// [`MAX_SNOOZES`] times fails instead, permanently.
pub(crate) fn snooze(
    c: &mut Conn,
    id: JobId,
    token: i64,
    delay: Duration,
    now: Timestamp,
) -> Result<JobStatus> {
    let idt = id.to_string();
    let Some(row) = c.opt("snooze", SNOOZES, &[&idt, &token])? else {
        return Err(lease_refused(c, id, token, "snooze"));
    };
    let (snoozes, cancel): (i32, bool) = (row.get(0), row.get(1));
    if snoozes >= i32::try_from(MAX_SNOOZES).unwrap_or(i32::MAX) && !cancel {
        let msg = format!("snoozed {snoozes} times, the most allowed ({MAX_SNOOZES})");
        let failure = Failure::new(&msg, ErrorClass::Permanent);
        return fail(c, id, token, &failure, &|_| Backoff::default(), now);
    }
    let at = now.plus(delay);
    match c.opt("snooze", SNOOZE, &[&at.0, &now.0, &idt, &token])? {
        Some(r) => Ok(status_of(r.get(0))),
        None => Err(lease_refused(c, id, token, "snooze")),
    }
}

fn running(c: &mut Conn, id: JobId, token: i64) -> Result<Option<Running>> {
    let row = c.opt("fail", RUNNING, &[&id.to_string(), &token])?;
    Ok(row.map(|r| Running {
        attempts: u32::try_from(r.get::<_, i32>(0)).unwrap_or(0),
        max_attempts: u32::try_from(r.get::<_, i32>(1)).unwrap_or(1),
        cancel_requested: r.get(2),
        error_context: r.get(3),
        locked_by: r.get(4),
        job_type: r.get(5),
        backoff: r
            .get::<_, Option<String>>(6)
            .and_then(|t| Backoff::from_stored(&t)),
        next_retry: Timestamp(r.get(7)),
        lease_token: token,
    }))
}

/// Records a failed attempt: back to pending after backoff, or failed, or
/// cancelled (see [`crate::store::plan`]).
pub(crate) fn fail(
    c: &mut Conn,
    id: JobId,
    token: i64,
    failure: &Failure,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
) -> Result<JobStatus> {
    fail_with(c, id, token, failure, backoff_for, now, false)
}

/// As [`fail`]; with `keep_place`, a job going back to pending keeps the due time
/// it had before its claim (its place in the run order) instead of a backoff.
fn fail_with(
    c: &mut Conn,
    id: JobId,
    token: i64,
    failure: &Failure,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
    keep_place: bool,
) -> Result<JobStatus> {
    let Some(run) = running(c, id, token)? else {
        return Err(lease_refused(c, id, token, "fail"));
    };
    let mut plan = plan_failure(&run, failure, backoff_for, now);
    if keep_place && plan.status == JobStatus::Pending {
        plan.next_retry = run.next_retry.min(now);
    }
    let context = plan.error_context.to_string();
    c.execute(
        "fail",
        RECORD_FAILURE,
        &[
            &plan.status.as_str(),
            &plan.next_retry.0,
            &plan.error_message,
            &context,
            &plan.completed_at.map(|t| t.0),
            &now.0,
            &id.to_string(),
            &token,
        ],
    )?;
    Ok(plan.status)
}

/// Recovers up to `limit` jobs whose lease expired before `now`: each counts
/// as a failed attempt with the retryable error "lease expired"; a reserved job
/// that never started (prefetch) goes back to pending uncounted instead.
pub(crate) fn recover_expired(
    c: &mut Conn,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Recovered>> {
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query("recover", EXPIRED, &[&now.0, &lim])?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let job = job_from_row(row);
        let (id, token) = (job.id, job.lease_token);
        if cannot_run(&job) {
            fail_unreadable(c, &job, &row.get::<_, String>(0), now)?;
            out.push(Recovered::attempt(id, JobStatus::Failed));
            continue;
        }
        let Some(started) = job.started_at else {
            let status = reserve::give_back(c, id, token, None, now)?;
            out.push(Recovered::reservation(id, status));
            continue;
        };
        let ran = now.since(started);
        let failure = Failure::new("lease expired", ErrorClass::Retryable).with_duration(ran);
        let status = fail(c, id, token, &failure, backoff_for, now)?;
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
    c: &mut Conn,
    worker: &str,
    message: &str,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
) -> Result<Vec<Recovered>> {
    let rows = c.query("recover worker", HELD_BY, &[&worker])?;
    let failure = Failure::new(message, ErrorClass::Retryable);
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let Ok(id) = r.get::<_, String>(0).parse::<JobId>() else {
            continue;
        };
        out.push(if r.get::<_, bool>(2) {
            Recovered::reservation(id, reserve::give_back(c, id, r.get(1), None, now)?)
        } else {
            let status = fail_with(c, id, r.get(1), &failure, backoff_for, now, true)?;
            Recovered::attempt(id, status)
        });
    }
    Ok(out)
}
