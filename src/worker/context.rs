//! [`JobContext`]: what a handler knows of the attempt it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::job::{Job, JobId};
use crate::queue::Queue;

/// The attempt a handler runs: its job, its lease, and cancellation.
#[derive(Debug, Clone)]
pub struct JobContext {
    id: JobId,
    job_type: String,
    attempt: u32,
    max_attempts: u32,
    lease_token: i64,
    queue: Queue,
    lease: Duration,
    cancelled: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl JobContext {
    /// A context for a claimed `job` held with leases of `lease`, cancelled when
    /// `cancelled` is set or after `timeout` (if any).
    pub fn new(
        queue: Queue,
        job: &Job,
        lease: Duration,
        cancelled: Arc<AtomicBool>,
        timeout: Option<Duration>,
    ) -> JobContext {
        JobContext {
            id: job.id,
            job_type: job.job_type.clone(),
            attempt: job.attempts,
            max_attempts: job.max_attempts,
            lease_token: job.lease_token,
            queue,
            lease,
            cancelled,
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The job's type.
    pub fn job_type(&self) -> &str {
        &self.job_type
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The job's total runs allowed.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The attempt's fencing token: grows with every claim of the job and is never
    /// reused. Pass it to external writes so a stale attempt's writes can be refused.
    pub fn fencing_token(&self) -> i64 {
        self.lease_token
    }

    /// True once the job was cancelled or ran past its type's timeout: the handler
    /// should stop and return `Err(JobError::Cancelled)` (or whatever it has).
    pub fn is_cancelled(&self) -> bool {
        if self.cancelled.load(Ordering::Relaxed) {
            return true;
        }
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The delay the backoff schedule gives after this attempt, should it fail.
    pub fn scheduled_backoff(&self) -> Duration {
        self.queue.backoff(&self.job_type).delay_after(self.attempt)
    }

    /// Extends the lease by the pool's lease length now. The pool heartbeats on its
    /// own; call this only to be safe during one long step. Also notices a cancel.
    ///
    /// # Errors
    /// [`crate::Error::LeaseLost`] when the lease is gone: stop working.
    pub fn heartbeat(&self) -> Result<()> {
        let cancel = self
            .queue
            .heartbeat(self.id, self.lease_token, self.lease)?;
        if cancel {
            self.cancelled.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Stores progress on the job: `fraction` from 0.0 to 1.0 and a short message.
    ///
    /// # Errors
    /// [`crate::Error::LeaseLost`] when the lease is gone; database errors.
    pub fn progress(&self, fraction: f64, message: &str) -> Result<()> {
        self.queue
            .progress(self.id, self.lease_token, fraction, message)
    }
}
