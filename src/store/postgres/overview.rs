//! The dashboard's snapshot ([`Overview`]) on PostgreSQL: every statement
//! reads an index range (`jobs_claim`, `jobs_lease`, `jobs_status`) or stops
//! at a cap, so its cost does not grow with the history.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::{Job, JobStatus};
use crate::overview::{Count, GroupCounts, Minute, Overview, OverviewQuery};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::row::{job_columns, job_from_row};

const MINUTE_MS: i64 = 60_000;

/// Jobs of status $1, up to $2.
const COUNT_STATUS: &str =
    "SELECT count(*) FROM (SELECT 1 FROM jobq.jobs WHERE status = $1 LIMIT $2) s";

/// Pending jobs by group and why they wait; capped at $2 rows.
const PENDING: &str = "SELECT q, job_type, CASE WHEN next_retry <= $1 THEN 'ready' \
          WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, count(*), min(next_retry) \
     FROM (SELECT queue AS q, job_type, next_retry, attempts FROM jobq.jobs \
           WHERE status = 'pending' LIMIT $2) s GROUP BY 1, 2, 3";

/// Running jobs by group; capped at $1 rows.
const RUNNING_GROUPS: &str = "SELECT q, job_type, 'running', count(*), NULL::bigint \
     FROM (SELECT queue AS q, job_type FROM jobq.jobs WHERE status = 'in_progress' LIMIT $1) s \
     GROUP BY 1, 2";

/// Failed jobs kept, by group; capped at $1 rows.
const FAILED: &str = "SELECT q, job_type, 'failed', count(*), NULL::bigint \
     FROM (SELECT queue AS q, job_type FROM jobq.jobs WHERE status = 'failed' LIMIT $1) s \
     GROUP BY 1, 2";

/// Jobs finished since $1, by group and status; capped at $2 rows.
const RECENT: &str = "SELECT q, job_type, status || '_recently', count(*), NULL::bigint \
     FROM (SELECT queue AS q, job_type, status FROM jobq.jobs \
           WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at >= $1 \
           LIMIT $2) s GROUP BY 1, 2, 3";

/// Finished per minute since $1.
const FINISHED_PER_MINUTE: &str = "SELECT (completed_at - $1) / 60000, status, count(*) \
     FROM jobq.jobs WHERE status IN ('completed', 'failed', 'cancelled') \
       AND completed_at >= $1 GROUP BY 1, 2";

/// Started per minute since $1 among finished jobs (one started since $1
/// finished since $1), running ones, and pending ones waiting out a backoff.
const STARTED_PER_MINUTE: &str = "SELECT (started_at - $1) / 60000, 'started', count(*) \
     FROM jobq.jobs WHERE status IN ('completed', 'failed', 'cancelled') \
       AND completed_at >= $1 AND started_at >= $1 GROUP BY 1 \
     UNION ALL SELECT (started_at - $1) / 60000, 'started', count(*) FROM jobq.jobs \
     WHERE status = 'in_progress' AND started_at >= $1 GROUP BY 1 \
     UNION ALL SELECT (started_at - $1) / 60000, 'started', count(*) FROM jobq.jobs \
     WHERE status = 'pending' AND started_at >= $1 GROUP BY 1";

const RUNNING: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobq.jobs WHERE status = 'in_progress' ORDER BY started_at, id LIMIT $1"
);

const RECENT_FAILURES: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobq.jobs WHERE status = 'failed' ORDER BY completed_at DESC LIMIT $1"
);

/// Every statement of the overview (the dashboard's home page and the metrics'
/// gauges), by name: the plan tests EXPLAIN each against a real server.
pub(crate) const STATEMENTS: [(&str, &str); 9] = [
    ("count_status", COUNT_STATUS),
    ("pending", PENDING),
    ("running_groups", RUNNING_GROUPS),
    ("failed", FAILED),
    ("recent", RECENT),
    ("finished_per_minute", FINISHED_PER_MINUTE),
    ("started_per_minute", STARTED_PER_MINUTE),
    ("running", RUNNING),
    ("recent_failures", RECENT_FAILURES),
];

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads the whole overview (the caller runs it in one read transaction).
pub(crate) fn overview(c: &mut Conn, q: &OverviewQuery) -> Result<Overview> {
    let mut o = Overview {
        at: q.now,
        since: q.since,
        ..Overview::default()
    };
    for status in JobStatus::ALL {
        o.by_status.set(status, count_status(c, status, q.cap)?);
    }
    let (groups, partial) = groups(c, q)?;
    o.oldest_ready_age_ms = groups
        .iter()
        .filter_map(|g| g.oldest_ready)
        .min()
        .map(|t| u64::try_from(q.now.0.saturating_sub(t.0)).unwrap_or(0));
    (o.groups, o.partial) = (groups, partial);
    o.minutes = minutes(c, q)?;
    o.running = jobs(c, RUNNING, q.list)?;
    o.recent_failures = jobs(c, RECENT_FAILURES, q.list)?;
    Ok(o)
}

fn count_status(c: &mut Conn, status: JobStatus, cap: u64) -> Result<Count> {
    let limit = int(cap.saturating_add(1));
    let n: i64 = c
        .opt("overview", COUNT_STATUS, &[&status.as_str(), &limit])?
        .map_or(0, |r| r.get(0));
    Ok(Count::capped(count(n), cap))
}

/// One row of a group statement: queue, type, what is counted, how many, and
/// the earliest due time (ready jobs only).
use crate::store::fold::GroupRow;

fn group_rows(
    c: &mut Conn,
    sql: &'static str,
    p: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<GroupRow>> {
    let rows = c.query("overview", sql, p)?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), count(r.get(3)), r.get(4)))
        .collect())
}

/// The counts by (queue, job type), and whether a part stopped at its row cap.
fn groups(c: &mut Conn, q: &OverviewQuery) -> Result<(Vec<GroupCounts>, bool)> {
    let cap = int(q.group_rows);
    let parts = [
        group_rows(c, PENDING, &[&q.now.0, &cap])?,
        group_rows(c, RUNNING_GROUPS, &[&cap])?,
        group_rows(c, FAILED, &[&cap])?,
        group_rows(c, RECENT, &[&q.since.0, &cap])?,
    ];
    Ok(crate::store::fold::groups(parts, q.group_rows))
}

/// One entry per minute from `since` to `now`, oldest first.
fn minutes(c: &mut Conn, q: &OverviewQuery) -> Result<Vec<Minute>> {
    let span = q.now.0.saturating_sub(q.since.0).max(0) / MINUTE_MS + 1;
    let mut out: Vec<Minute> = (0..span)
        .map(|i| Minute {
            start: Timestamp(q.since.0 + i * MINUTE_MS),
            ..Minute::default()
        })
        .collect();
    let mut rows = c.query("overview", FINISHED_PER_MINUTE, &[&q.since.0])?;
    rows.extend(c.query("overview", STARTED_PER_MINUTE, &[&q.since.0])?);
    for r in &rows {
        let (i, what, n): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
        let Some(m) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        let n = count(n);
        match what.as_str() {
            "started" => m.started += n,
            "completed" => m.completed += n,
            "failed" => m.failed += n,
            _ => m.cancelled += n,
        }
    }
    Ok(out)
}

fn jobs(c: &mut Conn, sql: &'static str, limit: usize) -> Result<Vec<Job>> {
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query("overview", sql, &[&lim])?;
    Ok(rows.iter().map(job_from_row).collect())
}
