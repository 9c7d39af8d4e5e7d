//! Running due jobs once, on the calling thread (the HTTP cron endpoint).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::failure::Failure;
use crate::job::{JobId, JobStatus};
use crate::queue::{ClaimSpec, Finished, Queue};
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
/// As in a pool's rounds, each job's outcome is written in the transaction
/// that claims the next job (one commit per job; never more than one job
/// claimed and not yet run).
///
/// # Errors
/// Database errors from a round; a job's own failure is counted, not
/// returned. Jobs settled before the error stay settled; the outcome of the
/// job run just before it is not written (its lease expires and it runs again).
pub fn run_due(
    queue: &Queue,
    registry: &Registry,
    limit: usize,
    config: &WorkerConfig,
) -> Result<RunSummary> {
    let started = Instant::now();
    let types = registry.types();
    let mut sum = RunSummary::default();
    let mut last = Last::default();
    loop {
        let claim = ClaimSpec {
            worker: &config.worker_id,
            types: Some(&types),
            queues: None,
            n: usize::from(sum.processed < limit as u64),
            lease: config.lease,
            reserve: false,
        };
        let settled = queue.settle_and_claim(last.finished(), Some(claim))?;
        count(
            &mut sum,
            settled.completed.into_iter().chain(settled.failed),
        );
        count(
            &mut sum,
            settled.released.into_iter().chain(settled.snoozed),
        );
        last = Last::default();
        let Some(mut job) = settled.claimed.into_iter().next() else {
            break;
        };
        sum.processed += 1;
        let flag = Arc::new(StopFlag::new());
        let outcome = execute(queue, registry, &mut job, config.lease, flag);
        last.record(job.id, job.lease_token, outcome);
    }
    sum.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(sum)
}

/// The outcome of the job run last, to write with the next claim.
#[derive(Default)]
struct Last {
    done: Vec<(JobId, i64, Value)>,
    failed: Vec<(JobId, i64, Failure)>,
    released: Vec<(JobId, i64)>,
    snoozed: Vec<(JobId, i64, Duration)>,
}

impl Last {
    fn record(&mut self, id: JobId, token: i64, outcome: Outcome) {
        match outcome {
            Outcome::Success(v) => self.done.push((id, token, v)),
            Outcome::Failure(f) => self.failed.push((id, token, f)),
            Outcome::Release => self.released.push((id, token)),
            Outcome::Snooze(d) => self.snoozed.push((id, token, d)),
        }
    }

    fn finished(&self) -> Finished<'_> {
        Finished {
            done: &self.done,
            failed: &self.failed,
            released: &self.released,
            snoozed: &self.snoozed,
            ..Finished::default()
        }
    }
}

/// Counts written outcomes; a refused one (lease lost, job gone) is logged.
fn count(sum: &mut RunSummary, statuses: impl Iterator<Item = Result<JobStatus>>) {
    for status in statuses {
        match status {
            Ok(JobStatus::Completed) => sum.completed += 1,
            Ok(JobStatus::Pending) => sum.retried += 1,
            Ok(_) => sum.failed += 1,
            Err(e) => log::warn!("{e}"),
        }
    }
}
