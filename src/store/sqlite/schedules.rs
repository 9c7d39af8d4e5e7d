//! Recurring schedules' stored state: the latest fire time handled and its job.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::schedule::ScheduleState;
use crate::store::sqlite::enqueue;
use crate::store::FirePlan;

const ALL: &str = "SELECT name, last_fire_at, last_job_id FROM schedules ORDER BY name";

const ONE: &str = "SELECT last_fire_at FROM schedules WHERE name = ?1";

const RECORD: &str = "INSERT INTO schedules (name, last_fire_at, last_job_id, updated_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET \
     last_fire_at = CASE WHEN excluded.last_fire_at IS NULL THEN last_fire_at \
       ELSE max(coalesce(last_fire_at, excluded.last_fire_at), excluded.last_fire_at) END, \
     last_job_id = coalesce(excluded.last_job_id, last_job_id), updated_at = excluded.updated_at";

/// Every stored schedule's state.
pub(crate) fn states(conn: &Connection) -> Result<Vec<(String, ScheduleState)>> {
    let mut stmt = conn.prepare_cached(ALL).map_err(Error::db("schedules"))?;
    let rows = stmt
        .query_map([], |r| {
            let id: Option<String> = r.get(2)?;
            Ok((
                r.get::<_, String>(0)?,
                ScheduleState {
                    last_fire_at: r.get::<_, Option<i64>>(1)?.map(Timestamp),
                    last_job_id: id.and_then(|t| t.parse().ok()),
                },
            ))
        })
        .map_err(Error::db("schedules"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("schedules"))
}

/// Fires schedule `name` as `plan` says, in the caller's transaction.
pub(crate) fn fire(
    conn: &Connection,
    name: &str,
    now: Timestamp,
    plan: &dyn Fn(Option<Timestamp>) -> Result<FirePlan>,
) -> Result<Option<(Job, bool)>> {
    let last: Option<i64> = conn
        .prepare_cached(ONE)
        .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
        .map_err(Error::db("fire schedule"))?
        .flatten();
    let plan = plan(last.map(Timestamp))?;
    let fired = match &plan.row {
        Some(row) => match enqueue::insert(conn, &row.job, &row.payload)? {
            None => Some((row.job.clone(), false)),
            Some(holder) => Some((holder, true)),
        },
        None => None,
    };
    if plan.record.is_some() || fired.is_some() {
        // `schedules.last_job_id` keeps the id's text form.
        let job: Option<String> = fired.as_ref().map(|(j, _)| j.id.to_string());
        let mut stmt = conn
            .prepare_cached(RECORD)
            .map_err(Error::db("fire schedule"))?;
        stmt.execute(params![name, plan.record.map(|t| t.0), job, now.0])
            .map_err(Error::db("fire schedule"))?;
    }
    Ok(fired)
}
