//! What a written round leaves in the pool's state: settled attempts counted
//! and forgotten, refused starts told to stop, claimed jobs handed out; or,
//! when the round failed, its work put back for the next one.

use std::sync::atomic::Ordering;
use std::thread::Thread;
use std::time::Instant;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobId, JobStatus};
use crate::worker::execute::{is_retry, outcome_of, Outcome};
use crate::worker::round::{RoundEnd, RoundWork, ERROR_BACKOFF};
use crate::worker::shared::{PoolState, RunningJob, Shared, Task};
use crate::worker::StopReason;
use crate::worker::ERROR_REPEAT;

/// Records a written round and places the claimed jobs (`me`: the worker
/// thread that wrote it, which gets the first), then ends the round.
pub(super) fn settle(
    shared: &Shared,
    work: &RoundWork,
    settled: crate::store::Settled,
    me: Option<usize>,
    reserve: bool,
) -> RoundEnd {
    let idle = work.is_empty() && settled.claimed.is_empty();
    let mut st = shared.state();
    let mut wake = Vec::new();
    let written = Written {
        work,
        settled,
        by_worker: me.is_some(),
        reserve,
    };
    let (mine, coordinator) = record_round(shared, &mut st, written, me, &mut wake);
    end(shared, &mut st, &mut wake);
    drop(st);
    wake_all(shared, wake);
    if coordinator {
        // Nothing held (or, while the coordinator polls, room) and nothing
        // due: the coordinator decides whether the pool is done (drain mode)
        // and waits for new work, watching for other processes' commits.
        shared.signal.notify();
    }
    RoundEnd {
        mine,
        idle,
        handed_off: false,
    }
}

/// A written round to record.
pub(super) struct Written<'a> {
    pub work: &'a RoundWork,
    pub settled: crate::store::Settled,
    /// A worker thread wrote it (not the coordinator).
    pub by_worker: bool,
    pub reserve: bool,
}

/// Records a written round in the state: outcomes counted and forgotten,
/// starts marked, claimed jobs adopted and placed (the first to `me`, when
/// set; threads to wake added to `wake`). Leaves the round's end (`in_round`)
/// to the caller. Returns `me`'s job and whether the coordinator is to be
/// woken.
pub(super) fn record_round(
    shared: &Shared,
    st: &mut PoolState,
    written: Written<'_>,
    me: Option<usize>,
    wake: &mut Vec<Thread>,
) -> (Option<Task>, bool) {
    let Written {
        work,
        settled,
        by_worker,
        reserve,
    } = written;
    let short = settled.claimed.len() < work.want;
    // A round with nothing to write or claim did not reach the database.
    let wrote = !work.is_empty() || work.want > 0;
    if wrote && st.retry_at.take().is_some() {
        log::info!(
            "worker pool {}: the database answers again",
            shared.config.worker_id
        );
    }
    if work.isolated {
        st.isolating = st.isolating.saturating_sub(1);
    }
    if !st.replaced.is_empty() {
        for id in work
            .done
            .iter()
            .map(|d| d.0)
            .chain(work.failed.iter().map(|f| f.0))
        {
            st.replaced.remove(&id);
        }
    }
    marks(st, &work.starts, settled.started);
    let kinds = work
        .done
        .iter()
        .map(|d| (d.0, d.1, Kind::Done))
        .chain(work.failed.iter().map(|f| (f.0, f.1, Kind::Failed)))
        .chain(work.released.iter().map(|r| (r.0, r.1, Kind::Released)))
        .chain(work.snoozed.iter().map(|r| (r.0, r.1, Kind::Snoozed)));
    let outcomes = settled
        .completed
        .into_iter()
        .chain(settled.failed)
        .chain(settled.released)
        .chain(settled.snoozed);
    record(shared, st, kinds.zip(outcomes));
    st.dry = short && shared.signal.generation() == work.generation;
    let tasks = shared.adopt(st, settled.claimed, reserve);
    let mine = place(shared, st, tasks, me, wake);
    let room = st.coordinator_polls && st.held() < shared.capacity();
    let coordinator = by_worker && st.dry && (st.running.is_empty() || room);
    if coordinator {
        st.coordinator_polls = false;
    }
    (mine, coordinator)
}

/// A reserved job whose start the database refused (its reservation was taken
/// back) is told to stop: its lease is lost.
fn marks(st: &mut PoolState, starts: &[(JobId, i64, Timestamp)], out: Vec<Result<()>>) {
    for ((id, token, _), r) in starts.iter().zip(out) {
        let Some(job) = st.running.get_mut(id).filter(|j| j.lease_token == *token) else {
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

/// Hands claimed tasks out: the first to `me`, and the rest to the buffer,
/// waking a parked worker for each (longest waiting first; added to `wake`).
/// Without prefetch the claimed jobs go out in run order, to whichever
/// worker is free first; with it they join the buffer first, the buffer's
/// most urgent jobs (priority, due time, id) go out, and each woken worker
/// is handed one.
fn place(
    shared: &Shared,
    st: &mut PoolState,
    tasks: Vec<Task>,
    me: Option<usize>,
    wake: &mut Vec<Thread>,
) -> Option<Task> {
    st.buffer.extend(tasks);
    if shared.config.prefetch > 0 {
        let order = |t: &Task| {
            (
                std::cmp::Reverse(t.job.priority),
                t.job.next_retry,
                t.job.id,
            )
        };
        // Usually in order already (what was left, then a claim in run
        // order); the ids make every key distinct, so an unstable sort
        // gives the one order, without a scratch copy of the tasks.
        let buffer = st.buffer.make_contiguous();
        if !buffer.is_sorted_by_key(order) {
            buffer.sort_unstable_by_key(order);
        }
    }
    // The writer's own job: never one given up meanwhile (shutdown hands a
    // job waiting in the buffer back at once, as `thread::take` knows).
    let mut mine = None;
    while me.is_some() && mine.is_none() {
        let Some(t) = st.buffer.pop_front() else {
            break;
        };
        mine = (!t.abandoned.load(Ordering::SeqCst)).then_some(t);
    }
    if let Some(t) = mine.as_mut() {
        shared.begin(st, t);
    }
    if shared.config.prefetch == 0 {
        // The claimed jobs wait in the buffer, in run order, for whichever
        // worker is free first: a woken thread, or the writer once its own
        // job has ended (a thread woken for a job taken meanwhile parks
        // again). Handed to the woken threads one each instead, a round of
        // short jobs waited for the slowest thread to wake (BENCHMARKS.md,
        // "The default pool's claimed jobs go to the first free worker").
        for _ in 0..st.buffer.len() {
            let Some((_, thread)) = st.parked.pop_front() else {
                break;
            };
            wake.push(thread);
        }
        return mine;
    }
    while !st.buffer.is_empty() {
        let Some((i, thread)) = st.parked.pop_front() else {
            break;
        };
        if let Some(task) = st.buffer.pop_front() {
            st.inbox.insert(i, task);
        }
        wake.push(thread);
    }
    mine
}

/// Wakes the threads a round's end chose, once the state's lock is released
/// (woken under it, each would first wait for the lock: one more sleep and
/// wake-up per thread).
pub(super) fn wake_all(shared: &Shared, wake: Vec<Thread>) {
    for t in &wake {
        shared.wake(t);
    }
}

/// Ends the round: wakes whoever waits for it; when finished attempts are
/// left, a parked worker (added to `wake`) writes the next round (or waits
/// out its group window: threads that parked during this round did not).
fn end(shared: &Shared, st: &mut PoolState, wake: &mut Vec<Thread>) {
    st.in_round = false;
    if st.round_waiters > 0 {
        shared.round_cv.notify_all();
    }
    let left = !st.finished.is_empty() || !st.starts.is_empty();
    if left {
        if let Some((_, t)) = st.parked.pop_front() {
            wake.push(t);
        }
    }
}

/// Puts a failed round's work back (or gives it up after shutdown's grace),
/// pauses rounds for [`ERROR_BACKOFF`] and logs at most every minute. A
/// round refused for a value it held is not retried as it was (see
/// `refused.rs`).
pub(super) fn failed(shared: &Shared, work: RoundWork, e: &Error) {
    let mut st = shared.state();
    let give_up = st.give_up;
    if !give_up && e.refuses_value() && !work.is_empty() {
        crate::worker::refused::refused(shared, &mut st, work, e);
        let mut wake = Vec::new();
        end(shared, &mut st, &mut wake);
        drop(st);
        wake_all(shared, wake);
        return;
    }
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
    let mut wake = Vec::new();
    end(shared, &mut st, &mut wake);
    drop(st);
    wake_all(shared, wake);
}

/// Puts a round's outcomes back ahead of those finished since, and its
/// starts ahead of the starts queued since.
pub(super) fn put_back(st: &mut PoolState, w: RoundWork) {
    let mut f = Vec::with_capacity(w.entries() + st.finished.len());
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
    f.append(&mut st.finished);
    st.finished = f;
    if !st.finished.is_empty() && st.first_finished.is_none() {
        st.first_finished = Some(Instant::now());
    }
    let mut starts = w.starts;
    starts.append(&mut st.starts);
    st.starts = starts;
}

/// Forgets the attempt `token` of job `id`, unless the pool holds a later
/// attempt of it (claimed after this one's lease was taken back).
pub(super) fn forget(st: &mut PoolState, id: JobId, token: i64) -> Option<RunningJob> {
    if st.running.get(&id)?.lease_token != token {
        return None;
    }
    st.running.remove(&id)
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
    statuses: impl Iterator<Item = ((JobId, i64, Kind), Result<JobStatus>)>,
) {
    for ((id, token, kind), status) in statuses {
        if let Some(job) = forget(st, id, token) {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::queue::{Queue, Signal};
    use crate::worker::{Registry, StopFlag, WorkerConfig};

    fn task(queue: &Queue, abandoned: bool) -> Task {
        let id = queue
            .enqueue(crate::NewJob::new("t", serde_json::Value::Null))
            .unwrap()
            .id;
        Task {
            job: queue.get(id).unwrap(),
            stop: Arc::new(StopFlag::new()),
            abandoned: Arc::new(AtomicBool::new(abandoned)),
            reserved: false,
        }
    }

    /// Shutdown hands a job waiting in the buffer back at once (its task
    /// abandoned): a round written meanwhile must not make it the writer's
    /// job, which would run it while it is pending again.
    #[test]
    fn the_writer_never_takes_a_job_given_up_while_it_waited() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path().join("q.db")).unwrap();
        let signal = Arc::new(Signal::new());
        let config = WorkerConfig::default();
        assert_eq!(config.prefetch, 0);
        let shared = Shared::new(queue.clone(), Registry::new(), config, signal, None);
        let (gone, live) = (task(&queue, true), task(&queue, false));
        let live_id = live.job.id;
        let mut st = PoolState::default();
        st.buffer.extend([gone, live]);
        let mine = place(&shared, &mut st, Vec::new(), Some(0), &mut Vec::new());
        assert_eq!(mine.map(|t| t.job.id), Some(live_id));
        assert_eq!(st.counts.started, 1);
        assert!(st.buffer.is_empty());

        st.buffer.push_back(task(&queue, true));
        let mine = place(&shared, &mut st, Vec::new(), Some(0), &mut Vec::new());
        assert!(mine.is_none());
        assert_eq!(st.counts.started, 1);
    }
}
