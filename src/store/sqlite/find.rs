//! Filtered reads that stay cheap on a big history: a page of jobs, newest
//! first, through the index of the filter's fields, and counts that stop at a
//! limit (see [`crate::store::sqlite::parts`] for how a filter becomes SQL).
//!
//! Newest first is the primary key's order, descending (schema version 9): a
//! job's id is a UUID v7 made from its `created_at`, so for every job jobq
//! made from version 9 on this is `created_at`, then id. Jobs written before
//! (an upgraded file) or imported keep their ids and are placed by the time in
//! their id, which jobq took from the system clock when it made the job.

use rusqlite::types::ToSql;
use rusqlite::{params_from_iter, Connection};

use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobStatus};
use crate::store::sqlite::id::{key, Key};
use crate::store::sqlite::parts::{
    count_sql, count_values, ordered_sql, ordered_values, parts, status_term, StatusTerm,
};
use crate::store::sqlite::row::{job_columns, job_from_row};

/// The statement of a page of `f` (its status written as `term`), after the
/// id `after`, at most `lim` jobs: its SQL and values.
pub(crate) fn page<'a>(
    f: &'a JobFilter,
    term: StatusTerm,
    after: Option<&'a Key>,
    lim: &'a i64,
) -> (String, Vec<&'a dyn ToSql>) {
    let parts = parts(f, term, &JobStatus::ALL);
    let (extra, extra_values): (&str, Vec<&dyn ToSql>) = match after {
        Some(k) => (" AND id < ?", vec![k]),
        None => ("", Vec::new()),
    };
    let sql = ordered_sql(&parts, job_columns!(), extra, "DESC");
    (sql, ordered_values(parts, &extra_values, lim))
}

/// A page of jobs matching `f`, newest first, after `cursor` (its id).
pub(crate) fn find(
    conn: &Connection,
    f: &JobFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<Vec<Job>> {
    let after = cursor.map(|c| key(c.id));
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sql, values) = page(f, status_term(conn, f)?, after.as_ref(), &lim);
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("find"))?;
    let rows = stmt
        .query_map(params_from_iter(values), job_from_row)
        .map_err(Error::db("find"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("find"))
}

/// The statement counting the jobs of `f` up to `lim`: its SQL and values.
pub(crate) fn count<'a>(f: &'a JobFilter, lim: &'a i64) -> (String, Vec<&'a dyn ToSql>) {
    let parts = parts(f, StatusTerm::Indexed, &JobStatus::ALL);
    let sql = count_sql(&parts, "", true);
    let mut values = count_values(parts, &[]);
    values.push(lim);
    (sql, values)
}

/// How many jobs match `f`, counting no further than `limit`.
pub(crate) fn count_up_to(conn: &Connection, f: &JobFilter, limit: u64) -> Result<u64> {
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sql, values) = count(f, &lim);
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("count"))?;
    let n: i64 = stmt
        .query_row(params_from_iter(values), |r| r.get(0))
        .map_err(Error::db("count"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
