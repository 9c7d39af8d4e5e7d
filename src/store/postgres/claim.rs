//! Claiming due jobs and holding their leases: claim, heartbeat, progress.

use std::collections::{BTreeMap, HashMap};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::queues::QueueSettings;
use crate::store::fold::share_slots;
use crate::store::plan::cannot_run;
use crate::store::postgres::conn::{Conn, Params};
use crate::store::postgres::queues;
use crate::store::postgres::row::{j_columns, job_from_row};
use crate::store::refusal_is_an_outcome;

/// pending and due -> in_progress (see [`crate::state`]): one statement. The
/// CTE picks at most `$5` due jobs of queue `$6` in run order through the partial index
/// `jobs_claim`, skipping rows other claimers hold (`SKIP LOCKED`), and fences
/// the plan (the planner may not run the LIMIT subquery once per row).
const CLAIM: &str = concat!(
    "WITH next AS (SELECT id FROM jobq.jobs WHERE status = 'pending' AND queue = $6 \
       AND next_retry <= $3 \
       AND ($4::text[] IS NULL OR job_type = ANY($4::text[])) \
       ORDER BY priority DESC, next_retry, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
     UPDATE jobq.jobs j SET status = 'in_progress', attempts = j.attempts + 1, \
       lease_token = j.lease_token + 1, locked_by = $1, lease_expires_at = $2, \
       started_at = CASE WHEN $7::boolean THEN NULL ELSE $3 END, updated_at = $3, \
       progress = NULL \
     FROM next WHERE j.id = next.id RETURNING ",
    j_columns!()
);

/// Ends a claimed job that cannot run as stored: failed, permanently.
const FAIL_UNREADABLE: &str = "UPDATE jobq.jobs SET status = 'failed', error_message = $1, \
     error_context = $2::text::json, completed_at = $3, updated_at = $3, locked_by = NULL, \
     lease_expires_at = NULL WHERE id = $4 AND status = 'in_progress'";

/// Every lease of a heartbeat in one statement: the jobs of `$3` whose
/// attempt `$4` still holds its lease are held until `$1`, never less than
/// they were (see the SQLite store's `HEARTBEAT`).
const HEARTBEAT_MANY: &str = "UPDATE jobq.jobs j SET \
     lease_expires_at = greatest(j.lease_expires_at, $1), updated_at = $2 \
     FROM unnest($3::text[], $4::bigint[]) AS d(id, token) \
     WHERE j.id = d.id AND j.status = 'in_progress' AND j.lease_token = d.token \
     RETURNING j.id, d.token, j.cancel_requested";

const PROGRESS: &str = "UPDATE jobq.jobs SET progress = $1::text::json, updated_at = $2 \
     WHERE id = $3 AND status = 'in_progress' AND lease_token = $4";

const LOOKUP: &str = "SELECT lease_token FROM jobq.jobs WHERE id = $1";

/// What to claim in one round.
pub(crate) struct ClaimArgs<'a> {
    pub worker: &'a str,
    /// Only these job types; `None`: any type.
    pub types: Option<&'a [String]>,
    /// Only these queues; `None`: every queue.
    pub queues: Option<&'a [String]>,
    pub n: usize,
    pub now: Timestamp,
    pub lease_until: Timestamp,
    /// Reserve (prefetch: not started; `started_at` stays NULL) instead of starting.
    pub reserve: bool,
    /// With `reserve`: the pool's idle workers (see `QueueSettings::claimable`).
    pub start_now: usize,
    /// Where the round starts among the queues with pending jobs (turns).
    pub rotation: usize,
}

/// Claims up to `n` due jobs for `worker` from the queues it serves that are
/// not paused, within each queue's concurrency and rate limits (exact across
/// processes: the limited queues' rows are locked first). Slots are shared
/// between queues with due jobs as on SQLite: an even share each, then the
/// rest to whoever can use it. Returned in run order. A claimed job that cannot
/// run as stored ends failed in the same transaction and is not returned.
pub(crate) fn claim(c: &mut Conn, a: &ClaimArgs<'_>) -> Result<Vec<Job>> {
    let mut found = queues::pending_with_settings(c)?;
    found.retain(|(q, _)| a.queues.is_none_or(|only| only.contains(q)));
    if found.is_empty() || a.n == 0 {
        return Ok(Vec::new());
    }
    let mut candidates: Vec<String> = found.iter().map(|(q, _)| q.clone()).collect();
    let settings = settings_under_locks(c, found)?;
    candidates.retain(|q| !settings.get(q).is_some_and(|s| s.is_paused(a.now)));
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // Limited queues' reservations share the pool's idle workers.
    let mut start_now = a.start_now;
    share_slots(candidates, a.n, a.rotation, |q, want| {
        let room = queues::room(c, q, settings.get(q), a.now)?;
        let room = QueueSettings::claimable(settings.get(q), room, a.reserve, start_now);
        let got = claim_queue(c, a, q, want(room), settings.get(q))?;
        if QueueSettings::limits(settings.get(q)) {
            start_now = start_now.saturating_sub(got.len());
        }
        Ok((room, got))
    })
}

/// The candidate queues' settings. When one of them has a limit, the limited
/// candidates' rows are locked first and every setting read again under the
/// locks (limits exact across processes); otherwise no lock is taken and the
/// settings read with the candidates serve (one statement fewer per round).
fn settings_under_locks(
    c: &mut Conn,
    found: Vec<(String, Option<QueueSettings>)>,
) -> Result<BTreeMap<String, QueueSettings>> {
    let limited = |s: &QueueSettings| s.concurrency.is_some() || s.rate_limit.is_some();
    if found.iter().any(|(_, s)| s.as_ref().is_some_and(limited)) {
        let names: Vec<String> = found.into_iter().map(|(q, _)| q).collect();
        queues::lock_limited(c, &names)?;
        return queues::settings(c);
    }
    Ok(found
        .into_iter()
        .filter_map(|(q, s)| Some((q, s?)))
        .collect())
}

/// Claims up to `n` due jobs of one queue (recording starts when it is rate-limited).
fn claim_queue(
    c: &mut Conn,
    a: &ClaimArgs<'_>,
    queue: &str,
    n: usize,
    settings: Option<&QueueSettings>,
) -> Result<Vec<Job>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let params: Params<'_> = &[
        &a.worker,
        &a.lease_until.0,
        &a.now.0,
        &a.types,
        &limit,
        &queue,
        &a.reserve,
    ];
    let rows = c.query("claim", CLAIM, params)?;
    if let Some(rate) = settings.and_then(|s| s.rate_limit) {
        queues::record_starts(c, queue, rate, rows.len(), a.now)?;
    }
    let mut jobs = Vec::with_capacity(rows.len());
    for row in &rows {
        let job = job_from_row(row);
        if cannot_run(&job) {
            let id: String = row.get(0);
            fail_unreadable(c, &job, &id, a.now)?;
        } else {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Ends `job` (stored under the id text `id`) failed: it cannot run as stored.
pub(crate) fn fail_unreadable(c: &mut Conn, job: &Job, id: &str, now: Timestamp) -> Result<()> {
    let message = job.unreadable.join("; ");
    log::error!(
        "job {id} ({}) cannot run as stored: {message}; it ends failed",
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
    let text = context.to_string();
    c.execute("claim", FAIL_UNREADABLE, &[&message, &text, &now.0, &id])?;
    Ok(())
}

/// Extends the leases of `held` (id, lease token) to `until` with one
/// statement. Returns, per entry in input order, whether a cancel was
/// requested, or its refusal ([`Error::LeaseLost`], [`Error::NotFound`]) when
/// its lease is not held.
///
/// # Errors
/// Database errors (the whole heartbeat then rolls back).
pub(crate) fn heartbeat_many(
    c: &mut Conn,
    held: &[(JobId, i64)],
    now: Timestamp,
    until: Timestamp,
) -> Result<Vec<Result<bool>>> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = held.iter().map(|h| h.0.to_string()).collect();
    let tokens: Vec<i64> = held.iter().map(|h| h.1).collect();
    let rows = c.query(
        "heartbeat",
        HEARTBEAT_MANY,
        &[&until.0, &now.0, &ids, &tokens],
    )?;
    let cancel: HashMap<(String, i64), bool> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    outcomes_by_id(c, held.iter().copied(), &ids, cancel, "heartbeat")
}

/// Stores a progress report on a job whose lease is held.
pub(crate) fn progress(
    c: &mut Conn,
    id: JobId,
    token: i64,
    report: &str,
    now: Timestamp,
) -> Result<()> {
    let idt = id.to_string();
    if c.execute("progress", PROGRESS, &[&report, &now.0, &idt, &token])? == 0 {
        return Err(lease_refused(c, id, token, "progress"));
    }
    Ok(())
}

/// The outcome of each entry (id, lease token) of a statement over many jobs,
/// in input order: what the statement returned for the entry (`found`, by id
/// text and lease token, so that a stale token beside the live one of the same
/// job gets its own refusal; `ids` holds each entry's id text), or its refusal
/// ([`Error::LeaseLost`], [`Error::NotFound`]) when it returned nothing for it.
///
/// # Errors
/// Database errors while telling a refusal's kind.
pub(crate) fn outcomes_by_id<T>(
    c: &mut Conn,
    entries: impl IntoIterator<Item = (JobId, i64)>,
    ids: &[String],
    mut found: HashMap<(String, i64), T>,
    operation: &'static str,
) -> Result<Vec<Result<T>>> {
    ids.iter()
        .zip(entries)
        .map(
            |(idt, (id, token))| match found.remove(&(idt.clone(), token)) {
                Some(v) => Ok(Ok(v)),
                None => refusal_is_an_outcome(Err(lease_refused(c, id, token, operation))),
            },
        )
        .collect()
}

/// The error for a fenced statement that changed nothing: not found, or lease lost.
pub(crate) fn lease_refused(c: &mut Conn, id: JobId, token: i64, operation: &'static str) -> Error {
    match c.opt(operation, LOOKUP, &[&id.to_string()]) {
        Ok(None) => Error::NotFound { id },
        Ok(Some(_)) => Error::LeaseLost {
            id,
            lease_token: token,
            operation,
        },
        Err(e) => e,
    }
}
