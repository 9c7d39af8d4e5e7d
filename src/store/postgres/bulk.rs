//! Bulk retry and cancel of the jobs matching a filter, a batch at a time, in
//! one transaction per batch: the batch's candidates are read, then each
//! moves with the same guarded statements as its single-job call (a job that
//! changed meanwhile, or whose retry would make a second live holder of its
//! unique key, is skipped, never forced).

use crate::error::Result;
use crate::job::JobId;
use crate::overview::BulkAction;
use crate::store::postgres::admin;
use crate::store::postgres::conn::Conn;
use crate::store::postgres::find::conditions;
use crate::store::{BulkBatch, BulkDone};

/// The statuses each action can move, as its single-job call allows them
/// (see `state.rs`).
fn eligible(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "status IN ('failed', 'cancelled')",
        BulkAction::Cancel => {
            "(status = 'pending' OR (status = 'in_progress' AND NOT cancel_requested))"
        }
    }
}

/// The next batch's candidates: (id, created_at) in enqueue order.
fn candidates(c: &mut Conn, b: &BulkBatch<'_>) -> Result<Vec<(JobId, i64)>> {
    let (ms, id) = match b.after {
        Some(c) => (c.created_at, c.id.to_string()),
        None => (i64::MIN, String::new()),
    };
    let lim = i64::try_from(b.limit).unwrap_or(i64::MAX);
    let mut w = conditions(b.filter);
    let (p_ms, p_id, p_until, p_lim) = (w.bind(&ms), w.bind(&id), w.bind(&b.until.0), w.bind(&lim));
    let sql = format!(
        "SELECT id, created_at FROM jobq.jobs WHERE {} AND {} \
         AND (created_at, id) > ({p_ms}, {p_id}) AND created_at <= {p_until} \
         ORDER BY created_at, id LIMIT {p_lim}",
        w.sql,
        eligible(b.action),
    );
    let rows = c.query_text("bulk", &sql, &w.values)?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get::<_, String>(0).parse().ok()?, r.get(1))))
        .collect())
}

/// How many jobs every batch of `b` together would move now (a candidate
/// that changes before its batch is skipped then, so this is an estimate).
pub(crate) fn count(c: &mut Conn, b: &BulkBatch<'_>) -> Result<u64> {
    let mut w = conditions(b.filter);
    let until = w.bind(&b.until.0);
    let sql = format!(
        "SELECT count(*) FROM jobq.jobs WHERE {} AND {} AND created_at <= {until}",
        w.sql,
        eligible(b.action),
    );
    let rows = c.query_text("bulk count", &sql, &w.values)?;
    let n: i64 = rows.first().map_or(0, |r| r.get(0));
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Reads the batch's candidates and moves them (in the caller's transaction);
/// returns how many moved and where the next batch starts.
pub(crate) fn batch(c: &mut Conn, b: &BulkBatch<'_>) -> Result<BulkDone> {
    let ids = candidates(c, b)?;
    crate::store::fold::bulk(&ids, b.limit, |id| match b.action {
        BulkAction::Retry => admin::retry(c, id, b.now).map(|()| true),
        BulkAction::Cancel => {
            admin::cancel(c, id, b.now).map(|m| m != crate::state::Move::Unchanged)
        }
    })
}
