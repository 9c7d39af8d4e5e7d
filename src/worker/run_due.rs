//! Running due jobs once, on the calling thread (the HTTP cron endpoint).

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::queue::Queue;
use crate::worker::execute::{execute, Outcome};
use crate::worker::{Registry, StopFlag, WorkerConfig};

/// What [`run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(description = "What one call that runs due jobs did.")]
pub struct RunSummary {
    /// Jobs claimed and run.
    pub processed: u64,
    /// Jobs that completed.
    pub completed: u64,
    /// Jobs that failed and will be retried.
    pub retried: u64,
    /// Jobs that failed for good (or ended cancelled).
    pub failed: u64,
    /// Wall time of the whole call, in ms.
    pub duration_ms: u64,
}

/// Claims due jobs of the registry's types one at a time, up to `limit`, and runs
/// each on this thread with the pool's rules (lease of `config.lease`, the type's
/// timeout as a cooperative deadline, panics caught). Safe beside running pools
/// and other calls: every job is claimed by exactly one of them.
///
/// # Errors
/// Database errors from claim or settle; a job's own failure is counted, not
/// returned. Jobs settled before the error stay settled.
pub fn run_due(
    queue: &Queue,
    registry: &Registry,
    limit: usize,
    config: &WorkerConfig,
) -> Result<RunSummary> {
    let started = Instant::now();
    let types = registry.types();
    let mut sum = RunSummary::default();
    while sum.processed < limit as u64 {
        let mut claimed = queue.claim(&config.worker_id, Some(&types), 1, config.lease)?;
        let Some(mut job) = claimed.pop() else { break };
        sum.processed += 1;
        let flag = Arc::new(StopFlag::new());
        let status = match execute(queue, registry, &mut job, config.lease, flag) {
            Outcome::Success(v) => queue.complete(job.id, job.lease_token, &v),
            Outcome::Failure(f) => queue.fail(job.id, job.lease_token, &f),
            Outcome::Release => queue.release(job.id, job.lease_token),
            Outcome::Snooze(d) => queue.snooze(job.id, job.lease_token, d),
        };
        match status {
            Ok(JobStatus::Completed) => sum.completed += 1,
            Ok(JobStatus::Pending) => sum.retried += 1,
            Ok(_) => sum.failed += 1,
            Err(e @ Error::LeaseLost { .. }) => log::warn!("{e}"),
            Err(e) => return Err(e),
        }
    }
    sum.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(sum)
}
