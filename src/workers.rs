//! Live worker processes: each pool records which job types and queues it
//! serves and beats a heartbeat, so any process can tell which due jobs no live
//! pool serves, and an operator can hand a dead pool's jobs back at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How often a pool beats its heartbeat.
pub const WORKER_BEAT: Duration = Duration::from_secs(5);
/// A pool whose heartbeat is older than this is taken for dead (3 beats).
pub const WORKER_STALE: Duration = Duration::from_secs(15);

/// A worker pool as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The pool's worker id (as in a job's `locked_by`), e.g. `host:pid:abc123`.
    pub id: String,
    /// The job types it serves.
    pub types: Vec<String>,
    /// The queues it serves; null: every queue.
    pub queues: Option<Vec<String>>,
    /// When it started (UTC).
    pub started_at: Timestamp,
    /// Its latest heartbeat (UTC).
    pub heartbeat_at: Timestamp,
    /// True while its heartbeat is fresh (younger than [`WORKER_STALE`]).
    pub alive: bool,
    /// Jobs it runs now: `in_progress`, locked by it, and started
    /// (`started_at` set; a prefetching pool writes a start within about
    /// 50 ms of a worker taking the job, and counts it in `reserved` until
    /// then). Its reserved jobs are not counted here (they once were,
    /// wrongly: a reserved job is not running), but in `reserved`.
    pub running: u64,
    /// Jobs it holds reserved by its prefetch (see
    /// [`crate::WorkerConfig::prefetch`]): `in_progress`, locked by it, not
    /// started (`started_at` null). No handler runs them yet.
    #[serde(default)]
    pub reserved: u64,
}

impl WorkerInfo {
    /// True when this pool serves jobs of `job_type` in `queue`.
    pub fn serves(&self, job_type: &str, queue: &str) -> bool {
        self.types.iter().any(|t| t == job_type)
            && self
                .queues
                .as_ref()
                .is_none_or(|qs| qs.iter().any(|q| q == queue))
    }
}
