//! A worker thread: takes tasks, runs them, reports outcomes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::Error;
use crate::worker::execute::{execute, Outcome};
use crate::worker::shared::{Shared, Task};

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
            task.cancelled.clone(),
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

/// Hands the outcome to the coordinator. Returns false when the job had been
/// abandoned: the late outcome is offered to the store, which refuses it by
/// fencing, and this thread retires.
fn report(shared: &Shared, task: &Task, outcome: Outcome) -> bool {
    let (id, token) = (task.job.id, task.job.lease_token);
    {
        let mut state = shared.state();
        if !task.abandoned.load(Ordering::Relaxed) {
            if let Some(r) = state.running.get_mut(&id) {
                r.done = true;
            }
            state.finished.push((id, token, outcome));
            drop(state);
            shared.signal.notify();
            return true;
        }
    }
    let late = match &outcome {
        Outcome::Success(v) => shared.queue.complete(id, token, v).map(|_| ()),
        Outcome::Failure(f) => shared.queue.fail(id, token, f).map(|_| ()),
    };
    match late {
        Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. })) => {
            // Expected: the pool gave this attempt up (shutdown or timeout).
            log::info!("late result of job {id} refused as expected: {e}")
        }
        Err(e) => log::warn!("late result of job {id} not written: {e}"),
        Ok(()) => log::warn!("late result of job {id} was written: its lease was still held"),
    }
    false
}
