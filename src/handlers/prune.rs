//! The built-in job type `jobq.prune`, the audit cleanup: deletes completed and
//! cancelled jobs older than the retention (default 7 days) and failed ones older
//! than the failed retention (default 30 days). It runs from the built-in
//! schedule `jobq.prune` (`[prune] cron`, default daily at 03:17 UTC).

use serde_json::{json, Value};

use crate::config::PruneConfig;
use jobq::JobStatus;
use jobq::Queue;
use jobq::Result;
use jobq::{HandlerResult, JobContext, JobError};

/// Runs one prune on `queue` with `policy`. Returns
/// `{"deleted_completed_cancelled": n, "deleted_failed": m}`.
///
/// # Errors
/// Database errors from [`Queue::prune`].
pub fn prune_once(queue: &Queue, policy: &PruneConfig) -> Result<Value> {
    let all = [
        JobStatus::Completed,
        JobStatus::Cancelled,
        JobStatus::Failed,
    ];
    let (finished, failed) = prune_by_policy(queue, policy, &all)?;
    if finished + failed > 0 {
        log::info!("pruned {finished} completed/cancelled and {failed} failed jobs");
    }
    Ok(json!({"deleted_completed_cancelled": finished, "deleted_failed": failed}))
}

/// Deletes the jobs in `statuses` (final ones) that finished longer ago than
/// `policy` keeps them: `retention` for completed and cancelled jobs,
/// `failed_retention` for failed ones (also `jobq prune` without
/// `--older-than`). Returns (completed and cancelled, failed) deleted.
///
/// # Errors
/// Database errors from [`Queue::prune`].
pub fn prune_by_policy(
    queue: &Queue,
    policy: &PruneConfig,
    statuses: &[JobStatus],
) -> Result<(u64, u64)> {
    let (failed, other): (Vec<JobStatus>, Vec<JobStatus>) =
        statuses.iter().partition(|s| **s == JobStatus::Failed);
    let mut deleted = (0, 0);
    if !other.is_empty() {
        deleted.0 = queue.prune(policy.retention, &other)?;
    }
    if !failed.is_empty() {
        deleted.1 = queue.prune(policy.failed_retention, &failed)?;
    }
    Ok(deleted)
}

/// The `jobq.prune` handler for `queue` (the payload is ignored): prunes. A
/// database error is a retryable failure.
pub fn prune_handler(
    queue: Queue,
    policy: PruneConfig,
) -> impl Fn(&JobContext, Value) -> HandlerResult + Send + Sync {
    move |_ctx: &JobContext, _payload: Value| {
        let retryable = |e: jobq::Error| JobError::Retryable(e.to_string());
        prune_once(&queue, &policy).map_err(retryable)
    }
}
