//! The supervisor thread: heartbeats, cancel requests from other processes,
//! timeouts, and recovery of expired leases.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::job::JobId;
use crate::worker::coordinator::end_drain;
use crate::worker::execute::{outcome_of, timed_out};
use crate::worker::give_back::Held;
use crate::worker::round;
use crate::worker::scheduler::Scheduler;
use crate::worker::shared::{RunningJob, Shared};
use crate::worker::thread::worker_loop;
use crate::worker::StopReason;

/// How often the supervisor looks at running jobs (timeouts are checked this often).
const TICK: Duration = Duration::from_millis(50);

/// How often schedules are looked at (each fires within this of its time).
const SCHEDULE_TICK: Duration = Duration::from_secs(1);

/// When each periodic duty is next due.
struct Due {
    beat: Instant,
    heartbeat: Instant,
    reservations: Instant,
    paused: Instant,
    stalled: Instant,
    cancel_poll: Instant,
    recovery: Instant,
    schedules: Instant,
}

/// Loops until the coordinator has exited.
pub(crate) fn supervisor_loop(shared: Arc<Shared>) {
    let cfg = shared.config.clone();
    let after = crate::worker::instant_after;
    let mut due = Due {
        beat: after(crate::workers::WORKER_BEAT),
        heartbeat: after(cfg.heartbeat_every()),
        reservations: after(shared.reservation() / 3),
        paused: after(cfg.poll_interval),
        stalled: after(stall_every(&cfg)),
        cancel_poll: after(cfg.poll_interval),
        recovery: after(cfg.recovery_interval),
        schedules: Instant::now(),
    };
    let mut scheduler = Scheduler::default();
    // Cancels made through this process's queue handle are polled for at the
    // next tick, not the next poll.
    let mut cancels = shared.queue.cancels_requested();
    while !shared.finished.load(Ordering::SeqCst) {
        let now = Instant::now();
        check_timeouts(&shared);
        if now >= due.heartbeat {
            heartbeat(&shared, true, cfg.lease);
            due.heartbeat = after(cfg.heartbeat_every());
        }
        if cfg.prefetch > 0 {
            write_starts(&shared);
            if now >= due.reservations {
                heartbeat(&shared, false, shared.reservation());
                due.reservations = now + shared.reservation() / 3;
            }
            if now >= due.paused {
                give_back_paused(&shared);
                due.paused = after(cfg.poll_interval);
            }
            if now >= due.stalled {
                give_back_stalled(&shared);
                due.stalled = after(stall_every(&cfg));
            }
        }
        let requested = shared.queue.cancels_requested();
        if now >= due.cancel_poll || requested != cancels {
            cancels = requested;
            poll_cancels(&shared);
            due.cancel_poll = after(cfg.poll_interval);
        }
        if now >= due.recovery {
            recover(&shared);
            due.recovery = after(cfg.recovery_interval);
        }
        if now >= due.beat {
            let types = shared.registry.types();
            if let Err(e) = shared
                .queue
                .beat_pool(&cfg.worker_id, &types, cfg.queues.as_deref())
            {
                log::warn!("worker heartbeat failed: {e}");
                if cfg.drain && e.is_lasting() {
                    end_drain(&shared, &e);
                }
            }
            due.beat = now + crate::workers::WORKER_BEAT;
        }
        if now >= due.schedules && !shared.state().stopping {
            if let Err(e) = scheduler.tick(&shared.queue) {
                if cfg.drain {
                    end_drain(&shared, &e);
                }
            }
            due.schedules = now + SCHEDULE_TICK;
        }
        std::thread::sleep(TICK);
    }
}

/// Extends the leases of every held job whose start is written (`marked`) by
/// `lease`, or the reservations of the others (prefetched: waiting, or started
/// with the start not yet written), in one transaction; flags cancels and lost
/// leases.
fn heartbeat(shared: &Shared, marked: bool, lease: Duration) {
    let held: Vec<(JobId, i64)> = {
        let state = shared.state();
        state
            .running
            .iter()
            .filter(|(_, r)| r.marked == marked)
            .map(|(id, r)| (*id, r.lease_token))
            .collect()
    };
    if held.is_empty() {
        return;
    }
    let results = match shared.queue.heartbeat_many(&held, lease) {
        Ok(r) => r,
        Err(e) => return log::error!("heartbeat failed: {e}"),
    };
    let mut cancelled = Vec::new();
    let mut lost = Vec::new();
    {
        let state = shared.state();
        for ((id, token), result) in held.iter().zip(results) {
            let Some(job) = state.running.get(id).filter(|j| j.lease_token == *token) else {
                continue;
            };
            match result {
                Ok(false) => {}
                Ok(true) => {
                    job.stop.request(StopReason::Cancelled);
                    cancelled.push((*id, Some(*token)));
                }
                Err(e) => {
                    log::warn!("job {id}: {e}; telling its handler to stop");
                    job.stop.request(StopReason::LeaseLost);
                    lost.push((*id, Some(*token)));
                }
            }
        }
    }
    // A lost reservation is not the pool's to write back: only dropped.
    Shared::take_unstarted(&mut shared.state(), &lost, StopReason::LeaseLost);
    give_back_unstarted(
        shared,
        &cancelled,
        StopReason::Cancelled,
        "cancel requested",
    );
}

fn poll_cancels(shared: &Shared) {
    if shared.state().running.is_empty() {
        return;
    }
    match shared.queue.cancel_requests(&shared.config.worker_id) {
        Ok(ids) => {
            {
                let state = shared.state();
                for id in &ids {
                    if let Some(job) = state.running.get(id) {
                        job.stop.request(StopReason::Cancelled);
                    }
                }
            }
            let held: Vec<Held> = ids.into_iter().map(|id| (id, None)).collect();
            give_back_unstarted(shared, &held, StopReason::Cancelled, "cancel requested");
        }
        Err(e) => log::warn!("polling cancel requests failed: {e}"),
    }
}

/// Prefetched jobs of a queue paused since they were claimed are handed back
/// unstarted (pending in their old place, their attempts not counted), so a
/// pause holds them as it holds the queue's other jobs. Checked every poll
/// interval while the buffer holds jobs.
fn give_back_paused(shared: &Shared) {
    if shared.state().buffer.is_empty() {
        return;
    }
    let paused = match shared.queue.paused_queues() {
        Ok(p) => p,
        Err(e) => return log::warn!("reading paused queues failed: {e}"),
    };
    if paused.is_empty() {
        return;
    }
    let ids: Vec<Held> = shared
        .state()
        .buffer
        .iter()
        .filter(|t| t.reserved && paused.contains(&t.job.queue))
        .map(|t| (t.job.id, Some(t.job.lease_token)))
        .collect();
    // The reason is never seen: these jobs never started.
    give_back_unstarted(shared, &ids, StopReason::Shutdown, "their queue is paused");
}

/// How often a prefetching pool looks whether it has stalled (see
/// [`give_back_stalled`]): every quarter of `prefetch_ttl`, within [`TICK`]
/// and 1 s.
fn stall_every(cfg: &crate::WorkerConfig) -> Duration {
    (cfg.prefetch_ttl / 4).clamp(TICK, Duration::from_secs(1))
}

/// Hands back every reserved job in the buffer once the pool has neither
/// claimed a job nor started one for `prefetch_ttl`: its workers are all
/// held by long jobs, and another pool may run the buffered ones. A pool that keeps
/// starting jobs keeps its buffer, however long a job waits in it (its
/// workers are working through it). The pool reserves again only once one
/// of its workers is idle (`round::want`).
fn give_back_stalled(shared: &Shared) {
    let ttl = shared.config.prefetch_ttl;
    let ids: Vec<Held> = {
        let st = shared.state();
        if st.buffer.is_empty() || st.last_progress.is_none_or(|t| t.elapsed() <= ttl) {
            return;
        }
        st.buffer
            .iter()
            .filter(|t| t.reserved)
            .map(|t| (t.job.id, Some(t.job.lease_token)))
            .collect()
    };
    // The reason is never seen: these jobs never started.
    give_back_unstarted(
        shared,
        &ids,
        StopReason::Shutdown,
        "no worker of the pool started a job for prefetch_ttl",
    );
}

/// Takes the prefetched jobs among `ids` that no worker has started out of
/// the pool and gives them back in one transaction (see `give_back.rs`);
/// `why` says when, for the log.
fn give_back_unstarted(shared: &Shared, ids: &[Held], reason: StopReason, why: &str) {
    if ids.is_empty() {
        return;
    }
    let held = Shared::take_unstarted(&mut shared.state(), ids, reason);
    shared.give_back(&held, why);
}

/// Past its timeout a job's context reports cancelled (the context checks its own
/// deadline); past timeout + grace the attempt is recorded as timed out and the
/// slot goes to a new thread.
fn check_timeouts(shared: &Arc<Shared>) {
    let grace = shared.config.timeout_grace;
    let overdue: Vec<(JobId, RunningJob, Duration)> = {
        let mut state = shared.state();
        let ids: Vec<(JobId, Duration)> = state
            .running
            .iter()
            .filter(|(_, r)| !r.done)
            .filter_map(|(id, r)| {
                let started = r.started?;
                r.timeout
                    .filter(|t| started.elapsed() >= t.saturating_add(grace))
                    .map(|t| (*id, t))
            })
            .collect();
        ids.into_iter()
            .filter_map(|(id, t)| {
                Shared::abandon(&mut state, id, StopReason::TimedOut).map(|job| (id, job, t))
            })
            .collect()
    };
    for (id, job, timeout) in overdue {
        let token = job.lease_token;
        log::warn!(
            "job {id} still running {} s past its timeout: attempt failed",
            grace.as_secs_f64()
        );
        match shared.queue.fail(id, token, &timed_out(timeout)) {
            Ok(status) => {
                let mut state = shared.state();
                if status == crate::JobStatus::Pending {
                    state.counts.retried += 1;
                } else {
                    state.counts.failed += 1;
                }
                drop(state);
                shared.settled(&job, Some(outcome_of(status, false)));
            }
            Err(e @ Error::LeaseLost { .. }) => {
                log::warn!("{e}");
                shared.settled(&job, None);
            }
            Err(e) => {
                log::error!("recording the timeout of job {id} failed: {e}");
                shared.settled(&job, None);
            }
        }
        let s = shared.clone();
        std::thread::Builder::new()
            .name("jobq-worker".into())
            .spawn(move || worker_loop(s))
            .map_err(|e| log::error!("cannot start a replacement worker thread: {e}"))
            .ok();
        shared.signal.notify();
    }
}

/// Writes the starts of prefetched jobs that no round has written yet (the
/// workers are all busy), so that a started job's attempt is on record
/// within a tick of its start.
fn write_starts(shared: &Shared) {
    {
        let st = shared.state();
        if st.starts.is_empty() || st.in_round {
            return;
        }
    }
    let work = round::take_when_free(shared);
    if let Err(e) = round::write(shared, work, None) {
        log::debug!("writing job starts failed: {e}");
    }
}

fn recover(shared: &Shared) {
    match shared.queue.recover_expired() {
        Ok(0) => {}
        Ok(n) => log::info!("recovered {n} jobs with expired leases"),
        Err(e) => log::error!("recovery failed: {e}"),
    }
}
