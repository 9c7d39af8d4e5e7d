//! The built-in job type `jobq.prune`, the audit cleanup: deletes completed and
//! cancelled jobs older than the retention (default 7 days) and failed ones older
//! than the failed retention (default 30 days). `jobq work` keeps one scheduled
//! daily with [`ensure_scheduled`].

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{PruneConfig, PRUNE_JOB_TYPE};
use jobq::JobStatus;
use jobq::NewJob;
use jobq::Queue;
use jobq::Result;
use jobq::{HandlerResult, JobContext, JobError};

/// How often the prune job runs: daily.
pub const PRUNE_EVERY: Duration = Duration::from_secs(86_400);

/// Runs one prune on `queue` with `policy`. Returns
/// `{"deleted_completed_cancelled": n, "deleted_failed": m}`.
///
/// # Errors
/// Database errors from [`Queue::prune`].
pub fn prune_once(queue: &Queue, policy: &PruneConfig) -> Result<Value> {
    let done = [JobStatus::Completed, JobStatus::Cancelled];
    let finished = queue.prune(policy.retention, &done)?;
    let failed = queue.prune(policy.failed_retention, &[JobStatus::Failed])?;
    if finished + failed > 0 {
        log::info!("pruned {finished} completed/cancelled and {failed} failed jobs");
    }
    Ok(json!({"deleted_completed_cancelled": finished, "deleted_failed": failed}))
}

/// The `jobq.prune` handler for `queue` (the payload is ignored): prunes, then
/// schedules the next run a day later (unless one is already pending), so the
/// prune keeps running daily. A database error is a retryable failure.
pub fn prune_handler(
    queue: Queue,
    policy: PruneConfig,
) -> impl Fn(&JobContext, Value) -> HandlerResult + Send + Sync {
    move |_ctx: &JobContext, _payload: Value| {
        let retryable = |e: jobq::Error| JobError::Retryable(e.to_string());
        let out = prune_once(&queue, &policy).map_err(retryable)?;
        ensure_scheduled(&queue).map_err(retryable)?;
        Ok(out)
    }
}

/// Enqueues a `jobq.prune` job due in [`PRUNE_EVERY`] unless one is already
/// pending. Returns true when it enqueued one.
///
/// # Errors
/// Database errors from the list or the enqueue.
pub fn ensure_scheduled(queue: &Queue) -> Result<bool> {
    // A delay, not a run_at from a second reading of the clock: due exactly
    // PRUNE_EVERY after the job's created_at. One transaction decides, so
    // processes starting together schedule one prune, not one each.
    let next = NewJob::new(PRUNE_JOB_TYPE, Value::Null).delay(PRUNE_EVERY);
    Ok(queue.enqueue_unless_pending(next)?.is_some())
}
