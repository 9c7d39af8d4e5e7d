//! Reads: one job, a filtered page of jobs, the stats, cancel requests.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobId, JobStatus};
use crate::stats::Stats;
use crate::store::fold::{self, StatsRow};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::row::{job_columns, job_from_row};

const GET: &str = concat!("SELECT ", job_columns!(), " FROM jobq.jobs WHERE id = $1");

macro_rules! filter {
    () => {
        "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR job_type = $2) \
         AND ($3::text IS NULL OR entity_type = $3) AND ($4::text IS NULL OR entity_id = $4) \
         AND ($5::text IS NULL OR owner = $5) AND ($6::text IS NULL OR queue = $6)"
    };
}

const LIST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobq.jobs WHERE ",
    filter!(),
    " AND ($7::bigint IS NULL OR (created_at, id) < ($7, $8::text)) \
     ORDER BY created_at DESC, id DESC LIMIT $9"
);

const COUNT: &str = concat!("SELECT count(*) FROM jobq.jobs WHERE ", filter!());

const STATS: &str = "SELECT job_type, status, \
     CASE WHEN status = 'in_progress' AND started_at IS NULL THEN 'reserved' \
          WHEN status <> 'pending' THEN NULL WHEN next_retry <= $1 THEN 'ready' \
          WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, \
     count(*), min(next_retry), queue FROM jobq.jobs GROUP BY 1, 2, 3, 6";

/// A range scan of the primary key: ids are hyphenated lower-case text in the
/// "C" collation, which sorts as the UUIDs' bytes.
const IDS_BETWEEN: &str =
    "SELECT id FROM jobq.jobs WHERE id BETWEEN $1 AND $2 ORDER BY id DESC LIMIT $3";

const CANCEL_REQUESTS: &str = "SELECT id FROM jobq.jobs WHERE status = 'in_progress' \
     AND cancel_requested AND locked_by = $1";

/// Reads one job.
pub(crate) fn get(c: &mut Conn, id: JobId) -> Result<Job> {
    let row = c.opt("get", GET, &[&id.to_string()])?;
    row.map(|r| job_from_row(&r))
        .ok_or(crate::error::Error::NotFound { id })
}

/// Ids from `low` to `high` (inclusive), descending (newest first, as the
/// job list), at most `limit`.
pub(crate) fn ids_between(
    c: &mut Conn,
    low: JobId,
    high: JobId,
    limit: usize,
) -> Result<Vec<JobId>> {
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let (low, high) = (low.to_string(), high.to_string());
    let rows = c.query("find id prefix", IDS_BETWEEN, &[&low, &high, &lim])?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get::<_, String>(0).parse().ok())
        .collect())
}

/// Reads a page of jobs (newest first) and the total matching the filter.
pub(crate) fn list(
    c: &mut Conn,
    f: &JobFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<(Vec<Job>, u64)> {
    let status = f.status.map(JobStatus::as_str);
    let ms = cursor.map(|c| c.created_at);
    let id = cursor.map(|c| c.id.to_string());
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let filter: [&(dyn postgres::types::ToSql + Sync); 6] = [
        &status,
        &f.job_type,
        &f.entity_type,
        &f.entity_id,
        &f.owner,
        &f.queue,
    ];
    let page: [&(dyn postgres::types::ToSql + Sync); 3] = [&ms, &id, &lim];
    let params: Vec<_> = filter.iter().chain(page.iter()).copied().collect();
    let rows = c.query("list", LIST, &params)?;
    let total: i64 = c.opt("count", COUNT, &filter)?.map_or(0, |r| r.get(0));
    Ok((
        rows.iter().map(job_from_row).collect(),
        u64::try_from(total).unwrap_or(0),
    ))
}

/// Reads the stats at `now`.
pub(crate) fn stats(c: &mut Conn, now: Timestamp) -> Result<Stats> {
    let rows = c.query("stats", STATS, &[&now.0])?;
    let rows = rows.iter().map(|r| StatsRow {
        job_type: r.get(0),
        status: r.get(1),
        split: r.get(2),
        n: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
        min_due: r.get::<_, Option<i64>>(4).unwrap_or(i64::MAX),
        queue: r.get(5),
    });
    Ok(fold::stats(now, rows))
}

/// Ids of `worker`'s running jobs with a cancel request.
pub(crate) fn cancel_requests(c: &mut Conn, worker: &str) -> Result<Vec<JobId>> {
    let rows = c.query("cancel_requests", CANCEL_REQUESTS, &[&worker])?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get::<_, String>(0).parse().ok())
        .collect())
}
