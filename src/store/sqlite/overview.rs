//! The dashboard's snapshot ([`Overview`]): every statement reads an index
//! range or stops at a cap, so its cost does not grow with the history.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobStatus};
use crate::overview::{Count, GroupCounts, Minute, Overview, OverviewQuery};
use crate::store::sqlite::row::{job_columns, job_from_row};

/// The queue of a row.
macro_rules! queue_of {
    () => {
        "queue"
    };
}

const MINUTE_MS: i64 = 60_000;

const COUNT_STATUS: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = ?1 LIMIT ?2)";

/// The active jobs (pending, running) by group and state; capped at ?2 rows.
const ACTIVE: &str = concat!(
    "SELECT q, job_type, CASE WHEN status = 'in_progress' THEN 'running' \
          WHEN next_retry <= ?1 THEN 'ready' WHEN attempts > 0 THEN 'retrying' \
          ELSE 'scheduled' END, count(*), min(next_retry) \
     FROM (SELECT ",
    queue_of!(),
    " AS q, job_type, status, next_retry, attempts FROM jobs \
           WHERE status IN ('pending', 'in_progress') LIMIT ?2) GROUP BY 1, 2, 3"
);

/// Failed jobs kept, by group; capped at ?1 rows.
const FAILED: &str = concat!(
    "SELECT q, job_type, 'failed', count(*), NULL FROM (SELECT ",
    queue_of!(),
    " AS q, job_type FROM jobs WHERE status = 'failed' LIMIT ?1) GROUP BY 1, 2"
);

/// Jobs finished since ?1, by group and status; capped at ?2 rows.
const RECENT: &str = concat!(
    "SELECT q, job_type, status || '_recently', count(*), NULL FROM (SELECT ",
    queue_of!(),
    " AS q, job_type, status FROM jobs \
           WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at >= ?1 LIMIT ?2) \
     GROUP BY 1, 2, 3"
);

/// Finished per minute since ?1 (the status index, covering).
const FINISHED_PER_MINUTE: &str = "SELECT (completed_at - ?1) / 60000, status, count(*) FROM jobs \
     WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at >= ?1 GROUP BY 1, 2";

/// Started per minute since ?1: finished jobs (a job started since ?1 finished
/// since ?1) and active ones (the status index, covering).
const STARTED_PER_MINUTE: &str = "SELECT (started_at - ?1) / 60000, 'started', count(*) FROM jobs \
     WHERE ((status IN ('completed', 'failed', 'cancelled') AND completed_at >= ?1) \
            OR status IN ('pending', 'in_progress')) AND started_at >= ?1 GROUP BY 1";

const RUNNING: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE status = 'in_progress' ORDER BY started_at, id LIMIT ?1"
);

const RECENT_FAILURES: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE status = 'failed' ORDER BY completed_at DESC LIMIT ?1"
);

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the whole overview (the caller runs it in one read transaction).
pub(crate) fn overview(conn: &Connection, q: &OverviewQuery) -> Result<Overview> {
    let mut o = Overview {
        at: q.now,
        since: q.since,
        ..Overview::default()
    };
    for status in JobStatus::ALL {
        o.by_status.set(status, count_status(conn, status, q.cap)?);
    }
    let (groups, partial) = groups(conn, q)?;
    o.oldest_ready_age_ms = groups
        .iter()
        .filter_map(|g| g.oldest_ready)
        .min()
        .map(|t| u64::try_from(q.now.0.saturating_sub(t.0)).unwrap_or(0));
    (o.groups, o.partial) = (groups, partial);
    o.minutes = minutes(conn, q)?;
    o.running = jobs(conn, RUNNING, q.list)?;
    o.recent_failures = jobs(conn, RECENT_FAILURES, q.list)?;
    Ok(o)
}

fn count_status(conn: &Connection, status: JobStatus, cap: u64) -> Result<Count> {
    let mut stmt = conn
        .prepare_cached(COUNT_STATUS)
        .map_err(Error::db("overview"))?;
    let n: i64 = stmt
        .query_row(params![status, int(cap.saturating_add(1))], |r| r.get(0))
        .map_err(Error::db("overview"))?;
    Ok(Count::capped(u64::try_from(n).unwrap_or(0), cap))
}

/// One row of a group statement: queue, type, what is counted, how many, and
/// the earliest due time (ready jobs only).
type GroupRow = (String, String, String, u64, Option<i64>);

fn group_rows(conn: &Connection, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<GroupRow>> {
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("overview"))?;
    let rows = stmt
        .query_map(p, |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                r.get(4)?,
            ))
        })
        .map_err(Error::db("overview"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("overview"))
}

/// The counts by (queue, job type), and whether a part stopped at its row cap.
fn groups(conn: &Connection, q: &OverviewQuery) -> Result<(Vec<GroupCounts>, bool)> {
    let cap = int(q.group_rows);
    let parts = [
        group_rows(conn, ACTIVE, &[&q.now.0, &cap])?,
        group_rows(conn, FAILED, &[&cap])?,
        group_rows(conn, RECENT, &[&q.since.0, &cap])?,
    ];
    let partial = parts
        .iter()
        .any(|rows| rows.iter().map(|r| r.3).sum::<u64>() >= q.group_rows);
    let mut by: BTreeMap<(String, String), GroupCounts> = BTreeMap::new();
    for (queue, job_type, what, n, due) in parts.into_iter().flatten() {
        let g = by
            .entry((queue.clone(), job_type.clone()))
            .or_insert_with(|| GroupCounts {
                queue,
                job_type,
                ..GroupCounts::default()
            });
        add(g, &what, n, due.map(Timestamp));
    }
    Ok((by.into_values().collect(), partial))
}

fn add(g: &mut GroupCounts, what: &str, n: u64, due: Option<Timestamp>) {
    match what {
        "ready" => {
            g.ready += n;
            g.oldest_ready = g.oldest_ready.min(due).or(due).or(g.oldest_ready);
        }
        "scheduled" => g.scheduled += n,
        "retrying" => g.retrying += n,
        "running" => g.running += n,
        "failed" => g.failed += n,
        "completed_recently" => g.completed_recently += n,
        "failed_recently" => g.failed_recently += n,
        "cancelled_recently" => g.cancelled_recently += n,
        _ => {}
    }
}

/// One entry per minute from `since` to `now`, oldest first.
fn minutes(conn: &Connection, q: &OverviewQuery) -> Result<Vec<Minute>> {
    let span = q.now.0.saturating_sub(q.since.0).max(0) / MINUTE_MS + 1;
    let mut out: Vec<Minute> = (0..span)
        .map(|i| Minute {
            start: Timestamp(q.since.0 + i * MINUTE_MS),
            ..Minute::default()
        })
        .collect();
    let mut rows = per_minute(conn, FINISHED_PER_MINUTE, q.since)?;
    rows.extend(per_minute(conn, STARTED_PER_MINUTE, q.since)?);
    for (i, what, n) in rows {
        let Some(m) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        match what.as_str() {
            "started" => m.started += n,
            "completed" => m.completed += n,
            "failed" => m.failed += n,
            _ => m.cancelled += n,
        }
    }
    Ok(out)
}

/// Rows of a per-minute statement: minute index, what, how many.
fn per_minute(conn: &Connection, sql: &str, since: Timestamp) -> Result<Vec<(i64, String, u64)>> {
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("overview"))?;
    let rows = stmt
        .query_map(params![since.0], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            ))
        })
        .map_err(Error::db("overview"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("overview"))
}

fn jobs(conn: &Connection, sql: &str, limit: usize) -> Result<Vec<Job>> {
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("overview"))?;
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![lim], job_from_row)
        .map_err(Error::db("overview"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("overview"))
}
