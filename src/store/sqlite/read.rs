//! Reads: one job, a filtered page of jobs, and the stats.

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobId};
use crate::stats::Stats;
use crate::store::fold::{self, StatsRow};
use crate::store::sqlite::id::{self, key};
use crate::store::sqlite::row::{job_columns, job_from_row};

const GET: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1");

macro_rules! filter {
    () => {
        "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR job_type = ?2) \
         AND (?3 IS NULL OR entity_type = ?3) AND (?4 IS NULL OR entity_id = ?4) \
         AND (?5 IS NULL OR owner = ?5) AND (?6 IS NULL OR queue = ?6)"
    };
}

pub(crate) const LIST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE ",
    filter!(),
    " AND (?7 IS NULL OR id < ?7) ORDER BY id DESC LIMIT ?8 + 0"
);

const COUNT: &str = concat!("SELECT count(*) FROM jobs WHERE ", filter!());

const STATS: &str = "SELECT job_type, status, \
     CASE WHEN status = 'in_progress' AND started_at IS NULL THEN 'reserved' \
          WHEN status != 'pending' THEN NULL WHEN next_retry <= ?1 THEN 'ready' \
          WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, \
     count(*), min(next_retry), queue FROM jobs GROUP BY 1, 2, 3, 6";

/// A range scan of the primary key (the UUID's bytes).
pub(crate) const IDS_BETWEEN: &str =
    "SELECT id FROM jobs WHERE id BETWEEN ?1 AND ?2 ORDER BY id DESC LIMIT ?3";

pub(crate) const CANCEL_REQUESTS: &str =
    "SELECT id FROM jobs WHERE status = 'in_progress' AND status != 'pending' \
     AND cancel_requested = 1 AND locked_by = ?1";

/// Reads one job.
pub(crate) fn get(conn: &Connection, id: JobId) -> Result<Job> {
    let mut stmt = conn.prepare_cached(GET).map_err(Error::db("get"))?;
    stmt.query_row(params![key(id)], job_from_row)
        .optional()
        .map_err(Error::db("get"))?
        .ok_or(Error::NotFound { id })
}

/// The job whose id is stored as `stored` (as it is, which may not be a
/// readable id), or `None`.
pub(crate) fn get_stored(conn: &Connection, stored: &Value) -> Result<Option<Job>> {
    let mut stmt = conn.prepare_cached(GET).map_err(Error::db("claim"))?;
    stmt.query_row(params![stored], job_from_row)
        .optional()
        .map_err(Error::db("claim"))
}

/// Ids from `low` to `high` (inclusive), descending (newest first, as the
/// job list), at most `limit`.
pub(crate) fn ids_between(
    conn: &Connection,
    low: JobId,
    high: JobId,
    limit: usize,
) -> Result<Vec<JobId>> {
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(IDS_BETWEEN)
        .map_err(Error::db("find id prefix"))?;
    let rows = stmt
        .query_map(params![key(low), key(high), lim], |r| {
            Ok(id::decode(r.get_ref(0)?))
        })
        .map_err(Error::db("find id prefix"))?;
    let ids = rows
        .collect::<rusqlite::Result<Vec<Option<JobId>>>>()
        .map_err(Error::db("find id prefix"))?;
    Ok(ids.into_iter().flatten().collect())
}

/// Reads a page of jobs (newest first) and the total matching the filter.
pub(crate) fn list(
    conn: &Connection,
    f: &JobFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<(Vec<Job>, u64)> {
    let after = cursor.map(|c| key(c.id));
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
                f.queue,
                after,
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
            params![
                f.status,
                f.job_type,
                f.entity_type,
                f.entity_id,
                f.owner,
                f.queue
            ],
            |r| r.get(0),
        )
        .map_err(Error::db("count"))?;
    Ok((jobs, u64::try_from(total).unwrap_or(0)))
}

/// Reads the stats at `now`.
pub(crate) fn stats(conn: &Connection, now: Timestamp) -> Result<Stats> {
    let mut stmt = conn.prepare_cached(STATS).map_err(Error::db("stats"))?;
    let rows = stmt
        .query_map(params![now.0], |r| {
            Ok(StatsRow {
                job_type: r.get(0)?,
                status: r.get(1)?,
                split: r.get(2)?,
                n: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                min_due: r.get_ref(4)?.as_i64().unwrap_or(i64::MAX),
                queue: r.get(5)?,
            })
        })
        .map_err(Error::db("stats"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("stats"))?;
    Ok(fold::stats(now, rows))
}

/// Ids of `worker`'s running jobs with a cancel request.
pub(crate) fn cancel_requests(conn: &Connection, worker: &str) -> Result<Vec<JobId>> {
    let mut stmt = conn
        .prepare_cached(CANCEL_REQUESTS)
        .map_err(Error::db("cancel_requests"))?;
    let rows = stmt
        .query_map(params![worker], |r| Ok(id::decode(r.get_ref(0)?)))
        .map_err(Error::db("cancel_requests"))?;
    let ids = rows
        .collect::<rusqlite::Result<Vec<Option<JobId>>>>()
        .map_err(Error::db("cancel_requests"))?;
    Ok(ids.into_iter().flatten().collect())
}
