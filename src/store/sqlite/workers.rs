//! Live worker pools: registration, heartbeats, and what is waiting by type.

use rusqlite::{params, Connection};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::stats::Waiting;
use crate::workers::WorkerInfo;

const REGISTER: &str = "INSERT INTO workers (id, types, queues, started_at, heartbeat_at) \
     VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO UPDATE SET types = excluded.types, \
     queues = excluded.queues, heartbeat_at = excluded.heartbeat_at";

const BEAT: &str = "UPDATE workers SET heartbeat_at = ?2 WHERE id = ?1";

const REMOVE: &str = "DELETE FROM workers WHERE id = ?1";

pub(crate) const FORGET_OLD: &str = "DELETE FROM workers WHERE heartbeat_at < ?1 AND id NOT IN \
     (SELECT locked_by FROM jobs WHERE status = 'in_progress' AND status != 'pending' AND locked_by IS NOT NULL)";

/// Every pool, with its running (started) and reserved (not started) jobs:
/// the in-progress jobs are read once, grouped by holder, not once per pool.
pub(crate) const ALL: &str = "SELECT w.id, w.types, w.queues, w.started_at, w.heartbeat_at, \
     coalesce(h.running, 0), coalesce(h.reserved, 0) FROM workers w LEFT JOIN \
     (SELECT j.locked_by AS holder, sum(j.started_at IS NOT NULL) AS running, \
       sum(j.started_at IS NULL) AS reserved FROM jobs j \
       WHERE j.status = 'in_progress' AND j.status != 'pending' GROUP BY j.locked_by) h \
     ON h.holder = w.id ORDER BY w.id";

pub(crate) const WAITING: &str =
    "SELECT job_type, queue, sum(next_retry <= ?1), sum(next_retry > ?1), \
     min(CASE WHEN next_retry > ?1 THEN next_retry END) FROM jobs WHERE status = 'pending' \
     GROUP BY job_type, queue ORDER BY job_type, queue";

/// The workers holding jobs in progress.
pub(crate) const RUNNING_WORKERS: &str = "SELECT DISTINCT locked_by FROM jobs \
     WHERE status = 'in_progress' AND status != 'pending' AND locked_by IS NOT NULL ORDER BY 1";

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Records (or refreshes) a pool.
pub(crate) fn register(
    conn: &Connection,
    id: &str,
    types: &[String],
    queues: Option<&[String]>,
    now: Timestamp,
) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(REGISTER)
        .map_err(Error::db("register worker"))?;
    stmt.execute(params![id, json_list(types), queues.map(json_list), now.0])
        .map_err(Error::db("register worker"))?;
    Ok(())
}

/// Beats a pool's heartbeat; forgets pools silent for longer than `forget_before`
/// that hold no job. Returns whether the pool had a row to beat.
pub(crate) fn beat(
    conn: &Connection,
    id: &str,
    now: Timestamp,
    forget_before: Timestamp,
) -> Result<bool> {
    let mut stmt = conn
        .prepare_cached(BEAT)
        .map_err(Error::db("worker heartbeat"))?;
    let beaten = stmt
        .execute(params![id, now.0])
        .map_err(Error::db("worker heartbeat"))?;
    let mut old = conn
        .prepare_cached(FORGET_OLD)
        .map_err(Error::db("worker heartbeat"))?;
    old.execute(params![forget_before.0])
        .map_err(Error::db("worker heartbeat"))?;
    Ok(beaten > 0)
}

/// Forgets a pool (at its clean shutdown).
pub(crate) fn remove(conn: &Connection, id: &str) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(REMOVE)
        .map_err(Error::db("remove worker"))?;
    stmt.execute(params![id])
        .map_err(Error::db("remove worker"))?;
    Ok(())
}

/// Every recorded pool; `alive` when its heartbeat is after `fresh_after`.
pub(crate) fn all(conn: &Connection, fresh_after: Timestamp) -> Result<Vec<WorkerInfo>> {
    let mut stmt = conn.prepare_cached(ALL).map_err(Error::db("workers"))?;
    let rows = stmt
        .query_map([], |r| {
            let types: String = r.get(1)?;
            let queues: Option<String> = r.get(2)?;
            let beat = Timestamp(r.get(4)?);
            Ok(WorkerInfo {
                id: r.get(0)?,
                types: serde_json::from_str(&types).unwrap_or_default(),
                queues: queues.and_then(|q| serde_json::from_str(&q).ok()),
                started_at: Timestamp(r.get(3)?),
                heartbeat_at: beat,
                alive: beat > fresh_after,
                running: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                reserved: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
            })
        })
        .map_err(Error::db("workers"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("workers"))
}

/// Pending jobs by type and queue at `now`.
pub(crate) fn waiting(conn: &Connection, now: Timestamp) -> Result<Vec<Waiting>> {
    let mut stmt = conn.prepare_cached(WAITING).map_err(Error::db("waiting"))?;
    let count = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).unwrap_or(0);
    let rows = stmt
        .query_map(params![now.0], |r| {
            Ok(Waiting {
                job_type: r.get(0)?,
                queue: r.get(1)?,
                ready: count(r.get(2)?),
                later: count(r.get(3)?),
                next_due: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                paused: false,
            })
        })
        .map_err(Error::db("waiting"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("waiting"))
}

/// The workers holding jobs in progress.
pub(crate) fn running_workers(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(RUNNING_WORKERS)
        .map_err(Error::db("workers"))?;
    let rows = stmt
        .query_map([], |r| r.get(0))
        .map_err(Error::db("workers"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("workers"))
}
