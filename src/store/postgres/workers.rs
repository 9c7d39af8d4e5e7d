//! Live worker pools: registration, heartbeats, and what is waiting by type.
//! The types and queues a pool serves are `text[]` columns.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::stats::Waiting;
use crate::store::postgres::conn::Conn;
use crate::workers::WorkerInfo;

const REGISTER: &str = "INSERT INTO jobq.workers (id, types, queues, started_at, heartbeat_at) \
     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO UPDATE SET types = excluded.types, \
     queues = excluded.queues, heartbeat_at = excluded.heartbeat_at";

const BEAT: &str = "UPDATE jobq.workers SET heartbeat_at = $2 WHERE id = $1";

const REMOVE: &str = "DELETE FROM jobq.workers WHERE id = $1";

const FORGET_OLD: &str = "DELETE FROM jobq.workers w WHERE w.heartbeat_at < $1 AND NOT EXISTS \
     (SELECT 1 FROM jobq.jobs j WHERE j.status = 'in_progress' AND j.locked_by = w.id)";

/// Every pool, with its running (started) and reserved (not started) jobs.
const ALL: &str = "SELECT w.id, w.types, w.queues, w.started_at, w.heartbeat_at, \
     h.running, h.reserved FROM jobq.workers w, LATERAL \
     (SELECT count(*) FILTER (WHERE j.started_at IS NOT NULL) AS running, \
       count(*) FILTER (WHERE j.started_at IS NULL) AS reserved \
       FROM jobq.jobs j WHERE j.status = 'in_progress' AND j.locked_by = w.id) h \
     ORDER BY w.id";

const WAITING: &str = "SELECT job_type, queue, count(*) FILTER (WHERE next_retry <= $1), \
     count(*) FILTER (WHERE next_retry > $1), min(next_retry) FILTER (WHERE next_retry > $1) \
     FROM jobq.jobs WHERE status = 'pending' GROUP BY job_type, queue ORDER BY job_type, queue";

const RUNNING: &str = "SELECT DISTINCT locked_by FROM jobq.jobs WHERE status = 'in_progress' \
     AND locked_by IS NOT NULL ORDER BY 1";

/// Records (or refreshes) a pool.
pub(crate) fn register(
    c: &mut Conn,
    id: &str,
    types: &[String],
    queues: Option<&[String]>,
    now: Timestamp,
) -> Result<()> {
    c.execute("register worker", REGISTER, &[&id, &types, &queues, &now.0])?;
    Ok(())
}

/// Beats a pool's heartbeat; forgets pools silent since before `forget_before`
/// that hold no job. Returns whether the pool had a row to beat.
pub(crate) fn beat(
    c: &mut Conn,
    id: &str,
    now: Timestamp,
    forget_before: Timestamp,
) -> Result<bool> {
    let beaten = c.execute("worker heartbeat", BEAT, &[&id, &now.0])?;
    c.execute("worker heartbeat", FORGET_OLD, &[&forget_before.0])?;
    Ok(beaten > 0)
}

/// Forgets a pool (at its clean shutdown).
pub(crate) fn remove(c: &mut Conn, id: &str) -> Result<()> {
    c.execute("remove worker", REMOVE, &[&id])?;
    Ok(())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Every recorded pool; `alive` when its heartbeat is after `fresh_after`.
pub(crate) fn all(c: &mut Conn, fresh_after: Timestamp) -> Result<Vec<WorkerInfo>> {
    let rows = c.query("workers", ALL, &[])?;
    Ok(rows
        .iter()
        .map(|r| {
            let beat = Timestamp(r.get(4));
            WorkerInfo {
                id: r.get(0),
                types: r.get(1),
                queues: r.get(2),
                started_at: Timestamp(r.get(3)),
                heartbeat_at: beat,
                alive: beat > fresh_after,
                running: count(r.get(5)),
                reserved: count(r.get(6)),
            }
        })
        .collect())
}

/// Pending jobs by type and queue at `now`.
pub(crate) fn waiting(c: &mut Conn, now: Timestamp) -> Result<Vec<Waiting>> {
    let rows = c.query("waiting", WAITING, &[&now.0])?;
    Ok(rows
        .iter()
        .map(|r| Waiting {
            job_type: r.get(0),
            queue: r.get(1),
            ready: count(r.get(2)),
            later: count(r.get(3)),
            next_due: r.get::<_, Option<i64>>(4).map(Timestamp),
            paused: false,
        })
        .collect())
}

/// The workers holding jobs in progress.
pub(crate) fn running_workers(c: &mut Conn) -> Result<Vec<String>> {
    let rows = c.query("workers", RUNNING, &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
