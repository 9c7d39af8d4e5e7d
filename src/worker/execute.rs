//! Running one attempt: the handler inside `catch_unwind`, its outcome turned
//! into what the store records.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::failure::Failure;
use crate::job::{Job, JobStatus};
use crate::queue::Queue;
use crate::retry::ErrorClass;
use crate::worker::{JobContext, JobError, Registry, StopFlag, StopReason};

/// How an attempt ended, before it is written.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The handler returned a result.
    Success(Value),
    /// The attempt failed.
    Failure(Failure),
    /// The attempt was interrupted by shutdown: hand the job back (pending, its
    /// attempt not counted; `cancelled` only if a cancel was requested).
    Release,
    /// The handler asked to run again after this delay, without using an attempt.
    Snooze(Duration),
}

/// The text recorded when a job runs past its type's timeout.
pub(crate) fn timed_out(timeout: Duration) -> Failure {
    let secs = timeout.as_secs_f64();
    Failure::new(&format!("timed out after {secs} s"), ErrorClass::Retryable)
}

/// Runs `job`'s handler once. `stop` is the attempt's stop flag (set on a
/// cancel request, a lost lease, a timeout or shutdown).
pub(crate) fn execute(
    queue: &Queue,
    registry: &Registry,
    job: &mut Job,
    lease: Duration,
    stop: Arc<StopFlag>,
) -> Outcome {
    let Some(handler) = registry.get(&job.job_type) else {
        let msg = format!("no handler for job type {}", job.job_type);
        return Outcome::Failure(Failure::new(&msg, ErrorClass::Permanent));
    };
    let timeout = queue.catalog().timeout(&job.job_type);
    let ctx = JobContext::new(queue.clone(), job, lease, stop, timeout);
    let payload = std::mem::take(&mut job.payload);
    log::debug!(
        "job {} ({}) attempt {} started",
        job.id,
        job.job_type,
        job.attempts
    );
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| handler.run(&ctx, payload)));
    let elapsed = started.elapsed();
    let timed_out_now = ctx.stop_reason() == Some(StopReason::TimedOut);
    let outcome = match result {
        Ok(Ok(value)) => Outcome::Success(value),
        Ok(Err(_)) if timed_out_now => Outcome::Failure(timed_out(timeout.unwrap_or_default())),
        Ok(Err(JobError::Snooze(delay))) => Outcome::Snooze(delay),
        Ok(Err(e)) => Outcome::Failure(e.to_failure()),
        Err(panic) => Outcome::Failure(Failure::new(
            &format!("panic: {}", panic_message(panic.as_ref())),
            ErrorClass::Retryable,
        )),
    };
    log_outcome(job, &outcome, elapsed, ctx.stop_reason());
    match outcome {
        Outcome::Failure(f) => Outcome::Failure(f.with_duration(elapsed)),
        ok => ok,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_string()
    }
}

/// Logs how an attempt ended; a stopped one says why it was stopped (a
/// shutdown's hand-back is not a cancel).
fn log_outcome(job: &Job, outcome: &Outcome, elapsed: Duration, stopped: Option<StopReason>) {
    let ms = elapsed.as_millis();
    match outcome {
        Outcome::Success(_) => log::debug!(
            "job {} ({}) attempt {} finished in {ms} ms",
            job.id,
            job.job_type,
            job.attempts
        ),
        Outcome::Failure(f) if f.cancelled => log::info!(
            "job {} ({}) attempt {} stopped after {ms} ms: {}",
            job.id,
            job.job_type,
            job.attempts,
            match stopped {
                Some(StopReason::Shutdown) => "the pool shuts down (it is handed back)",
                Some(StopReason::LeaseLost) => "its lease was lost",
                Some(StopReason::TimedOut) => "timed out",
                Some(StopReason::Cancelled) | None => "cancelled",
            }
        ),
        Outcome::Release => {}
        Outcome::Snooze(d) => log::debug!(
            "job {} ({}) attempt {} snoozed for {} ms",
            job.id,
            job.job_type,
            job.attempts,
            d.as_millis()
        ),
        Outcome::Failure(f) => log::warn!(
            "job {} ({}) attempt {} failed after {ms} ms ({:?}): {}",
            job.id,
            job.job_type,
            job.attempts,
            f.class,
            f.message
        ),
    }
}

/// Which counter a settled attempt moves: the status it left the job in.
/// The metrics outcome of an attempt that left the job in `status`; `snoozed`
/// when the handler asked for its own delay.
pub(crate) fn outcome_of(status: JobStatus, snoozed: bool) -> crate::metrics::Outcome {
    use crate::metrics::Outcome;
    match status {
        JobStatus::Completed => Outcome::Completed,
        JobStatus::Cancelled => Outcome::Cancelled,
        JobStatus::Pending if snoozed => Outcome::Snoozed,
        JobStatus::Pending | JobStatus::InProgress => Outcome::Retried,
        JobStatus::Failed => Outcome::Failed,
    }
}

pub(crate) fn is_retry(status: JobStatus) -> bool {
    status == JobStatus::Pending
}
