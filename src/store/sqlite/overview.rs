//! The dashboard's snapshot ([`Overview`]): every statement reads an index
//! range or stops at a cap, so its cost does not grow with the history.

use rusqlite::{params, Connection};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobStatus};
use crate::overview::{Count, Overview, OverviewQuery};
use crate::store::fold::{self, GroupPart, GroupRow, OverviewReads};
use crate::store::sqlite::row::{job_columns, job_from_row};

/// The queue of a row.
macro_rules! queue_of {
    () => {
        "queue"
    };
}

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
    fold::overview(&mut Reads(conn), q)
}

/// The overview's statements on one SQLite connection.
struct Reads<'a>(&'a Connection);

impl OverviewReads for Reads<'_> {
    fn count_status(&mut self, status: JobStatus, cap: u64) -> Result<Count> {
        let limit = int(cap.saturating_add(1));
        let n: i64 = if status == JobStatus::Pending {
            let mut stmt = self
                .0
                .prepare_cached(COUNT_PENDING)
                .map_err(Error::db("overview"))?;
            stmt.query_row(params![limit], |r| r.get(0))
        } else {
            let mut stmt = self
                .0
                .prepare_cached(COUNT_STATUS)
                .map_err(Error::db("overview"))?;
            stmt.query_row(params![status, limit], |r| r.get(0))
        }
        .map_err(Error::db("overview"))?;
        Ok(Count::capped(u64::try_from(n).unwrap_or(0), cap))
    }

    fn group_rows(&mut self, part: GroupPart, q: &OverviewQuery) -> Result<Vec<GroupRow>> {
        let cap = int(q.group_rows);
        let (sql, p): (&str, Vec<&dyn rusqlite::ToSql>) = match part {
            GroupPart::Pending => (PENDING, vec![&q.now.0, &cap]),
            GroupPart::Running => (RUNNING_GROUPS, vec![&cap]),
            GroupPart::Failed => (FAILED, vec![&cap]),
            GroupPart::Recent => (RECENT, vec![&q.since.0, &cap]),
        };
        let mut stmt = self.0.prepare_cached(sql).map_err(Error::db("overview"))?;
        let rows = stmt
            .query_map(p.as_slice(), |r| {
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

    fn per_minute(&mut self, started: bool, since: Timestamp) -> Result<Vec<(i64, String, u64)>> {
        let sql = if started {
            STARTED_PER_MINUTE
        } else {
            FINISHED_PER_MINUTE
        };
        let mut stmt = self.0.prepare_cached(sql).map_err(Error::db("overview"))?;
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

    fn jobs(&mut self, running: bool, limit: usize) -> Result<Vec<Job>> {
        let sql = if running { RUNNING } else { RECENT_FAILURES };
        let mut stmt = self.0.prepare_cached(sql).map_err(Error::db("overview"))?;
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![lim], job_from_row)
            .map_err(Error::db("overview"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::db("overview"))
    }
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
