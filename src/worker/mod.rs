//! Workers: a pool of blocking threads that claim jobs, run their handlers, hold
//! their leases with heartbeats, recover expired leases, and shut down gracefully.

mod context;
mod coordinator;
mod execute;
mod handler;
mod pool;
mod run_due;
mod scheduler;
mod shared;
mod supervisor;
mod thread;
mod watcher;

use std::time::Duration;

pub use context::{JobContext, StopFlag, StopReason};
pub use handler::{Handler, HandlerResult, JobError, Registry};
pub use pool::{PoolCounts, WorkerPool};
pub use run_due::{run_due, RunSummary};

/// Settings of a [`WorkerPool`]. Every duration is a [`Duration`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Worker threads (jobs running at once). Default 4.
    pub workers: usize,
    /// Lease taken at claim and renewed by heartbeats. Default 5 min.
    pub lease: Duration,
    /// How often running jobs' leases are extended. Default `lease / 3`.
    pub heartbeat_interval: Option<Duration>,
    /// How often to look for jobs enqueued by other processes. Default 1 s.
    /// (Enqueues through the same [`crate::Queue`] wake workers at once; on
    /// Linux an idle pool also wakes within milliseconds of another process's
    /// commit, by watching the database's WAL file, so the poll is the fallback.)
    pub poll_interval: Duration,
    /// How often expired leases are recovered (also once at start). Default 30 s.
    pub recovery_interval: Duration,
    /// After a job's timeout, how long its handler may still take before the slot
    /// is released and the attempt recorded as timed out. Default 5 s.
    pub timeout_grace: Duration,
    /// The most jobs claimed in one transaction (never more than idle workers).
    /// Default: the number of workers.
    pub claim_batch: usize,
    /// This pool's name in `locked_by` and error history. Default `host:pid:random`.
    pub worker_id: String,
    /// Stop by itself once no job is due and none is running. Default false.
    pub drain: bool,
    /// Serve only these queues; `None` (the default): every queue. The pool's
    /// `workers` stay its local cap; each queue's limits hold across processes.
    pub queues: Option<Vec<String>>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            workers: 4,
            lease: Duration::from_secs(300),
            heartbeat_interval: None,
            poll_interval: Duration::from_secs(1),
            recovery_interval: Duration::from_secs(30),
            timeout_grace: Duration::from_secs(5),
            claim_batch: 0,
            worker_id: default_worker_id(),
            drain: false,
            queues: None,
        }
    }
}

impl WorkerConfig {
    /// The heartbeat interval in force: the set one, or a third of the lease.
    pub fn heartbeat_every(&self) -> Duration {
        self.heartbeat_interval.unwrap_or(self.lease / 3)
    }

    /// The claim batch in force: the set one, or the number of workers.
    pub fn batch(&self) -> usize {
        if self.claim_batch == 0 {
            self.workers.max(1)
        } else {
            self.claim_batch
        }
    }
}

/// `host:pid:xxxx`, unique enough to tell workers apart in `locked_by`.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &tag[..6])
}
