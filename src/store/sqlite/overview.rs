//! The dashboard's snapshot ([`Overview`]): every statement reads an index
//! range or stops at a cap, so its cost does not grow with the history.

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

/// Jobs of a status other than pending (`jobs_status`), up to ?2.
const COUNT_STATUS: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs \
     WHERE status = ?1 AND status != 'pending' LIMIT ?2)";

/// Pending jobs (`jobs_claim`), up to ?1.
const COUNT_PENDING: &str =
    "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'pending' LIMIT ?1)";

/// Pending jobs by group and why they wait; capped at ?2 rows.
const PENDING: &str = concat!(
    "SELECT q, job_type, CASE WHEN next_retry <= ?1 THEN 'ready' \
          WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, count(*), min(next_retry) \
     FROM (SELECT ",
    queue_of!(),
    " AS q, job_type, next_retry, attempts FROM jobs WHERE status = 'pending' LIMIT ?2) \
     GROUP BY 1, 2, 3"
);

/// Running jobs by group; capped at ?1 rows.
const RUNNING_GROUPS: &str = concat!(
    "SELECT q, job_type, 'running', count(*), NULL FROM (SELECT ",
    queue_of!(),
    " AS q, job_type FROM jobs WHERE status = 'in_progress' AND status != 'pending' LIMIT ?1) GROUP BY 1, 2"
);

/// Failed jobs kept, by group; capped at ?1 rows.
const FAILED: &str = concat!(
    "SELECT q, job_type, 'failed', count(*), NULL FROM (SELECT ",
    queue_of!(),
    " AS q, job_type FROM jobs WHERE status = 'failed' AND status != 'pending' LIMIT ?1) \
     GROUP BY 1, 2"
);

/// Jobs finished since ?1, by group and status; capped at ?2 rows.
const RECENT: &str = concat!(
    "SELECT q, job_type, status || '_recently', count(*), NULL FROM (SELECT ",
    queue_of!(),
    " AS q, job_type, status FROM jobs \
           WHERE status IN ('completed', 'failed', 'cancelled') AND status != 'pending' \
             AND completed_at >= ?1 LIMIT ?2) \
     GROUP BY 1, 2, 3"
);

/// Finished per minute since ?1 (the status index, covering).
const FINISHED_PER_MINUTE: &str = "SELECT (completed_at - ?1) / 60000, status, count(*) FROM jobs \
     WHERE status IN ('completed', 'failed', 'cancelled') AND status != 'pending' \
       AND completed_at >= ?1 GROUP BY 1, 2";

/// Started per minute since ?1 among finished jobs (one started since ?1
/// finished since ?1), running ones, and pending ones waiting out a backoff.
const STARTED_PER_MINUTE: &str = "SELECT (started_at - ?1) / 60000, 'started', count(*) FROM jobs \
     WHERE status IN ('completed', 'failed', 'cancelled') AND status != 'pending' \
       AND completed_at >= ?1 AND started_at >= ?1 GROUP BY 1 \
     UNION ALL SELECT (started_at - ?1) / 60000, 'started', count(*) FROM jobs \
     WHERE status = 'in_progress' AND status != 'pending' AND started_at >= ?1 GROUP BY 1 \
     UNION ALL SELECT (started_at - ?1) / 60000, 'started', count(*) FROM jobs \
     WHERE status = 'pending' AND started_at >= ?1 GROUP BY 1";

const RUNNING: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE status = 'in_progress' AND status != 'pending' ORDER BY started_at, id LIMIT ?1"
);

const RECENT_FAILURES: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE status = 'failed' AND status != 'pending' ORDER BY completed_at DESC LIMIT ?1"
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
    let limit = int(cap.saturating_add(1));
    let n: i64 = if status == JobStatus::Pending {
        let mut stmt = conn
            .prepare_cached(COUNT_PENDING)
            .map_err(Error::db("overview"))?;
        stmt.query_row(params![limit], |r| r.get(0))
    } else {
        let mut stmt = conn
            .prepare_cached(COUNT_STATUS)
            .map_err(Error::db("overview"))?;
        stmt.query_row(params![status, limit], |r| r.get(0))
    }
    .map_err(Error::db("overview"))?;
    Ok(Count::capped(u64::try_from(n).unwrap_or(0), cap))
}

/// One row of a group statement: queue, type, what is counted, how many, and
/// the earliest due time (ready jobs only).
use crate::store::fold::GroupRow;

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
        group_rows(conn, PENDING, &[&q.now.0, &cap])?,
        group_rows(conn, RUNNING_GROUPS, &[&cap])?,
        group_rows(conn, FAILED, &[&cap])?,
        group_rows(conn, RECENT, &[&q.since.0, &cap])?,
    ];
    Ok(crate::store::fold::groups(parts, q.group_rows))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The indexes SQLite picks for `sql`, from its query plan.
    pub(crate) fn plan(sql: &str) -> String {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::sqlite::migrate::migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let nulls = vec![rusqlite::types::Null; n];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join(" | ")
    }

    #[test]
    fn every_part_reads_an_index_never_the_whole_table() {
        for sql in [
            COUNT_STATUS,
            FAILED,
            RECENT,
            FINISHED_PER_MINUTE,
            RECENT_FAILURES,
        ] {
            let p = plan(sql);
            assert!(p.contains("INDEX jobs_status"), "{sql}: {p}");
        }
        for sql in [COUNT_PENDING, PENDING] {
            let p = plan(sql);
            assert!(p.contains("INDEX jobs_claim"), "{sql}: {p}");
        }
        for sql in [RUNNING_GROUPS, RUNNING, STARTED_PER_MINUTE] {
            let p = plan(sql);
            let whole_table = p.split(" | ").any(|step| step == "SCAN jobs");
            assert!(!whole_table && p.contains("INDEX"), "{sql}: {p}");
        }
    }
}
