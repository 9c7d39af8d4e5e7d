//! Prefetched jobs (see [`crate::WorkerConfig::prefetch`]), as on SQLite: a
//! job claimed ahead is `in_progress` with no `started_at` and a short
//! reservation as its lease; its start is marked when a worker takes it, and a
//! reservation given back or expired before the start returns the job to
//! `pending` in its old place, its attempt not counted. A pool's give-back
//! also forgets the start its claim recorded in the queue's rate window.

use std::collections::HashMap;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::{JobId, JobStatus};
use crate::store::postgres::claim::{lease_refused, outcomes_by_id};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::queues;

/// Every start of a round in one statement: the jobs of `$2` whose
/// reservation `$3` is still held start at `$4`, their leases held until `$1`.
const START_MANY: &str = "UPDATE jobq.jobs j SET started_at = d.at, updated_at = d.at, \
     lease_expires_at = $1 \
     FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS d(id, token, at) \
     WHERE j.id = d.id AND j.status = 'in_progress' AND j.lease_token = d.token \
     RETURNING j.id, d.token";

/// A reserved job that never started goes back (see the SQLite store's
/// `GIVE_BACK`): pending, or cancelled when a cancel was requested; its
/// attempt not counted either way. Returns the new status and the job's queue.
const GIVE_BACK: &str = "UPDATE jobq.jobs SET \
     status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, \
     attempts = greatest(attempts - 1, 0), \
     completed_at = CASE WHEN cancel_requested THEN $1::bigint ELSE NULL END, \
     updated_at = $1::bigint, started_at = NULL, locked_by = NULL, lease_expires_at = NULL \
     WHERE id = $2 AND status = 'in_progress' AND lease_token = $3 RETURNING status, queue";

/// The columns of a round's starts, as the statement's arrays.
pub(crate) struct StartArrays {
    pub ids: Vec<String>,
    pub tokens: Vec<i64>,
    pub ats: Vec<i64>,
}

impl StartArrays {
    pub(crate) fn of(starts: &[(JobId, i64, Timestamp)]) -> Self {
        StartArrays {
            ids: starts.iter().map(|s| s.0.to_string()).collect(),
            tokens: starts.iter().map(|s| s.1).collect(),
            ats: starts.iter().map(|s| s.2 .0).collect(),
        }
    }
}

/// Marks every reserved job of `starts` (id, lease token, start time) started
/// with one statement, its lease held until `lease_until`; returns each one's
/// outcome in input order: started, or its refusal ([`crate::Error::LeaseLost`],
/// [`crate::Error::NotFound`]) when its reservation is not held.
///
/// # Errors
/// Database errors (the whole round then rolls back).
pub(crate) fn start_many(
    c: &mut Conn,
    starts: &[(JobId, i64, Timestamp)],
    lease_until: Timestamp,
) -> Result<Vec<Result<()>>> {
    if starts.is_empty() {
        return Ok(Vec::new());
    }
    let a = StartArrays::of(starts);
    let rows = c.query(
        "start",
        START_MANY,
        &[&lease_until.0, &a.ids, &a.tokens, &a.ats],
    )?;
    let written: HashMap<(String, i64), ()> =
        rows.iter().map(|r| ((r.get(0), r.get(1)), ())).collect();
    let entries = starts.iter().map(|s| (s.0, s.1));
    outcomes_by_id(c, entries, &a.ids, written, "start")
}

/// Gives back a reserved job that never started. Returns its new status.
///
/// `claimed_at` is when it was claimed, when known: the start that claim
/// recorded in the queue's rate window is forgotten too (see the SQLite
/// store's `give_back`); `None` (recovery) leaves the window as it is.
///
/// # Errors
/// [`crate::Error::LeaseLost`] or [`crate::Error::NotFound`] when the
/// reservation is not held; database errors.
pub(crate) fn give_back(
    c: &mut Conn,
    id: JobId,
    token: i64,
    claimed_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<JobStatus> {
    let idt = id.to_string();
    let Some(r) = c.opt("give back", GIVE_BACK, &[&now.0, &idt, &token])? else {
        return Err(lease_refused(c, id, token, "give back"));
    };
    if let Some(at) = claimed_at {
        queues::forget_start(c, r.get(1), at)?;
    }
    Ok(crate::store::postgres::finish::status_of(r.get(0)))
}
