//! The coordinator thread: the pool's idle duty. While jobs run, the worker
//! threads write the rounds themselves (see `thread.rs`); the coordinator
//! wakes for what no worker sees (an enqueue, another process's commit, the
//! poll interval, shutdown), writes a round then, decides when a pool in drain
//! mode is done, and retries rounds after database errors.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::worker::round::{self, ERROR_BACKOFF};
use crate::worker::shared::Shared;

/// Loops until shutdown (or, in drain mode, until nothing is due or running).
pub(crate) fn coordinator_loop(shared: Arc<Shared>) {
    // The watch was just resumed: the next wait must follow a round that
    // claimed (see below).
    let mut resumed = false;
    loop {
        // Read before the check, so that an `end_drain` after the check
        // wakes the wait below.
        let seen = shared.signal.generation();
        if shared.state().ended_by.is_some() {
            // The supervisor met a lasting error (`end_drain`).
            break;
        }
        let external = shared.external.load(Ordering::SeqCst);
        let work = {
            let mut st = shared.state();
            // Something may be due (that is why we woke): claim-only rounds
            // are worth writing again.
            st.dry = false;
            drop(st);
            round::take_when_free(&shared)
        };
        let end = match round::write(&shared, work, None) {
            Ok(end) => end,
            Err(_) if shared.state().give_up => break,
            Err(e) if shared.config.drain && e.is_lasting() => {
                // A corrupt or read-only file, a refused permission: waiting
                // does not mend it, and a drain is a script's step that must
                // end. (Transient errors, busy or disk full, are retried.)
                end_drain(&shared, &e);
                break;
            }
            Err(_) => {
                shared.signal.wait(seen, ERROR_BACKOFF);
                continue;
            }
        };
        let (busy, room, unclaimed) = {
            let mut st = shared.state();
            // Idle workers beside running jobs, and nothing due when last
            // claimed: only an enqueue (here or in another process) brings
            // them work, as for an idle pool.
            let room = st.dry && st.held() < shared.capacity();
            let busy = !st.running.is_empty();
            // Set in the same look, so that a worker's round that ends after
            // it with room and nothing due wakes us (`round_record::settle`).
            st.coordinator_polls = busy && !room && shared.watch.is_some();
            // The round did not claim (one written alone to find a refused
            // outcome, see `refused.rs`), and no held job's round will.
            let unclaimed = !st.dry && !st.stopping && st.held() == 0;
            (busy, room, unclaimed)
        };
        if end.idle && !busy && should_exit(&shared) {
            break;
        }
        if (busy && !room) || shared.watch.is_none() {
            // Workers write the rounds of a busy pool; the poll is a fallback.
            // A worker's round that leaves room with nothing due wakes us
            // (`coordinator_polls`), to watch instead. Meanwhile the watch is
            // paused (see `CommitWatch::pause`).
            if let Some(w) = &shared.watch {
                w.pause();
            }
            resumed = false;
            shared.signal.wait(seen, shared.config.poll_interval);
            shared.state().coordinator_polls = false;
        } else if shared.watch.as_ref().is_some_and(|w| w.resume()) {
            // The watch was paused: a commit whose writes came meanwhile is
            // never reported, so claim once more before waiting. That round's
            // `BEGIN IMMEDIATE` waits for such a commit's writer (it holds the
            // write lock from before its first write until the commit is
            // visible), so the claim sees it; later commits' writes are watched.
            resumed = true;
            continue;
        } else if resumed && unclaimed {
            // That round claimed nothing: write another.
            continue;
        } else {
            resumed = false;
            idle_wait(&shared, seen, external);
        }
    }
    shared.stop_watching();
    shared.finished.store(true, Ordering::SeqCst);
    shared.signal.notify();
    shared.exited.notify();
}

/// Waits for an enqueue of this process, another process's commit (watched;
/// see `watcher.rs`) or the poll interval. `seen` and `external` were read
/// before the round's claim, so nothing since is missed.
fn idle_wait(shared: &Shared, seen: u64, external: u64) {
    let poll = shared.config.poll_interval;
    shared.set_idle(true);
    if shared.external.load(Ordering::SeqCst) == external {
        shared.signal.wait(seen, poll);
    }
    shared.set_idle(false);
}

/// Nothing is held, finished or waiting to be written, and the pool stops
/// (shutdown) or drains.
/// Ends a drain on a lasting database error `e` (met by a round, the pool's
/// heartbeat or a schedule's firing): the coordinator stops at its next look,
/// and [`crate::WorkerPool::drain_error`] tells why.
/// Once the coordinator has exited (drained, or already ended) it does
/// nothing: a drain that finished is not reported failed afterwards.
pub(crate) fn end_drain(shared: &Shared, e: &crate::Error) {
    if shared.finished.load(Ordering::SeqCst) {
        return;
    }
    {
        let mut st = shared.state();
        if st.ended_by.is_some() {
            return;
        }
        st.ended_by = Some(e.to_string());
    }
    log::error!(
        "worker pool {}: {e}; the drain stops",
        shared.config.worker_id
    );
    shared.signal.notify();
}

fn should_exit(shared: &Shared) -> bool {
    let st = shared.state();
    let quiet = st.running.is_empty() && st.finished.is_empty() && st.starts.is_empty();
    quiet && (st.stopping || shared.config.drain)
}
