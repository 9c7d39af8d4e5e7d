//! The queue's counts: by status, by type, and why pending jobs wait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::job::JobStatus;

/// Counts of jobs by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusCounts {
    /// Jobs waiting to run.
    pub pending: u64,
    /// Jobs running now.
    pub in_progress: u64,
    /// Jobs that succeeded.
    pub completed: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
}

impl StatusCounts {
    pub(crate) fn add(&mut self, status: JobStatus, n: u64) {
        let slot = match status {
            JobStatus::Pending => &mut self.pending,
            JobStatus::InProgress => &mut self.in_progress,
            JobStatus::Completed => &mut self.completed,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// Pending jobs split by why they wait.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingCounts {
    /// Due now (`next_retry <= now`).
    pub ready: u64,
    /// Not yet due, never attempted (enqueued with a delay or `run_at`).
    pub scheduled: u64,
    /// Not yet due, waiting out a backoff after a failed attempt.
    pub retrying: u64,
}

/// A snapshot of the queue, read in one statement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stats {
    /// Every job.
    pub total: u64,
    /// Jobs by status.
    pub by_status: StatusCounts,
    /// Pending jobs split into ready, scheduled and retrying.
    pub pending: PendingCounts,
    /// Of the `in_progress` jobs, those reserved by a pool's prefetch:
    /// claimed, not started (`started_at` null), no handler runs them yet.
    /// They stay counted as `in_progress` in `by_status`, `by_type` and
    /// `by_queue`.
    #[serde(default)]
    #[schema(required = true)]
    pub reserved: u64,
    /// How long the oldest ready job has been due, in ms; null when none is ready.
    #[schema(required = true)]
    pub oldest_ready_age_ms: Option<u64>,
    /// Jobs by type, then by status.
    pub by_type: BTreeMap<String, StatusCounts>,
    /// Jobs by queue, then by status.
    #[serde(default)]
    #[schema(required = true)]
    pub by_queue: BTreeMap<String, StatusCounts>,
    /// Due jobs that no live worker pool serves (no pool has a handler for the
    /// type, or none serves the queue), by type and queue.
    #[serde(default)]
    #[schema(required = true)]
    pub unserved: Vec<Waiting>,
    /// Due jobs in paused queues, by type and queue: they wait for the
    /// queue's resume (and are not in `unserved`).
    #[serde(default)]
    #[schema(required = true)]
    pub paused: Vec<Waiting>,
    /// When the snapshot was taken.
    pub at: Timestamp,
}

/// Pending jobs of one type in one queue: how many are due and how many wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Waiting {
    /// The job type.
    pub job_type: String,
    /// The queue.
    pub queue: String,
    /// Due now.
    pub ready: u64,
    /// Not due yet (a delay, `run_at`, or a backoff after a failed attempt).
    pub later: u64,
    /// When the earliest of the later ones is due (UTC); null when none waits.
    #[schema(required = true)]
    pub next_due: Option<Timestamp>,
    /// The queue is paused: none of these is claimed until it is resumed.
    #[serde(default)]
    #[schema(required = true)]
    pub paused: bool,
}
