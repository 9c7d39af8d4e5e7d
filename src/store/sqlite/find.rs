//! Filtered reads that stay cheap on a big history: a page of jobs whose SQL
//! names only the filter's fields (so SQLite can pick their index), and counts
//! that stop at a limit.
//!
//! The SQL is put together from constant fragments (never from values, which
//! are always bound); each shape is a cached statement.

use rusqlite::types::ToSql;
use rusqlite::{params_from_iter, Connection};

use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobStatus};
use crate::store::sqlite::id::key;
use crate::store::sqlite::row::{job_columns, job_from_row};

/// Beyond this many jobs of one status, a status is "dense": a newest-first page
/// walks the creation index and skips the few that do not match, instead of
/// sorting every job of the status (which, for `completed` on a big history,
/// would sort a million rows to show fifty).
pub(crate) const DENSE: u64 = 10_000;

/// Jobs of a status other than pending, through `jobs_status` (whose rows
/// leave pending ones out, so the condition says so), up to ?2.
const COUNT_STATUS: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs \
     WHERE status = ?1 AND status != 'pending' LIMIT ?2)";
/// Pending jobs, through `jobs_claim`, up to ?2 (?1 is 'pending').
const COUNT_PENDING: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = ?1 LIMIT ?2)";

/// A filter as SQL: conditions joined by AND (`1` when none) and their values.
pub(crate) struct Conditions<'a> {
    pub sql: String,
    pub values: Vec<&'a dyn ToSql>,
}

/// How the status condition is written: `status = ?` lets SQLite use the
/// status index; `+status = ?` keeps it off it (for a dense status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusTerm {
    Indexed,
    Scanned,
}

/// The conditions of `f`, with the status term written as `term` says.
pub(crate) fn conditions(f: &JobFilter, term: StatusTerm) -> Conditions<'_> {
    // `jobs_status` holds every status but pending (pending jobs have
    // `jobs_claim`); a condition uses a partial index only when it says so.
    let status = match (term, f.status) {
        (StatusTerm::Scanned, _) => "+status = ?",
        (StatusTerm::Indexed, Some(JobStatus::Pending)) => "status = ?",
        (StatusTerm::Indexed, _) => "status = ? AND status != 'pending'",
    };
    let fields: [(&'static str, Option<&dyn ToSql>); 6] = [
        (status, f.status.as_ref().map(|s| s as &dyn ToSql)),
        ("queue = ?", f.queue.as_ref().map(|s| s as &dyn ToSql)),
        ("job_type = ?", f.job_type.as_ref().map(|s| s as &dyn ToSql)),
        (
            "entity_type = ?",
            f.entity_type.as_ref().map(|s| s as &dyn ToSql),
        ),
        (
            "entity_id = ?",
            f.entity_id.as_ref().map(|s| s as &dyn ToSql),
        ),
        ("owner = ?", f.owner.as_ref().map(|s| s as &dyn ToSql)),
    ];
    let mut parts = Vec::new();
    let mut values = Vec::new();
    for (sql, value) in fields {
        if let Some(v) = value {
            parts.push(sql);
            values.push(v);
        }
    }
    let sql = if parts.is_empty() {
        "1".to_string()
    } else {
        parts.join(" AND ")
    };
    Conditions { sql, values }
}

/// How to write `f`'s status term: scanned when its status is dense (more than
/// [`DENSE`] jobs, counted through the status index up to that many).
pub(crate) fn status_term(conn: &Connection, f: &JobFilter) -> Result<StatusTerm> {
    let Some(status) = f.status else {
        return Ok(StatusTerm::Indexed);
    };
    let sql = match status {
        JobStatus::Pending => COUNT_PENDING,
        _ => COUNT_STATUS,
    };
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("count"))?;
    let limit = i64::try_from(DENSE + 1).unwrap_or(i64::MAX);
    let n: i64 = stmt
        .query_row(rusqlite::params![status, limit], |r| r.get(0))
        .map_err(Error::db("count"))?;
    let dense = u64::try_from(n).unwrap_or(0) > DENSE;
    Ok(if dense {
        StatusTerm::Scanned
    } else {
        StatusTerm::Indexed
    })
}

/// A page of jobs matching `f`, newest first, after `cursor`.
pub(crate) fn find(
    conn: &Connection,
    f: &JobFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<Vec<Job>> {
    let c = conditions(f, status_term(conn, f)?);
    let after = if cursor.is_some() {
        " AND (created_at, id) < (?, ?)"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM jobs WHERE {}{after} ORDER BY created_at DESC, id DESC LIMIT ?",
        job_columns!(),
        c.sql
    );
    let (ms, id) = (cursor.map(|c| c.created_at), cursor.map(|c| key(c.id)));
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut values = c.values;
    if let (Some(ms), Some(id)) = (ms.as_ref(), id.as_ref()) {
        values.push(ms);
        values.push(id);
    }
    values.push(&lim);
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("find"))?;
    let rows = stmt
        .query_map(params_from_iter(values), job_from_row)
        .map_err(Error::db("find"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("find"))
}

/// How many jobs match `f`, counting no further than `limit`.
pub(crate) fn count_up_to(conn: &Connection, f: &JobFilter, limit: u64) -> Result<u64> {
    let c = conditions(f, StatusTerm::Indexed);
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE {} LIMIT ?)",
        c.sql
    );
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut values = c.values;
    values.push(&lim);
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("count"))?;
    let n: i64 = stmt
        .query_row(params_from_iter(values), |r| r.get(0))
        .map_err(Error::db("count"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_set_fields_become_conditions() {
        let empty = JobFilter::default();
        let none = conditions(&empty, StatusTerm::Indexed);
        assert_eq!((none.sql.as_str(), none.values.len()), ("1", 0));
        let f = JobFilter {
            status: Some(JobStatus::Failed),
            owner: Some("alice".into()),
            ..JobFilter::default()
        };
        let c = conditions(&f, StatusTerm::Scanned);
        assert_eq!(c.sql, "+status = ? AND owner = ?");
        assert_eq!(c.values.len(), 2);
    }
}
