//! Reads: one job, a filtered page of jobs, and the stats.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::store::row::{job_columns, job_from_row};

const GET: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1");

macro_rules! filter {
    () => {
        "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR job_type = ?2) \
         AND (?3 IS NULL OR entity_type = ?3) AND (?4 IS NULL OR entity_id = ?4) \
         AND (?5 IS NULL OR owner = ?5)"
    };
}

const LIST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE ",
    filter!(),
    " AND (?6 IS NULL OR (created_at, id) < (?6, ?7)) ORDER BY created_at DESC, id DESC LIMIT ?8 + 0"
);

const COUNT: &str = concat!("SELECT count(*) FROM jobs WHERE ", filter!());

const STATS: &str = "SELECT job_type, status, \
     CASE WHEN status != 'pending' THEN NULL WHEN next_retry <= ?1 THEN 'ready' \
          WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, \
     count(*), min(next_retry) FROM jobs GROUP BY 1, 2, 3";

const CANCEL_REQUESTS: &str = "SELECT id FROM jobs WHERE status = 'in_progress' \
     AND cancel_requested = 1 AND locked_by = ?1";

/// Which jobs [`crate::Queue::list`] returns. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this type.
    pub job_type: Option<String>,
    /// Only jobs on this kind of entity.
    pub entity_type: Option<String>,
    /// Only jobs on this entity id.
    pub entity_id: Option<String>,
    /// Only jobs of this owner.
    pub owner: Option<String>,
}

/// A position in a newest-first listing: `"<created_at ms>.<id>"`, opaque to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub created_at: i64,
    pub id: JobId,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub(crate) fn decode(text: &str) -> Result<Cursor> {
        let bad = || Error::Invalid {
            field: "cursor",
            reason: "not a cursor returned by a previous page".into(),
        };
        let (ms, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            created_at: ms.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// Reads one job.
pub(crate) fn get(conn: &Connection, id: JobId) -> Result<Job> {
    let mut stmt = conn.prepare_cached(GET).map_err(Error::db("get"))?;
    stmt.query_row(params![id], job_from_row)
        .optional()
        .map_err(Error::db("get"))?
        .ok_or(Error::NotFound { id })
}

/// Reads a page of jobs (newest first) and the total matching the filter.
pub(crate) fn list(
    conn: &Connection,
    f: &JobFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<(Vec<Job>, u64)> {
    let (ms, id) = (cursor.map(|c| c.created_at), cursor.map(|c| c.id));
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(LIST).map_err(Error::db("list"))?;
    let rows = stmt
        .query_map(
            params![
                f.status,
                f.job_type,
                f.entity_type,
                f.entity_id,
                f.owner,
                ms,
                id,
                lim
            ],
            job_from_row,
        )
        .map_err(Error::db("list"))?;
    let jobs = rows
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("list"))?;
    let mut count = conn.prepare_cached(COUNT).map_err(Error::db("count"))?;
    let total: i64 = count
        .query_row(
            params![f.status, f.job_type, f.entity_type, f.entity_id, f.owner],
            |r| r.get(0),
        )
        .map_err(Error::db("count"))?;
    Ok((jobs, u64::try_from(total).unwrap_or(0)))
}

/// Counts of jobs by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Jobs waiting to run.
    pub pending: u64,
    /// Jobs running now.
    pub in_progress: u64,
    /// Jobs that succeeded.
    pub completed: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
}

impl StatusCounts {
    fn add(&mut self, status: JobStatus, n: u64) {
        let slot = match status {
            JobStatus::Pending => &mut self.pending,
            JobStatus::InProgress => &mut self.in_progress,
            JobStatus::Completed => &mut self.completed,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// Pending jobs split by why they wait.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCounts {
    /// Due now (`next_retry <= now`).
    pub ready: u64,
    /// Not yet due, never attempted (enqueued with a delay or `run_at`).
    pub scheduled: u64,
    /// Not yet due, waiting out a backoff after a failed attempt.
    pub retrying: u64,
}

/// A snapshot of the queue, read in one statement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Every job.
    pub total: u64,
    /// Jobs by status.
    pub by_status: StatusCounts,
    /// Pending jobs split into ready, scheduled and retrying.
    pub pending: PendingCounts,
    /// How long the oldest ready job has been due, in ms; null when none is ready.
    pub oldest_ready_age_ms: Option<u64>,
    /// Jobs by type, then by status.
    pub by_type: BTreeMap<String, StatusCounts>,
    /// When the snapshot was taken.
    pub at: Timestamp,
}

/// Reads the stats at `now`.
pub(crate) fn stats(conn: &Connection, now: Timestamp) -> Result<Stats> {
    let mut stmt = conn.prepare_cached(STATS).map_err(Error::db("stats"))?;
    let mut s = Stats {
        at: now,
        ..Stats::default()
    };
    let mut oldest: Option<i64> = None;
    let mut rows = stmt.query(params![now.0]).map_err(Error::db("stats"))?;
    while let Some(r) = rows.next().map_err(Error::db("stats"))? {
        let read = || -> rusqlite::Result<_> {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                r.get_ref(4)?.as_i64().unwrap_or(i64::MAX),
            ))
        };
        let (job_type, status, split, n, min_due) = read().map_err(Error::db("stats"))?;
        let Ok(status) = status.parse::<JobStatus>() else {
            log::warn!("stats: {n} jobs of type {job_type} have an unknown status {status:?}");
            continue;
        };
        s.total += n;
        s.by_status.add(status, n);
        s.by_type.entry(job_type).or_default().add(status, n);
        match split.as_deref() {
            Some("ready") => {
                s.pending.ready += n;
                oldest = Some(oldest.map_or(min_due, |o| o.min(min_due)));
            }
            Some("retrying") => s.pending.retrying += n,
            Some(_) => s.pending.scheduled += n,
            None => {}
        }
    }
    s.oldest_ready_age_ms = oldest.map(|o| u64::try_from(now.0.saturating_sub(o)).unwrap_or(0));
    Ok(s)
}

/// Ids of `worker`'s running jobs with a cancel request.
pub(crate) fn cancel_requests(conn: &Connection, worker: &str) -> Result<Vec<JobId>> {
    let mut stmt = conn
        .prepare_cached(CANCEL_REQUESTS)
        .map_err(Error::db("cancel_requests"))?;
    let rows = stmt
        .query_map(params![worker], |r| r.get::<_, String>(0))
        .map_err(Error::db("cancel_requests"))?;
    let ids = rows
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(Error::db("cancel_requests"))?;
    Ok(ids.iter().filter_map(|t| t.parse().ok()).collect())
}
