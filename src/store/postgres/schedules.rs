//! Recurring schedules' stored state: the latest fire time handled and its job.
//! Firings of one schedule take turns (a transaction-scoped advisory lock), so
//! processes that fire together agree on what is done.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::Job;
use crate::schedule::ScheduleState;
use crate::store::postgres::admin;
use crate::store::postgres::conn::Conn;
use crate::store::FirePlan;

const ALL: &str = "SELECT name, last_fire_at, last_job_id FROM jobq.schedules ORDER BY name";

const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('jobq.schedule:' || $1, 0))";

const ONE: &str = "SELECT last_fire_at FROM jobq.schedules WHERE name = $1";

const RECORD: &str =
    "INSERT INTO jobq.schedules AS s (name, last_fire_at, last_job_id, updated_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
     last_fire_at = CASE WHEN excluded.last_fire_at IS NULL THEN s.last_fire_at \
       ELSE greatest(coalesce(s.last_fire_at, excluded.last_fire_at), excluded.last_fire_at) END, \
     last_job_id = coalesce(excluded.last_job_id, s.last_job_id), updated_at = excluded.updated_at";

/// Every stored schedule's state.
pub(crate) fn states(c: &mut Conn) -> Result<Vec<(String, ScheduleState)>> {
    let rows = c.query("schedules", ALL, &[])?;
    Ok(rows
        .iter()
        .map(|r| {
            let id: Option<String> = r.get(2);
            let state = ScheduleState {
                last_fire_at: r.get::<_, Option<i64>>(1).map(Timestamp),
                last_job_id: id.and_then(|t| t.parse().ok()),
            };
            (r.get(0), state)
        })
        .collect())
}

/// Fires schedule `name` as `plan` says, in the caller's transaction.
pub(crate) fn fire(
    c: &mut Conn,
    name: &str,
    now: Timestamp,
    notify: bool,
    plan: &dyn Fn(Option<Timestamp>) -> Result<FirePlan>,
) -> Result<Option<(Job, bool)>> {
    c.query("fire schedule", LOCK, &[&name])?;
    let last: Option<i64> = c
        .opt("fire schedule", ONE, &[&name])?
        .and_then(|r| r.get(0));
    let plan = plan(last.map(Timestamp))?;
    let fired = match &plan.row {
        Some(row) => match admin::insert(c, &row.job, &row.payload, notify)? {
            None => Some((row.job.clone(), false)),
            Some(holder) => Some((holder, true)),
        },
        None => None,
    };
    if plan.record.is_some() || fired.is_some() {
        let job = fired.as_ref().map(|(j, _)| j.id.to_string());
        let at = plan.record.map(|t| t.0);
        c.execute("fire schedule", RECORD, &[&name, &at, &job, &now.0])?;
    }
    Ok(fired)
}
