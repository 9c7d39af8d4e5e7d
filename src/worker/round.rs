//! A round: one transaction that writes the finished attempts (and the starts
//! of prefetched jobs) and claims jobs for the room the pool has. Any thread
//! of the pool may write a round, one at a time: usually the worker thread
//! whose job finished last, so that no thread hand-off sits between a job's end
//! and the next claim (see `thread.rs`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::{JobId, JobStatus};
use crate::queue::{ClaimSpec, Finished};
use crate::worker::execute::{is_retry, outcome_of, Outcome};
use crate::worker::shared::{PoolState, Shared, Task};
use crate::worker::StopReason;

/// How long to wait before trying the database again after a transient error
/// (busy, disk full).
pub(crate) const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// How often an error that goes on is logged again.
const ERROR_REPEAT: Duration = Duration::from_secs(60);

/// Group commit: how long a finished job may wait for the other running jobs to
/// finish so that one transaction writes them all (200 µs: about one NORMAL
/// commit here, and small beside an fsync under FULL).
pub(crate) const GROUP_WINDOW: Duration = Duration::from_micros(200);

/// A round taken from the pool's state: what to write and how much to claim.
#[derive(Default)]
pub(crate) struct RoundWork {
    done: Vec<(JobId, i64, Value)>,
    failed: Vec<(JobId, i64, Failure)>,
    released: Vec<(JobId, i64)>,
    snoozed: Vec<(JobId, i64, Duration)>,
    starts: Vec<(JobId, i64, Timestamp)>,
    want: usize,
    /// The wake-up generation when the round was taken (see `PoolState::dry`).
    generation: u64,
}

impl RoundWork {
    fn is_empty(&self) -> bool {
        self.done.len() + self.failed.len() + self.released.len() + self.snoozed.len() == 0
            && self.starts.is_empty()
    }
}

/// What a written round did for the thread that wrote it.
pub(crate) struct RoundEnd {
    /// The job this thread runs next (when it is a worker and one was claimed).
    pub mine: Option<Task>,
    /// It settled nothing and claimed nothing.
    pub idle: bool,
}

/// Whether a worker thread should write a round now: no round is being
/// written, no error backoff runs, and either finished attempts are due
/// (every claimed job has finished, the group window has passed, the pool
/// stops, or a prefetching pool's buffer is down to half) or the pool
/// has room and the last claim did not come back short.
pub(crate) fn due(shared: &Shared, st: &PoolState) -> bool {
    if st.in_round || st.retry_at.is_some_and(|t| Instant::now() < t) {
        return false;
    }
    if !st.finished.is_empty() || !st.starts.is_empty() {
        // With prefetch, workers keep running buffered jobs while results
        // wait, so a round waits until the buffer is half spent: each round
        // then settles and refills about half the buffer, instead of every
        // other round carrying a handful of jobs at a round's full cost.
        let prefetch = shared.config.prefetch;
        let refill = prefetch > 0 && st.buffer.len() * 2 <= prefetch;
        let window = st
            .first_finished
            .is_some_and(|t| t.elapsed() >= GROUP_WINDOW);
        return refill || window || st.stopping || st.held() == 0;
    }
    !st.dry && want(shared, st) > 0
}

/// How many jobs a round may claim now.
fn want(shared: &Shared, st: &PoolState) -> usize {
    if st.stopping {
        return 0;
    }
    let room = shared.capacity().saturating_sub(st.held());
    room.min(shared.config.batch())
}

/// Takes a round's work from the state and marks a round as being written.
pub(crate) fn take(shared: &Shared, st: &mut PoolState) -> RoundWork {
    st.in_round = true;
    let mut w = RoundWork {
        want: want(shared, st),
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
pub(crate) fn write(shared: &Shared, work: RoundWork, me: Option<usize>) -> Result<RoundEnd> {
    let reserve = shared.config.prefetch > 0;
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
        n: work.want,
        lease: if reserve {
            shared.reservation()
        } else {
            shared.config.lease
        },
        reserve,
    };
    match shared.queue.settle_and_claim(finished, Some(claim)) {
        Ok(settled) => Ok(settle(shared, &work, settled, me, reserve)),
        Err(e) => {
            failed(shared, work, &e);
            Err(e)
        }
    }
}

/// Records a written round and places the claimed jobs.
fn settle(
    shared: &Shared,
    work: &RoundWork,
    settled: crate::store::Settled,
    me: Option<usize>,
    reserve: bool,
) -> RoundEnd {
    let idle = work.is_empty() && settled.claimed.is_empty();
    let short = settled.claimed.len() < work.want;
    let mut st = shared.state();
    if st.retry_at.take().is_some() {
        log::info!(
            "worker pool {}: the database answers again",
            shared.config.worker_id
        );
    }
    marks(&mut st, &work.starts, settled.started);
    let kinds = work
        .done
        .iter()
        .map(|d| (d.0, Kind::Done))
        .chain(work.failed.iter().map(|f| (f.0, Kind::Failed)))
        .chain(work.released.iter().map(|r| (r.0, Kind::Released)))
        .chain(work.snoozed.iter().map(|r| (r.0, Kind::Snoozed)));
    let outcomes = settled
        .completed
        .into_iter()
        .chain(settled.failed)
        .chain(settled.released)
        .chain(settled.snoozed);
    record(shared, &mut st, kinds.zip(outcomes));
    st.dry = short && shared.signal.generation() == work.generation;
    let tasks = shared.adopt(&mut st, settled.claimed, reserve);
    let mine = place(shared, &mut st, tasks, me);
    end(shared, &mut st, me.is_some());
    if me.is_some() && st.dry && st.running.is_empty() {
        drop(st);
        // Nothing held and nothing due: the coordinator decides whether the
        // pool is done (drain mode) and waits for new work.
        shared.signal.notify();
    }
    RoundEnd { mine, idle }
}

/// A reserved job whose start the database refused (its reservation was taken
/// back) is told to stop: its lease is lost.
fn marks(st: &mut PoolState, starts: &[(JobId, i64, Timestamp)], out: Vec<Result<()>>) {
    for ((id, _, _), r) in starts.iter().zip(out) {
        let Some(job) = st.running.get_mut(id) else {
            continue;
        };
        match r {
            Ok(()) => job.marked = true,
            Err(e) => {
                log::warn!("job {id}: its start was refused ({e}); telling its handler to stop");
                job.stop.request(StopReason::LeaseLost);
            }
        }
    }
}

/// Hands claimed tasks out: one to `me` and one to each parked worker
/// (longest waiting first), the rest to the buffer. Without prefetch the
/// claimed jobs go out in run order; with it they join the buffer first, and
/// the buffer's most urgent jobs (priority, due time, id) go out.
fn place(shared: &Shared, st: &mut PoolState, tasks: Vec<Task>, me: Option<usize>) -> Option<Task> {
    st.buffer.extend(tasks);
    if shared.config.prefetch > 0 {
        let order = |t: &Task| (-t.job.priority, t.job.next_retry, t.job.id);
        st.buffer.make_contiguous().sort_by_key(order);
    }
    let mut mine = me.and_then(|_| st.buffer.pop_front());
    if let Some(t) = mine.as_mut() {
        shared.begin(st, t);
    }
    while !st.buffer.is_empty() {
        let Some((i, thread)) = st.parked.pop_front() else {
            break;
        };
        if let Some(task) = st.buffer.pop_front() {
            st.inbox.insert(i, task);
        }
        shared.wake(&thread);
    }
    mine
}

/// Ends the round: wakes whoever waits for it; when finished attempts are
/// left and no worker wrote this round, a parked worker writes the next.
fn end(shared: &Shared, st: &mut PoolState, by_worker: bool) {
    st.in_round = false;
    if st.round_waiters > 0 {
        shared.round_cv.notify_all();
    }
    let left = !st.finished.is_empty() || !st.starts.is_empty();
    if left && !by_worker {
        if let Some((_, t)) = st.parked.pop_front() {
            shared.wake(&t);
        }
    }
}

/// Puts a failed round's work back (or gives it up after shutdown's grace),
/// pauses rounds for [`ERROR_BACKOFF`] and logs at most every minute.
fn failed(shared: &Shared, work: RoundWork, e: &Error) {
    let mut st = shared.state();
    let give_up = st.give_up;
    if give_up {
        let n = work.done.len() + work.failed.len() + work.released.len() + work.snoozed.len();
        log::error!("worker pool {}: {e}; shutting down with {n} results unwritten (their jobs run again once their leases expire)", shared.config.worker_id);
    } else {
        put_back(&mut st, work);
        if st.last_error.is_none_or(|t| t.elapsed() >= ERROR_REPEAT) {
            log::error!(
                "worker pool {}: {e}; retrying every {} s",
                shared.config.worker_id,
                ERROR_BACKOFF.as_secs()
            );
            st.last_error = Some(Instant::now());
        }
    }
    st.retry_at = Some(Instant::now() + ERROR_BACKOFF);
    end(shared, &mut st, true);
}

fn put_back(st: &mut PoolState, w: RoundWork) {
    let f = &mut st.finished;
    f.extend(
        w.done
            .into_iter()
            .map(|(i, t, v)| (i, t, Outcome::Success(v))),
    );
    f.extend(
        w.failed
            .into_iter()
            .map(|(i, t, x)| (i, t, Outcome::Failure(x))),
    );
    f.extend(
        w.released
            .into_iter()
            .map(|(i, t)| (i, t, Outcome::Release)),
    );
    f.extend(
        w.snoozed
            .into_iter()
            .map(|(i, t, d)| (i, t, Outcome::Snooze(d))),
    );
    if !f.is_empty() && st.first_finished.is_none() {
        st.first_finished = Some(Instant::now());
    }
    let mut starts = w.starts;
    starts.append(&mut st.starts);
    st.starts = starts;
}

/// How a settled attempt ended, for the counters.
#[derive(Clone, Copy)]
enum Kind {
    Done,
    Failed,
    Released,
    Snoozed,
}

/// The metrics outcome of a settled entry; `None` for a hand-back or a refusal.
fn outcome(kind: Kind, status: &Result<JobStatus>) -> Option<crate::metrics::Outcome> {
    match (kind, status) {
        (Kind::Released, Ok(JobStatus::Pending)) | (_, Err(_)) => None,
        (Kind::Snoozed, Ok(s)) => Some(outcome_of(*s, true)),
        (_, Ok(s)) => Some(outcome_of(*s, false)),
    }
}

/// Updates counters and forgets settled jobs.
fn record(
    shared: &Shared,
    st: &mut PoolState,
    statuses: impl Iterator<Item = ((JobId, Kind), Result<JobStatus>)>,
) {
    for ((id, kind), status) in statuses {
        if let Some(job) = st.running.remove(&id) {
            shared.settled(&job, outcome(kind, &status));
        }
        let c = &mut st.counts;
        match (kind, status) {
            (_, Ok(JobStatus::Completed)) => c.completed += 1,
            (Kind::Released, Ok(JobStatus::Pending)) => c.released += 1,
            (Kind::Snoozed, Ok(JobStatus::Pending)) => c.snoozed += 1,
            (Kind::Done | Kind::Failed, Ok(s)) if is_retry(s) => c.retried += 1,
            (_, Ok(_)) => c.failed += 1,
            (_, Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. }))) => {
                log::warn!("result of job {id} refused: {e}")
            }
            (_, Err(e)) => log::error!("result of job {id} not written: {e}"),
        }
    }
}

/// Waits until no round is being written, then takes one (for the
/// coordinator and the supervisor, which have no job of their own).
pub(crate) fn take_when_free(shared: &Shared) -> RoundWork {
    take(shared, &mut shared.state_between_rounds())
}
