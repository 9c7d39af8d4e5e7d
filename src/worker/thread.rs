//! A worker thread: runs jobs, and writes the pool's rounds itself. When its
//! job was the last of the claimed ones to finish (or the group window has
//! passed), the thread writes the round that settles every finished job and
//! claims the next jobs, keeps the first and wakes parked threads for the
//! others (without prefetch the first free worker takes each, the writer
//! too once its own job has ended; with it each woken thread is handed
//! one); no coordinator sits between a job's end and the next claim.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crate::worker::execute::{execute, Outcome};
use crate::worker::round::{self, GROUP_WINDOW};
use crate::worker::shared::{PoolState, Shared, Task};
use crate::worker::StopReason;

/// The shortest timed wait of a parked worker.
const MIN_PARK: Duration = Duration::from_micros(50);

/// How long a worker with nothing to do spins (yielding its core) before it
/// parks. A parked thread whose core has gone idle can take tens of µs to
/// wake (much more on a virtual machine, where the idle vCPU is halted), more
/// than a whole round under `synchronous = NORMAL`; a spinning one takes the
/// next round's job at once. Longer than a round under NORMAL; only while
/// the pool is busy (its last claim came back full, or a round is being
/// written), so a pool with little to do does not spin; and only while rounds
/// take less than this (`Shared::round_micros`). A longer round (a
/// prefetching pool's, of about 50 jobs: 0.8 ms here) outlasts the spin, so
/// the spinning thread would park anyway, and until then it takes CPU from
/// the thread writing the round: measured on a 4-worker prefetch-100 drain,
/// parking at once ran 3-5 % faster (BENCHMARKS.md).
const SPIN: Duration = Duration::from_micros(500);

/// Runs jobs until the pool closes, or until the pool gave up on this
/// thread's job (then a replacement thread has taken its place).
pub(crate) fn worker_loop(shared: Arc<Shared>) {
    let me = shared.next_index.fetch_add(1, Ordering::Relaxed);
    let mut last: Option<(Task, Outcome)> = None;
    while let Some(mut task) = next(&shared, me, last.take()) {
        let outcome = execute(
            &shared.queue,
            &shared.registry,
            &mut task.job,
            shared.config.lease,
            task.stop.clone(),
        );
        last = Some((task, outcome));
    }
}

/// Reports the last outcome, then finds this thread's next job: one handed
/// to it, or one it claims in a round it writes, or one from the buffer;
/// parks while there is none. `None`: the thread exits.
fn next(shared: &Shared, me: usize, last: Option<(Task, Outcome)>) -> Option<Task> {
    let mut st = shared.state();
    if let Some((task, outcome)) = last {
        if !report(&mut st, &task, outcome) {
            return None;
        }
    }
    loop {
        if let Some(t) = st.inbox.remove(&me).and_then(|t| take(shared, &mut st, t)) {
            return Some(t);
        }
        if round::due(shared, &st) {
            let work = round::take(shared, &mut st);
            drop(st);
            if let Ok(end) = round::write(shared, work, Some(me)) {
                if let Some(t) = end.mine {
                    return Some(t);
                }
                if end.handed_off {
                    // Outcomes waiting and a round due: write it at once,
                    // while another thread records the last one.
                    let now = shared.state_unrecorded();
                    let queued = crate::worker::hand_off::queued_claims(shared);
                    if !now.finished.is_empty() && round::due_beside(shared, &now, queued) {
                        st = now;
                        continue;
                    }
                }
            }
            st = shared.state();
            continue;
        }
        if let Some(t) = st.buffer.pop_front() {
            if let Some(t) = take(shared, &mut st, t) {
                return Some(t);
            }
            continue;
        }
        if st.closed {
            return None;
        }
        st = park(shared, st, me);
    }
}

/// Starts `task` on this thread, unless the pool gave it up meanwhile.
fn take(shared: &Shared, st: &mut PoolState, mut task: Task) -> Option<Task> {
    if task.abandoned.load(Ordering::SeqCst) {
        return None;
    }
    shared.begin(st, &mut task);
    Some(task)
}

/// Parks until handed a job, the pool closes, or (with finished attempts
/// waiting) the group window or the error backoff ends.
fn park<'a>(
    shared: &'a Shared,
    st: MutexGuard<'a, PoolState>,
    me: usize,
) -> MutexGuard<'a, PoolState> {
    let mut st = st;
    let now = Instant::now();
    // While a round is being written, finished attempts cannot join it, and
    // its end wakes a parked thread for those left (`round_record::end`):
    // waking for the group window meanwhile would only spin again.
    let window = st.first_finished.filter(|_| !st.in_round);
    let wake = window.map(|t| {
        let at = (t + GROUP_WINDOW).max(st.retry_at.unwrap_or(now));
        at.saturating_duration_since(now).max(MIN_PARK)
    });
    st.parked.push_back((me, std::thread::current()));
    let seen = shared.wakes.load(Ordering::Acquire);
    let busy = (st.in_round || !st.dry) && !st.closed;
    drop(st);
    let spun = Instant::now();
    let limit = spin_limit(busy, shared.round_micros.load(Ordering::Relaxed));
    let woken = spin(shared, seen, wake.map_or(limit, |d| d.min(limit)));
    let left = wake.map(|d| d.saturating_sub(spun.elapsed()));
    match left {
        _ if woken => {}
        Some(d) if d.is_zero() => {}
        Some(d) => std::thread::park_timeout(d),
        None => std::thread::park(),
    }
    let mut st = shared.state();
    if let Some(at) = st.parked.iter().position(|(i, _)| *i == me) {
        st.parked.remove(at);
    }
    st
}

/// How long a thread about to park spins: [`SPIN`] while the pool is `busy`
/// and its rounds take less than that (`round_micros`, µs); else not at all.
fn spin_limit(busy: bool, round_micros: u64) -> Duration {
    if busy && u128::from(round_micros) < SPIN.as_micros() {
        SPIN
    } else {
        Duration::ZERO
    }
}

/// Spins (yielding) for up to `limit` until a parked thread is woken (this
/// one or another: either way there may be work). Returns whether one was.
fn spin(shared: &Shared, seen: u64, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if shared.wakes.load(Ordering::Acquire) != seen {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

/// Records the outcome for the next round. Returns false when the pool had
/// given the attempt up (timeout or shutdown): the pool wrote its end itself,
/// so the late outcome is dropped unwritten, and this thread retires.
fn report(st: &mut PoolState, task: &Task, outcome: Outcome) -> bool {
    let id = task.job.id;
    if task.abandoned.load(Ordering::SeqCst) {
        log::debug!(
            "job {id}: late outcome dropped (attempt given up: {:?})",
            task.stop.reason()
        );
        return false;
    }
    let outcome = interrupted_by_shutdown(outcome, task.stop.reason(), st.stopping);
    let token = task.job.lease_token;
    match st.running.get_mut(&id) {
        Some(r) if r.lease_token == token => {
            r.done = true;
            r.ended = Some(Instant::now());
        }
        _ => {
            // The pool no longer holds this attempt (a later claim of the job
            // took its place): fencing would refuse the outcome anyway.
            log::warn!("job {id}: outcome of attempt token {token} dropped: its lease was lost");
            return true;
        }
    }
    st.finished.push((id, token, outcome));
    if st.first_finished.is_none() {
        st.first_finished = Some(Instant::now());
    }
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
    fn a_thread_spins_only_for_a_busy_pool_whose_rounds_are_shorter_than_the_spin() {
        let spin = SPIN.as_micros() as u64;
        assert_eq!(spin_limit(true, 0), SPIN);
        assert_eq!(spin_limit(true, 120), SPIN, "a 4-job round under normal");
        assert_eq!(spin_limit(true, spin - 1), SPIN);
        assert_eq!(spin_limit(true, spin), Duration::ZERO);
        assert_eq!(spin_limit(true, 830), Duration::ZERO, "a 50-job round");
        assert_eq!(spin_limit(false, 120), Duration::ZERO, "an idle pool");
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
