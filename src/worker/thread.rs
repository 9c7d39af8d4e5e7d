//! A worker thread: takes tasks, runs them, reports outcomes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::worker::execute::{execute, Outcome};
use crate::worker::shared::{Shared, Task};
use crate::worker::StopReason;

/// Runs tasks until the task queue closes, or until the pool gave up on this
/// thread's job (then a replacement thread has taken its place).
pub(crate) fn worker_loop(shared: Arc<Shared>) {
    while let Some(mut task) = next_task(&shared) {
        let lease = shared.config.lease;
        let outcome = execute(
            &shared.queue,
            &shared.registry,
            &mut task.job,
            lease,
            task.stop.clone(),
        );
        if !report(&shared, &task, outcome) {
            return;
        }
    }
}

fn next_task(shared: &Shared) -> Option<Task> {
    let mut tasks = shared.tasks();
    loop {
        if let Some(t) = tasks.items.pop_front() {
            if !tasks.items.is_empty() {
                shared.tasks_cv.notify_one();
            }
            return Some(t);
        }
        if tasks.closed {
            return None;
        }
        tasks = shared
            .tasks_cv
            .wait(tasks)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Hands the outcome to the coordinator. Returns false when the pool had given
/// the attempt up (timeout or shutdown): the pool wrote its end itself, so the
/// late outcome is dropped unwritten, and this thread retires.
fn report(shared: &Shared, task: &Task, outcome: Outcome) -> bool {
    let id = task.job.id;
    let mut state = shared.state();
    if task.abandoned.load(Ordering::SeqCst) {
        drop(state);
        log::debug!(
            "job {id}: late outcome dropped (attempt given up: {:?})",
            task.stop.reason()
        );
        return false;
    }
    let outcome = interrupted_by_shutdown(outcome, task.stop.reason(), state.stopping);
    if let Some(r) = state.running.get_mut(&id) {
        r.done = true;
        r.ended = Some(std::time::Instant::now());
    }
    state.finished.push((id, task.job.lease_token, outcome));
    drop(state);
    shared.signal.notify();
    true
}

/// A handler that stops with [`crate::JobError::Cancelled`] while the pool shuts
/// down, without a cancel request, was interrupted by the shutdown: its job is
/// handed back (pending, attempt not counted), never ended `cancelled`.
pub(crate) fn interrupted_by_shutdown(
    outcome: Outcome,
    reason: Option<StopReason>,
    stopping: bool,
) -> Outcome {
    match outcome {
        Outcome::Failure(f)
            if f.cancelled
                && reason != Some(StopReason::Cancelled)
                && (stopping || reason == Some(StopReason::Shutdown)) =>
        {
            Outcome::Release
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use crate::retry::ErrorClass;
    use crate::JobError;

    fn kind(o: &Outcome) -> &'static str {
        match o {
            Outcome::Success(_) => "success",
            Outcome::Failure(f) if f.cancelled => "cancelled",
            Outcome::Failure(_) => "failure",
            Outcome::Release => "release",
            Outcome::Snooze(_) => "snooze",
        }
    }

    #[test]
    fn only_a_cancel_request_ends_a_stopping_attempt_cancelled() {
        let cancelled = || Outcome::Failure(JobError::Cancelled.to_failure());
        let failed = || Outcome::Failure(Failure::new("boom", ErrorClass::Retryable));
        let table = [
            (cancelled(), None, false, "cancelled"),
            (cancelled(), None, true, "release"),
            (cancelled(), Some(StopReason::Shutdown), false, "release"),
            (cancelled(), Some(StopReason::Shutdown), true, "release"),
            (cancelled(), Some(StopReason::Cancelled), true, "cancelled"),
            (cancelled(), Some(StopReason::Cancelled), false, "cancelled"),
            (cancelled(), Some(StopReason::TimedOut), false, "cancelled"),
            (failed(), None, true, "failure"),
            (
                Outcome::Success(serde_json::json!(1)),
                None,
                true,
                "success",
            ),
        ];
        for (outcome, reason, stopping, want) in table {
            let got = interrupted_by_shutdown(outcome, reason, stopping);
            assert_eq!(kind(&got), want, "{reason:?} stopping={stopping}");
        }
    }
}
