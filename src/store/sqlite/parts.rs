//! A filter as SQL: conditions whose text names only the filter's fields (so
//! SQLite can pick their index), split into parts when no one index serves it.
//!
//! Since schema version 9 no index holds every job's type: pending jobs are
//! found by type through `jobs_claim` (it ends with `job_type`), running and
//! finished ones through `jobs_status` (it ends with `job_type` too; version 10
//! dropped `jobs_type`, so a completion writes one index fewer). A filter
//! naming a type but no status is read in those parts, each through its index,
//! and the parts are put back together in key order. A type with many finished
//! jobs ("dense", like a dense status) is read by walking the key instead.
//!
//! The SQL is put together from constant fragments (never from values, which
//! are always bound); each shape is a cached statement.

use rusqlite::types::ToSql;
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::filter::JobFilter;
use crate::job::JobStatus;

/// Beyond this many jobs of one status, a status is "dense": a newest-first page
/// walks the key and skips the few that do not match, instead of sorting every
/// job of the status (which, for `completed` on a big history, would sort a
/// million rows to show fifty).
pub(crate) const DENSE: u64 = 10_000;

/// Jobs of a status other than pending, through `jobs_status` (whose rows
/// leave pending ones out, so the condition says so), up to ?2.
const COUNT_STATUS: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs \
     WHERE status = ?1 AND status != 'pending' LIMIT ?2)";
/// Pending jobs, through `jobs_claim`, up to ?2 (?1 is 'pending').
const COUNT_PENDING: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = ?1 LIMIT ?2)";
/// Finished jobs of type ?1, through `jobs_status` (covering), up to ?2.
const COUNT_FINISHED_TYPE: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs \
     WHERE status IN ('completed', 'failed', 'cancelled') AND status != 'pending' \
     AND job_type = ?1 LIMIT ?2)";
/// Jobs of status ?1 (not pending) and type ?2, through `jobs_status`, up to ?3.
const COUNT_STATUS_TYPE: &str = "SELECT count(*) FROM (SELECT 1 FROM jobs \
     WHERE status = ?1 AND status != 'pending' AND job_type = ?2 LIMIT ?3)";

/// The parts of a filter naming a type and no status: the table as named in
/// FROM, the status term, and the statuses the part holds. Each term is the
/// predicate of one partial index: pending (`jobs_claim`, named, since a
/// search by type alone would otherwise read the table), running and finished
/// (`jobs_status`).
pub(crate) const PART_TERMS: [(&str, &str, &[JobStatus]); 3] = [
    (CLAIM_INDEX, PENDING, &[JobStatus::Pending]),
    ("jobs", RUNNING, &[JobStatus::InProgress]),
    (
        "jobs",
        FINISHED,
        &[
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ],
    ),
];

/// The table read through the claim index (pending jobs by type: a scan of
/// that index, not of the table; the statement fails if the index is missing).
const CLAIM_INDEX: &str = "jobs INDEXED BY jobs_claim";
/// `jobs_claim`'s predicate.
const PENDING: &str = "status = 'pending'";
/// Running jobs, in `jobs_status` (whose predicate the second term is).
const RUNNING: &str = "status = 'in_progress' AND status != 'pending'";
/// Finished jobs, in `jobs_status` (whose predicate the second term is).
const FINISHED: &str = "status IN ('completed', 'failed', 'cancelled') AND status != 'pending'";

/// A filter as SQL: the table as named in FROM, conditions joined by AND
/// (`1` when none) and their values.
pub(crate) struct Conditions<'a> {
    pub from: &'static str,
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

/// The conditions of `f` with `status` as its status term (text, and the value
/// it binds if any).
fn build<'a>(
    f: &'a JobFilter,
    from: &'static str,
    status: Option<(&'static str, Option<&'a dyn ToSql>)>,
) -> Conditions<'a> {
    let fields: [(&'static str, Option<&dyn ToSql>); 5] = [
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
    if let Some((sql, value)) = status {
        parts.push(sql);
        values.extend(value);
    }
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
    Conditions { from, sql, values }
}

/// The conditions of `f`, with the status term written as `term` says.
pub(crate) fn conditions(f: &JobFilter, term: StatusTerm) -> Conditions<'_> {
    // `jobs_status` holds every status but pending (pending jobs have
    // `jobs_claim`); a condition uses a partial index only when it says so.
    // A pending status that is not dense reads `jobs_claim` (named: a walk of
    // the key would pass every older finished job first).
    let Some(s) = f.status.as_ref() else {
        return build(f, "jobs", None);
    };
    match (term, s) {
        (StatusTerm::Scanned, _) => build(f, "jobs", Some(("+status = ?", Some(s)))),
        (StatusTerm::Indexed, JobStatus::Pending) => build(f, CLAIM_INDEX, Some((PENDING, None))),
        (StatusTerm::Indexed, _) => build(
            f,
            "jobs",
            Some(("status = ? AND status != 'pending'", Some(s))),
        ),
    }
}

/// How to write `f`'s status term: scanned when its status is dense (more than
/// [`DENSE`] jobs, counted through the status index up to that many) or, for a
/// filter naming a type and no status or a finished one, when that type's
/// finished jobs (of that status) are dense: a newest-first page then walks
/// the key. Pending and running jobs of a type are always read through their
/// index.
pub(crate) fn status_term(conn: &Connection, f: &JobFilter) -> Result<StatusTerm> {
    let limit = i64::try_from(DENSE + 1).unwrap_or(i64::MAX);
    let (sql, values): (&str, Vec<&dyn ToSql>) = match (f.status.as_ref(), f.job_type.as_ref()) {
        (None, None) | (Some(JobStatus::Pending | JobStatus::InProgress), Some(_)) => {
            return Ok(StatusTerm::Indexed)
        }
        (Some(s @ JobStatus::Pending), None) => (COUNT_PENDING, vec![s, &limit]),
        (Some(s), None) => (COUNT_STATUS, vec![s, &limit]),
        (None, Some(t)) => (COUNT_FINISHED_TYPE, vec![t, &limit]),
        (Some(s), Some(t)) => (COUNT_STATUS_TYPE, vec![s, t, &limit]),
    };
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("count"))?;
    let n: i64 = stmt
        .query_row(rusqlite::params_from_iter(values), |r| r.get(0))
        .map_err(Error::db("count"))?;
    let dense = u64::try_from(n).unwrap_or(0) > DENSE;
    Ok(if dense {
        StatusTerm::Scanned
    } else {
        StatusTerm::Indexed
    })
}

/// The parts `f` is read in, leaving out parts holding none of `among` (the
/// statuses the caller can use); `term` is how a filter without a type writes
/// its status. One part unless `f` names a type and no status.
pub(crate) fn parts<'a>(
    f: &'a JobFilter,
    term: StatusTerm,
    among: &[JobStatus],
) -> Vec<Conditions<'a>> {
    let running = matches!(f.status, Some(JobStatus::Pending | JobStatus::InProgress));
    if f.job_type.is_none() || (term == StatusTerm::Scanned && !running) {
        // One part: no type, or a dense type walked along the key.
        return vec![conditions(f, term)];
    }
    if let Some(s) = f.status.as_ref() {
        // The type's index for the status, whatever the status's density.
        let (from, sql, value) = match s {
            JobStatus::Pending => (CLAIM_INDEX, PENDING, None),
            JobStatus::InProgress => ("jobs", RUNNING, None),
            _ => (
                "jobs",
                "status = ? AND status != 'pending'",
                Some(s as &dyn ToSql),
            ),
        };
        return vec![build(f, from, Some((sql, value)))];
    }
    PART_TERMS
        .iter()
        .filter(|(_, _, held)| held.iter().any(|s| among.contains(s)))
        .map(|(from, term, _)| build(f, from, Some((term, None))))
        .collect()
}

/// One statement reading `parts`: from each, `SELECT {columns} ... WHERE {part}
/// {extra} ORDER BY id {dir} LIMIT ?`, then (several parts) their union in
/// the same order, `LIMIT ?`. `columns` starts with the id. Values: see
/// [`ordered_values`].
pub(crate) fn ordered_sql(
    parts: &[Conditions<'_>],
    columns: &str,
    extra: &str,
    dir: &str,
) -> String {
    let one = |c: &Conditions<'_>| {
        format!(
            "SELECT {columns} FROM {} WHERE {}{extra} ORDER BY id {dir} LIMIT ?",
            c.from, c.sql
        )
    };
    if let [only] = parts {
        return one(only);
    }
    let each: Vec<String> = parts
        .iter()
        .map(|c| format!("SELECT * FROM ({})", one(c)))
        .collect();
    format!("{} ORDER BY 1 {dir} LIMIT ?", each.join(" UNION ALL "))
}

/// The values of [`ordered_sql`]'s statement: each part's, then `extra`'s and
/// the limit, and (several parts) the limit once more.
pub(crate) fn ordered_values<'a>(
    parts: Vec<Conditions<'a>>,
    extra: &[&'a dyn ToSql],
    limit: &'a i64,
) -> Vec<&'a dyn ToSql> {
    let several = parts.len() > 1;
    let mut values = Vec::new();
    for c in parts {
        values.extend(c.values);
        values.extend_from_slice(extra);
        values.push(limit as &dyn ToSql);
    }
    if several {
        values.push(limit);
    }
    values
}

/// One statement counting the rows of every part (`WHERE {part}{extra}`), up
/// to a bound `LIMIT ?` when `capped`; its values are each part's then `extra`'s
/// (then the cap).
pub(crate) fn count_sql(parts: &[Conditions<'_>], extra: &str, capped: bool) -> String {
    let each: Vec<String> = parts
        .iter()
        .map(|c| format!("SELECT 1 FROM {} WHERE {}{extra}", c.from, c.sql))
        .collect();
    let cap = if capped { " LIMIT ?" } else { "" };
    format!("SELECT count(*) FROM ({}{cap})", each.join(" UNION ALL "))
}

/// The values of [`count_sql`]'s statement, without the cap.
pub(crate) fn count_values<'a>(
    parts: Vec<Conditions<'a>>,
    extra: &[&'a dyn ToSql],
) -> Vec<&'a dyn ToSql> {
    let mut values = Vec::new();
    for c in parts {
        values.extend(c.values);
        values.extend_from_slice(extra);
    }
    values
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

    #[test]
    fn a_type_without_a_status_is_read_in_the_parts_asked_for() {
        let f = JobFilter {
            job_type: Some("mail".into()),
            ..JobFilter::default()
        };
        let all = parts(&f, StatusTerm::Indexed, &JobStatus::ALL);
        assert_eq!(all.len(), 3);
        assert!(all
            .iter()
            .all(|c| c.values.len() == 1 && c.sql.ends_with("job_type = ?")));
        assert_eq!(all[0].from, CLAIM_INDEX);
        let retry = parts(
            &f,
            StatusTerm::Indexed,
            &[JobStatus::Failed, JobStatus::Cancelled],
        );
        assert_eq!(retry.len(), 1);
        assert!(retry[0].sql.starts_with(FINISHED), "{}", retry[0].sql);
        // A dense type: one part, the type alone, walked along the key.
        let dense = parts(&f, StatusTerm::Scanned, &JobStatus::ALL);
        assert_eq!(dense.len(), 1);
        assert_eq!(
            (dense[0].from, dense[0].sql.as_str()),
            ("jobs", "job_type = ?")
        );
        let sql = ordered_sql(&all, "id", "", "DESC");
        assert_eq!(sql.matches("UNION ALL").count(), 2, "{sql}");
        let lim = 5;
        assert_eq!(ordered_values(all, &[], &lim).len(), 3 * 2 + 1);
    }
}
