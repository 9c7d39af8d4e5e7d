//! [`JobContext`]: what a handler knows of the attempt it runs.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::job::{Job, JobId};
use crate::queue::Queue;

/// Why a running attempt is asked to stop ([`JobContext::stop_reason`]).
///
/// Only [`StopReason::Cancelled`] (a cancel request) can end a job `cancelled`;
/// an attempt stopped by [`StopReason::Shutdown`] goes back to `pending` with its
/// attempt not counted, whatever the handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// A cancel was requested for the job (`jobq cancel`, `Queue::cancel`): the job
    /// ends `cancelled` whatever the handler returns.
    Cancelled,
    /// The pool is shutting down and the grace ran out: the job goes back to
    /// `pending`, its attempt not counted; what the handler returns is not written.
    Shutdown,
    /// The job ran past its type's timeout: the attempt fails, retryable,
    /// "timed out after N s".
    TimedOut,
    /// The lease is gone (it expired and the job was recovered): nothing this
    /// attempt returns is written.
    LeaseLost,
}

impl StopReason {
    fn code(self) -> u8 {
        match self {
            StopReason::Cancelled => 1,
            StopReason::Shutdown => 2,
            StopReason::TimedOut => 3,
            StopReason::LeaseLost => 4,
        }
    }

    fn from_code(code: u8) -> Option<StopReason> {
        match code {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::Shutdown),
            3 => Some(StopReason::TimedOut),
            4 => Some(StopReason::LeaseLost),
            _ => None,
        }
    }
}

/// A running attempt's stop request, shared by the pool and the handler's
/// [`JobContext`]. The first reason set is kept.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicU8);

impl StopFlag {
    /// No stop requested yet.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// A flag already set to `reason`.
    pub fn with(reason: StopReason) -> StopFlag {
        StopFlag(AtomicU8::new(reason.code()))
    }

    /// Asks the attempt to stop for `reason`, unless a reason is already set.
    pub fn request(&self, reason: StopReason) {
        let _ = self
            .0
            .compare_exchange(0, reason.code(), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The reason set, if any.
    pub fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.0.load(Ordering::SeqCst))
    }
}

/// The attempt a handler runs: its job, its lease, and cancellation.
#[derive(Debug, Clone)]
pub struct JobContext {
    id: JobId,
    job_type: String,
    attempt: u32,
    max_attempts: u32,
    lease_token: i64,
    backoff: crate::Backoff,
    queue: Queue,
    lease: Duration,
    stop: Arc<StopFlag>,
    deadline: Option<Instant>,
}

impl JobContext {
    /// A context for a claimed `job` held with leases of `lease`, asked to stop
    /// when `stop` is set or after `timeout` (if any).
    pub fn new(
        queue: Queue,
        job: &Job,
        lease: Duration,
        stop: Arc<StopFlag>,
        timeout: Option<Duration>,
    ) -> JobContext {
        JobContext {
            id: job.id,
            job_type: job.job_type.clone(),
            attempt: job.attempts,
            max_attempts: job.max_attempts,
            lease_token: job.lease_token,
            backoff: job
                .backoff
                .clone()
                .unwrap_or_else(|| queue.backoff(&job.job_type)),
            queue,
            lease,
            stop,
            deadline: timeout.map(crate::worker::instant_after),
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

    /// True once the attempt should stop, for any [`StopReason`]: the handler
    /// should stop and return `Err(JobError::Cancelled)` (or whatever it has).
    /// What happens to the job then depends on the reason, not on what the
    /// handler returns (see [`JobContext::stop_reason`]).
    pub fn is_cancelled(&self) -> bool {
        self.stop_reason().is_some()
    }

    /// Why the attempt should stop, or `None` while it may go on. Past the type's
    /// timeout this is [`StopReason::TimedOut`].
    pub fn stop_reason(&self) -> Option<StopReason> {
        if let Some(r) = self.stop.reason() {
            return Some(r);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(StopReason::TimedOut);
        }
        None
    }

    /// The delay the backoff schedule gives after this attempt, should it fail.
    pub fn scheduled_backoff(&self) -> Duration {
        self.backoff.delay_after(self.attempt)
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
            self.stop.request(StopReason::Cancelled);
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
