//! The pool.

use std::time::Duration;

use crate::error::Result;
use crate::queue::Queue;
use crate::worker::{Registry, WorkerConfig};

/// Counters of a pool since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Jobs claimed and started.
    pub started: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Attempts failed and retried later.
    pub retried: u64,
    /// Jobs ended failed or cancelled.
    pub failed: u64,
    /// Jobs handed back at shutdown.
    pub released: u64,
}

/// A running pool of worker threads.
#[derive(Debug)]
pub struct WorkerPool {}

impl WorkerPool {
    /// Starts the pool.
    ///
    /// # Errors
    /// Database errors from the first recovery.
    pub fn start(queue: Queue, registry: Registry, config: WorkerConfig) -> Result<WorkerPool> {
        let _ = (queue, registry, config);
        todo!()
    }

    /// Blocks until a drain-mode pool has finished (nothing due, nothing running).
    pub fn wait(&self) {
        todo!()
    }

    /// Stops claiming, lets running jobs finish within `grace`, then hands the rest
    /// back to pending without using their attempt. Returns the pool's counters.
    pub fn shutdown(self, grace: Duration) -> PoolCounts {
        let _ = grace;
        todo!()
    }

    /// The pool's counters so far.
    pub fn counts(&self) -> PoolCounts {
        todo!()
    }
}
