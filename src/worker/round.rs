//! A round: one transaction that writes the finished attempts (and the starts
//! of prefetched jobs) and claims jobs for the room the pool has. Any thread
//! of the pool may write a round, one at a time: usually the worker thread
//! whose job finished last, so that no thread hand-off sits between a job's end
//! and the next claim (see `thread.rs`). What a written round leaves in the
//! pool's state is in `round_record.rs`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::failure::Failure;
use crate::job::JobId;
use crate::queue::{ClaimSpec, Finished};
use crate::store::LiveSize;
use crate::worker::execute::Outcome;
use crate::worker::shared::{PoolState, Shared, Task};
use crate::worker::{refused, round_record};

/// How long to wait before trying the database again after a transient error
/// (busy, disk full).
pub(crate) const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Group commit: how long a finished job may wait for the other running jobs to
/// finish so that one transaction writes them all (200 µs: about one NORMAL
/// commit here, and small beside an fsync under FULL).
pub(crate) const GROUP_WINDOW: Duration = Duration::from_micros(200);

/// A round taken from the pool's state: what to write and how much to claim.
#[derive(Default)]
pub(crate) struct RoundWork {
    pub(super) done: Vec<(JobId, i64, Value)>,
    pub(super) failed: Vec<(JobId, i64, Failure)>,
    pub(super) released: Vec<(JobId, i64)>,
    pub(super) snoozed: Vec<(JobId, i64, Duration)>,
    pub(super) starts: Vec<(JobId, i64, Timestamp)>,
    pub(super) want: usize,
    /// The pool's idle workers (no job of their own, buffered jobs aside):
    /// a prefetching claim reserves no more jobs of limited queues (see
    /// `QueueSettings::claimable`).
    pub(super) start_now: usize,
    /// The wake-up generation when the round was taken (see `PoolState::dry`).
    pub(super) generation: u64,
    /// One outcome alone, written to find the one a refused round held (see
    /// `refused.rs`).
    pub(super) isolated: bool,
}

impl RoundWork {
    pub(super) fn is_empty(&self) -> bool {
        self.done.len() + self.failed.len() + self.released.len() + self.snoozed.len() == 0
            && self.starts.is_empty()
    }

    /// How many outcomes and starts the round writes.
    pub(super) fn entries(&self) -> usize {
        self.done.len()
            + self.failed.len()
            + self.released.len()
            + self.snoozed.len()
            + self.starts.len()
    }
}

/// What a written round did for the thread that wrote it.
pub(crate) struct RoundEnd {
    /// The job this thread runs next (when it is a worker and one was claimed).
    pub mine: Option<Task>,
    /// It settled nothing and claimed nothing.
    pub idle: bool,
    /// Its recording was handed to the pool's other threads (see
    /// `hand_off.rs`): the writer may write the next round at once.
    pub handed_off: bool,
}

/// Whether a worker thread should write a round now: no round is being
/// written, no error backoff runs, and either finished attempts are due
/// (every claimed job has finished, the group window has passed, the pool
/// stops, or a prefetching pool's buffer is down to half) or the pool
/// has room and the last claim did not come back short.
pub(crate) fn due(shared: &Shared, st: &PoolState) -> bool {
    due_beside(shared, st, 0)
}

/// [`due`], with `queued` claimed jobs of handed-off rounds not yet in the
/// state (see `hand_off.rs`) counted in the buffer.
pub(crate) fn due_beside(shared: &Shared, st: &PoolState, queued: usize) -> bool {
    if st.in_round || st.retry_at.is_some_and(|t| Instant::now() < t) {
        return false;
    }
    if !st.finished.is_empty() || !st.starts.is_empty() {
        if st.isolating > 0 {
            return true;
        }
        // With prefetch, workers keep running buffered jobs while results
        // wait, so a round waits until the buffer is half spent (or the
        // group window passes) instead of every other round carrying a
        // handful of jobs at a round's full cost. Its claim is sized when
        // it runs (see `write`), so it refills the room made meanwhile.
        let prefetch = shared.config.prefetch;
        let refill = prefetch > 0 && (st.buffer.len() + queued) * 2 <= prefetch;
        let window = st
            .first_finished
            .is_some_and(|t| t.elapsed() >= GROUP_WINDOW);
        return refill || window || st.stopping || st.held() + queued == 0;
    }
    !st.dry && want(shared, st) > 0
}

/// How many jobs a round may claim now: the pool's room, and, while every
/// worker is busy, none (a prefetching pool then reserves nothing: a job
/// reserved for busy workers only waits, while another pool might run it;
/// see [`crate::WorkerConfig::prefetch_ttl`]).
fn want(shared: &Shared, st: &PoolState) -> usize {
    if st.stopping || idle_workers(shared, st) == 0 {
        return 0;
    }
    let room = shared.capacity().saturating_sub(st.held());
    room.min(shared.config.batch())
}

/// The pool's workers with no job of their own (buffered jobs aside): the
/// thread writing a round counts, its job having finished.
fn idle_workers(shared: &Shared, st: &PoolState) -> usize {
    shared
        .config
        .workers
        .saturating_sub(st.held().saturating_sub(st.buffer.len()))
}

/// Takes a round's work from the state and marks a round as being written.
pub(crate) fn take(shared: &Shared, st: &mut PoolState) -> RoundWork {
    st.in_round = true;
    if st.isolating > 0 {
        if let Some(one) = refused::take_one(st, shared.signal.generation()) {
            return one;
        }
        st.isolating = 0;
    }
    let mut w = RoundWork {
        want: want(shared, st),
        start_now: idle_workers(shared, st),
        generation: shared.signal.generation(),
        starts: std::mem::take(&mut st.starts),
        ..RoundWork::default()
    };
    st.first_finished = None;
    for (id, token, outcome) in std::mem::take(&mut st.finished) {
        match outcome {
            Outcome::Success(v) => w.done.push((id, token, v)),
            Outcome::Failure(f) => w.failed.push((id, token, f)),
            Outcome::Release => w.released.push((id, token)),
            Outcome::Snooze(d) => w.snoozed.push((id, token, d)),
        }
    }
    w
}

/// Writes a round taken by [`take`]; `me` is the writing worker thread's index
/// (it gets the first claimed job). On an error the outcomes go back to the
/// state (or are given up after shutdown's grace) and rounds pause for
/// [`ERROR_BACKOFF`].
///
/// # Errors
/// The round's database error.
pub(crate) fn write(shared: &Shared, mut work: RoundWork, me: Option<usize>) -> Result<RoundEnd> {
    let reserve = shared.config.prefetch > 0;
    // A prefetching pool's claim is sized when the claim statement runs,
    // after the round's writes: its workers have meanwhile taken jobs from
    // the buffer, so the claim fills the room they made (about a whole
    // buffer per round, not the half that was free when the round was
    // taken). One round's claim is at most the claim batch. A round with
    // nothing to write and no room when taken stays away from the database.
    let live = reserve && !work.isolated && (work.want > 0 || !work.is_empty());
    let sized = Cell::new(work.want);
    let read = || {
        let st = shared.state();
        let n = want(shared, &st);
        sized.set(n);
        (n, idle_workers(shared, &st))
    };
    let finished = Finished {
        starts: &work.starts,
        start_lease: shared.config.lease,
        unstarted: &[],
        done: &work.done,
        failed: &work.failed,
        released: &work.released,
        snoozed: &work.snoozed,
    };
    let claim = ClaimSpec {
        worker: &shared.config.worker_id,
        types: Some(&shared.types),
        queues: shared.config.queues.as_deref(),
        n: if live {
            shared.config.batch()
        } else {
            work.want
        },
        lease: if reserve {
            shared.reservation()
        } else {
            shared.config.lease
        },
        reserve,
        start_now: work.start_now,
        live: live.then_some(LiveSize(&read)),
    };
    let began = Instant::now();
    let written = shared.queue.settle_and_claim(finished, Some(claim));
    shared.timed_round(began.elapsed());
    work.want = sized.get();
    match written {
        // A worker's full prefetching round: its recording is handed off,
        // and this thread writes the next round if one is due. A round that
        // came back short is recorded here (the pool is running dry: its
        // `dry` mark decides whether a claim-only round is worth writing).
        Ok(settled)
            if live && me.is_some() && settled.claimed.len() >= work.want && work.want > 0 =>
        {
            Ok(crate::worker::hand_off::hand_off(shared, work, settled))
        }
        Ok(settled) => Ok(round_record::settle(shared, &work, settled, me, reserve)),
        Err(e) => {
            round_record::failed(shared, work, &e);
            Err(e)
        }
    }
}

/// Waits until no round is being written, then takes one (for the
/// coordinator and the supervisor, which have no job of their own).
pub(crate) fn take_when_free(shared: &Shared) -> RoundWork {
    take(shared, &mut shared.state_between_rounds())
}
