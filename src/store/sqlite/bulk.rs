//! Bulk retry and cancel of the jobs matching a filter, a batch at a time: the
//! batch's candidates are read outside the write lock, then each moves with
//! the same guarded statements as its single-job call, in one short write
//! transaction (a job that changed meanwhile, or whose retry would make a
//! second live holder of its unique key, is skipped, never forced).

use rusqlite::{params_from_iter, Connection, Transaction};

use crate::error::{Error, Result};
use crate::job::JobId;
use crate::overview::BulkAction;
use crate::store::sqlite::admin;
use crate::store::sqlite::id;
use crate::store::sqlite::parts::{
    count_sql, count_values, ordered_sql, ordered_values, parts, status_term, StatusTerm,
};
use crate::store::{BulkBatch, BulkDone};

/// The statuses each action can move, as its single-job call allows them
/// (see `state.rs`). Written with `+` so they never steer the index choice.
fn eligible(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => " AND +status IN ('failed', 'cancelled')",
        BulkAction::Cancel => {
            " AND (+status = 'pending' OR (+status = 'in_progress' AND cancel_requested = 0))"
        }
    }
}

/// The statement of a batch's candidates of `b` (its status written as
/// `term`), after the id `after`, at most `lim`: its SQL and values.
pub(crate) fn candidates_statement<'a>(
    b: &'a BulkBatch<'a>,
    term: StatusTerm,
    after: &'a dyn rusqlite::ToSql,
    lim: &'a i64,
) -> (String, Vec<&'a dyn rusqlite::ToSql>) {
    let parts = parts(b.filter, term, b.action.moves());
    let extra = format!("{} AND id > ? AND created_at <= ?", eligible(b.action));
    let sql = ordered_sql(&parts, "id, created_at", &extra, "ASC");
    (sql, ordered_values(parts, &[after, &b.until.0], lim))
}

/// The next batch's candidates: (id, created_at) in key order (see
/// `find.rs`), after the batch's cursor (its id), created no later than `until`.
pub(crate) fn candidates(conn: &Connection, b: &BulkBatch<'_>) -> Result<Vec<(JobId, i64)>> {
    // Before the first batch: an empty blob sorts before every stored id.
    let after = b.after.map(|c| id::key(c.id));
    let id: &dyn rusqlite::ToSql = match &after {
        Some(k) => k,
        None => &id::BEFORE_ALL,
    };
    let lim = i64::try_from(b.limit).unwrap_or(i64::MAX);
    let (sql, values) = candidates_statement(b, status_term(conn, b.filter)?, id, &lim);
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("bulk"))?;
    let rows = stmt
        .query_map(params_from_iter(values), |r| {
            Ok((id::get(r, 0)?, r.get(1)?))
        })
        .map_err(Error::db("bulk"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("bulk"))
}

/// How many jobs every batch of `b` together would move now (a candidate
/// that changes before its batch is skipped then, so this is an estimate).
pub(crate) fn count(conn: &Connection, b: &BulkBatch<'_>) -> Result<u64> {
    let parts = parts(b.filter, status_term(conn, b.filter)?, b.action.moves());
    let extra = format!("{} AND created_at <= ?", eligible(b.action));
    let sql = count_sql(&parts, &extra, false);
    let values = count_values(parts, &[&b.until.0]);
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("bulk count"))?;
    let n: i64 = stmt
        .query_row(params_from_iter(values), |r| r.get(0))
        .map_err(Error::db("bulk count"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Moves the candidates (in the caller's write transaction); returns how many
/// moved. A candidate that changed since it was read is skipped.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    b: &BulkBatch<'_>,
    ids: &[(JobId, i64)],
) -> Result<BulkDone> {
    crate::store::fold::bulk(ids, b.limit, |id| match b.action {
        BulkAction::Retry => admin::retry(tx, id, b.now).map(|()| true),
        BulkAction::Cancel => {
            admin::cancel(tx, id, b.now).map(|m| m != crate::state::Move::Unchanged)
        }
    })
}
