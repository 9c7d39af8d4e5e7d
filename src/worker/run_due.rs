//! Running due jobs once, on the calling thread (the HTTP cron endpoint).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::queue::Queue;
use crate::worker::{Registry, WorkerConfig};

/// What [`run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Claims up to `limit` due jobs of the registry's types and runs them one after
/// another on this thread, with the same rules as the pool (leases, timeouts,
/// panics caught). Safe beside running pools and other calls: each job is claimed
/// by exactly one of them.
///
/// # Errors
/// Database errors from claim; a job's own failure is counted, not returned.
pub fn run_due(
    queue: &Queue,
    registry: &Registry,
    limit: usize,
    config: &WorkerConfig,
) -> Result<RunSummary> {
    let _ = (queue, registry, limit, config);
    todo!("run_due")
}
