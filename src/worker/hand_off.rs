//! A prefetching pool's writer hands the recording of its round to the
//! pool's other threads. Recording a round (outcomes counted and forgotten,
//! claimed jobs adopted, sorted and handed out, threads woken) takes a tenth
//! of a 100-job round's time, while the database waits: the thread that
//! wrote the round would rather write the next one, and the other workers,
//! whose buffer has run dry, are idle. So the written round is queued here
//! and the round ends at once; the next thread to take the pool's state
//! ([`Shared::state`]: a woken worker, usually) records it first. Every
//! reader of the state therefore sees it recorded; only the writer's own
//! look at whether its next round is due skips that
//! ([`Shared::state_unrecorded`]), and that round sizes its claim through
//! [`Shared::state`] when the claim runs (see `round::write`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::store::Settled;
use crate::worker::round::{RoundEnd, RoundWork};
use crate::worker::round_record::{record_round, wake_all, Written};
use crate::worker::shared::{PoolState, Shared};

/// A written round not yet recorded in the pool's state (a prefetching
/// pool's: its claimed jobs are reserved).
pub(crate) struct Unrecorded {
    work: RoundWork,
    settled: Settled,
}

/// The rounds written and not yet recorded, oldest first.
pub(crate) type Queued = Mutex<VecDeque<Unrecorded>>;

/// How many claimed jobs the queued rounds hold: the writer's look at
/// whether its next round is due counts them in the buffer.
pub(crate) fn queued_claims(shared: &Shared) -> usize {
    queued(shared).iter().map(|u| u.settled.claimed.len()).sum()
}

/// Queues a written round for the next thread that takes the state, ends
/// the round, and wakes a parked worker to record it. Only a round that
/// claimed jobs is handed off (see `round::write`), so it is never idle.
pub(crate) fn hand_off(shared: &Shared, work: RoundWork, settled: Settled) -> RoundEnd {
    // Queued before the round ends: whoever sees it ended (under the state's
    // lock, taken after this) also sees it queued.
    let mut q = queued(shared);
    q.push_back(Unrecorded { work, settled });
    shared.has_unrecorded.store(true, Ordering::Release);
    drop(q);
    let mut st = shared.state_unrecorded();
    st.in_round = false;
    if st.round_waiters > 0 {
        shared.round_cv.notify_all();
    }
    // Left in the parked list: the recording hands it a job like any
    // other parked worker.
    let recorder = st.parked.front().map(|(_, t)| t.clone());
    drop(st);
    if let Some(thread) = recorder {
        shared.wake(&thread);
    }
    RoundEnd {
        mine: None,
        idle: false,
        handed_off: true,
    }
}

fn queued(shared: &Shared) -> MutexGuard<'_, VecDeque<Unrecorded>> {
    shared.unrecorded.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records the queued rounds, oldest first, into `st` (held by the caller).
pub(crate) fn record_queued(shared: &Shared, st: &mut PoolState) {
    let rounds: Vec<Unrecorded> = {
        let mut q = queued(shared);
        shared.has_unrecorded.store(false, Ordering::Release);
        q.drain(..).collect()
    };
    for u in rounds {
        let mut wake = Vec::new();
        let written = Written {
            work: &u.work,
            settled: u.settled,
            by_worker: true,
            reserve: true,
        };
        let (_, coordinator) = record_round(shared, st, written, None, &mut wake);
        // Under the state's lock: this thread is not the one writing rounds.
        wake_all(shared, wake);
        if coordinator {
            shared.signal.notify();
        }
    }
}
