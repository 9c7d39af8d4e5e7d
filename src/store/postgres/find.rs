//! Filtered reads that stay cheap on a big history: a page of jobs whose SQL
//! names only the filter's fields (so the planner can pick their index for the
//! values bound), and counts that stop at a limit.
//!
//! The SQL is put together from constant fragments (never from values, which
//! are always bound as parameters).

use postgres::types::ToSql;

use crate::error::Result;
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobStatus};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::row::{job_columns, job_from_row};

/// A filter as SQL: conditions joined by AND (`true` when none) and their
/// values, numbered `$1..`; later parameters are numbered from `values.len() + 1`.
pub(crate) struct Conditions<'a> {
    pub sql: String,
    pub values: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Conditions<'a> {
    /// Binds `value` and returns its placeholder (`$n`).
    pub(crate) fn bind(&mut self, value: &'a (dyn ToSql + Sync)) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }
}

/// The conditions of `f`.
pub(crate) fn conditions(f: &JobFilter) -> Conditions<'_> {
    let fields: [(&str, Option<&(dyn ToSql + Sync)>); 6] = [
        ("status", f.status.map(status_param)),
        ("queue", f.queue.as_ref().map(|s| s as _)),
        ("job_type", f.job_type.as_ref().map(|s| s as _)),
        ("entity_type", f.entity_type.as_ref().map(|s| s as _)),
        ("entity_id", f.entity_id.as_ref().map(|s| s as _)),
        ("owner", f.owner.as_ref().map(|s| s as _)),
    ];
    let mut c = Conditions {
        sql: String::new(),
        values: Vec::new(),
    };
    let mut parts = Vec::new();
    for (column, value) in fields {
        if let Some(v) = value {
            parts.push(format!("{column} = {}", c.bind(v)));
        }
    }
    c.sql = if parts.is_empty() {
        "true".to_string()
    } else {
        parts.join(" AND ")
    };
    c
}

/// A status as a parameter that lives as long as the program.
fn status_param(status: JobStatus) -> &'static (dyn ToSql + Sync) {
    match status {
        JobStatus::Pending => &"pending",
        JobStatus::InProgress => &"in_progress",
        JobStatus::Completed => &"completed",
        JobStatus::Failed => &"failed",
        JobStatus::Cancelled => &"cancelled",
    }
}

/// A page of jobs matching `f`, newest first, after `cursor`.
pub(crate) fn find(
    c: &mut Conn,
    f: &JobFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<Vec<Job>> {
    let (ms, id) = (
        cursor.map(|c| c.created_at),
        cursor.map(|c| c.id.to_string()),
    );
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut w = conditions(f);
    let after = match (&ms, &id) {
        (Some(ms), Some(id)) => format!(" AND (created_at, id) < ({}, {})", w.bind(ms), w.bind(id)),
        _ => String::new(),
    };
    let p_lim = w.bind(&lim);
    let sql = format!(
        "SELECT {} FROM jobq.jobs WHERE {}{after} ORDER BY created_at DESC, id DESC LIMIT {p_lim}",
        job_columns!(),
        w.sql,
    );
    let rows = c.query_text("find", &sql, &w.values)?;
    Ok(rows.iter().map(job_from_row).collect())
}

/// How many jobs match `f`, counting no further than `limit`.
pub(crate) fn count_up_to(c: &mut Conn, f: &JobFilter, limit: u64) -> Result<u64> {
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut w = conditions(f);
    let p_lim = w.bind(&lim);
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM jobq.jobs WHERE {} LIMIT {p_lim}) s",
        w.sql,
    );
    let rows = c.query_text("count", &sql, &w.values)?;
    let n: i64 = rows.first().map_or(0, |r| r.get(0));
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_set_fields_become_numbered_conditions() {
        let empty = JobFilter::default();
        let none = conditions(&empty);
        assert_eq!((none.sql.as_str(), none.values.len()), ("true", 0));
        let f = JobFilter {
            status: Some(JobStatus::Failed),
            owner: Some("alice".into()),
            ..JobFilter::default()
        };
        let c = conditions(&f);
        assert_eq!(c.sql, "status = $1 AND owner = $2");
        assert_eq!(c.values.len(), 2);
    }
}
