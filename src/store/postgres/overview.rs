//! The dashboard's snapshot ([`Overview`]) on PostgreSQL: every statement
//! reads an index range (`jobs_claim`, `jobs_lease`, `jobs_status`) or stops
//! at a cap, so its cost does not grow with the history.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::{Job, JobStatus};
use crate::overview::{Count, Overview, OverviewQuery};
use crate::store::fold::{self, GroupPart, GroupRow, OverviewReads};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::row::{job_columns, job_from_row};

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
    fold::overview(&mut Reads(c), q)
}

/// The overview's statements on one PostgreSQL connection.
struct Reads<'a>(&'a mut Conn);

impl OverviewReads for Reads<'_> {
    fn count_status(&mut self, status: JobStatus, cap: u64) -> Result<Count> {
        let limit = int(cap.saturating_add(1));
        let n: i64 = self
            .0
            .opt("overview", COUNT_STATUS, &[&status.as_str(), &limit])?
            .map_or(0, |r| r.get(0));
        Ok(Count::capped(count(n), cap))
    }

    fn group_rows(&mut self, part: GroupPart, q: &OverviewQuery) -> Result<Vec<GroupRow>> {
        let cap = int(q.group_rows);
        let (sql, p): (&'static str, Vec<&(dyn postgres::types::ToSql + Sync)>) = match part {
            GroupPart::Pending => (PENDING, vec![&q.now.0, &cap]),
            GroupPart::Running => (RUNNING_GROUPS, vec![&cap]),
            GroupPart::Failed => (FAILED, vec![&cap]),
            GroupPart::Recent => (RECENT, vec![&q.since.0, &cap]),
        };
        let rows = self.0.query("overview", sql, &p)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), count(r.get(3)), r.get(4)))
            .collect())
    }

    fn per_minute(&mut self, started: bool, since: Timestamp) -> Result<Vec<(i64, String, u64)>> {
        let sql = if started {
            STARTED_PER_MINUTE
        } else {
            FINISHED_PER_MINUTE
        };
        let rows = self.0.query("overview", sql, &[&since.0])?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), count(r.get(2))))
            .collect())
    }

    fn jobs(&mut self, running: bool, limit: usize) -> Result<Vec<Job>> {
        let sql = if running { RUNNING } else { RECENT_FAILURES };
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.0.query("overview", sql, &[&lim])?;
        Ok(rows.iter().map(job_from_row).collect())
    }
}
