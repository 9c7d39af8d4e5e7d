//! The coordinator thread: writes finished attempts and claims new jobs for idle
//! workers, completions and claims in one transaction.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::{Job, JobId, JobStatus};
use crate::queue::{ClaimSpec, Finished};
use crate::worker::execute::{is_retry, outcome_of, Outcome};
use crate::worker::shared::Shared;

/// How long to wait before trying the database again after a transient error
/// (busy, disk full); errors are logged at most once per this interval.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Group commit: how long a finished job may wait for the other running jobs to
/// finish so that one transaction writes them all (200 µs: about one NORMAL
/// commit here, and small beside an fsync under FULL).
const GROUP_WINDOW: Duration = Duration::from_micros(200);

type Done = Vec<(JobId, i64, Value)>;
type Failed = Vec<(JobId, i64, Failure)>;
type Released = Vec<(JobId, i64)>;
type Snoozed = Vec<(JobId, i64, Duration)>;

/// A round's finished attempts, by how they ended.
#[derive(Default)]
struct Round {
    done: Done,
    failed: Failed,
    released: Released,
    snoozed: Snoozed,
}

impl Round {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        self.done.len() + self.failed.len() + self.released.len() + self.snoozed.len()
    }
}

/// How often an error that goes on is logged again.
const ERROR_REPEAT: Duration = Duration::from_secs(60);

/// Loops until shutdown (or, in drain mode, until nothing is due or running).
pub(crate) fn coordinator_loop(shared: Arc<Shared>) {
    let mut last_error: Option<Instant> = None;
    loop {
        gather(&shared, GROUP_WINDOW);
        let seen = shared.signal.generation();
        let external = shared.external.load(Ordering::SeqCst);
        let (round, want, stopping) = take_work(&shared);
        let outcome = settle_and_claim(&shared, &round, want);
        let claimed = match outcome {
            Ok(jobs) => jobs,
            Err(e) if shared.state().give_up => {
                let n = round.len();
                log::error!("worker pool {}: {e}; shutting down with {n} results unwritten (their jobs run again once their leases expire)", shared.config.worker_id);
                break;
            }
            Err(e) => {
                put_back(&shared, round);
                if last_error.is_none_or(|t| t.elapsed() >= ERROR_REPEAT) {
                    log::error!(
                        "worker pool {}: {e}; retrying every {} s",
                        shared.config.worker_id,
                        ERROR_BACKOFF.as_secs()
                    );
                    last_error = Some(Instant::now());
                }
                shared.signal.wait(seen, ERROR_BACKOFF);
                continue;
            }
        };
        if last_error.take().is_some() {
            log::info!(
                "worker pool {}: the database answers again",
                shared.config.worker_id
            );
        }
        let idle_round = claimed.is_empty() && round.is_empty();
        shared.dispatch(claimed);
        if idle_round && should_exit(&shared, stopping) {
            break;
        }
        if idle_round {
            idle_wait(&shared, seen, external);
        }
    }
    shared.stop_watching();
    shared.finished.store(true, Ordering::SeqCst);
    shared.signal.notify();
    shared.exited.notify();
}

/// Waits for an enqueue of this process, a finished job, another process's
/// commit (when watched; see `watcher.rs`) or the poll interval. `seen` and
/// `external` were read before the round's claim, so nothing since is missed.
fn idle_wait(shared: &Shared, seen: u64, external: u64) {
    let poll = shared.config.poll_interval;
    if shared.watch.is_none() {
        shared.signal.wait(seen, poll);
        return;
    }
    shared.set_idle(true);
    if shared.external.load(Ordering::SeqCst) == external {
        shared.signal.wait(seen, poll);
    }
    shared.set_idle(false);
}

/// Group commit: once some job has finished, waits up to `window` for the other
/// running jobs to finish too, so that one transaction writes them all.
fn gather(shared: &Shared, window: Duration) {
    let deadline = Instant::now() + window;
    loop {
        let seen = shared.signal.generation();
        {
            let state = shared.state();
            let all_done = state.running.values().all(|r| r.done);
            if state.finished.is_empty() || all_done || state.stopping {
                return;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        shared.signal.wait(seen, left);
    }
}

/// Takes the finished outcomes and computes how many jobs to claim.
fn take_work(shared: &Shared) -> (Round, usize, bool) {
    let mut state = shared.state();
    let finished = std::mem::take(&mut state.finished);
    let mut round = Round::default();
    for (id, token, outcome) in finished {
        match outcome {
            Outcome::Success(v) => round.done.push((id, token, v)),
            Outcome::Failure(f) => round.failed.push((id, token, f)),
            Outcome::Release => round.released.push((id, token)),
            Outcome::Snooze(d) => round.snoozed.push((id, token, d)),
        }
    }
    let idle = state.idle(shared.config.workers);
    let want = if state.stopping {
        0
    } else {
        idle.min(shared.config.batch())
    };
    (round, want, state.stopping)
}

fn put_back(shared: &Shared, round: Round) {
    let mut state = shared.state();
    for (id, token, v) in round.done {
        state.finished.push((id, token, Outcome::Success(v)));
    }
    for (id, token, f) in round.failed {
        state.finished.push((id, token, Outcome::Failure(f)));
    }
    for (id, token) in round.released {
        state.finished.push((id, token, Outcome::Release));
    }
    for (id, token, d) in round.snoozed {
        state.finished.push((id, token, Outcome::Snooze(d)));
    }
}

/// Writes completions, failed attempts, hand-backs and claims in one
/// transaction (one commit, one fsync under FULL, for the whole round).
fn settle_and_claim(shared: &Shared, round: &Round, want: usize) -> Result<Vec<Job>> {
    let cfg = &shared.config;
    let finished = Finished {
        done: &round.done,
        failed: &round.failed,
        released: &round.released,
        snoozed: &round.snoozed,
    };
    let claim = ClaimSpec {
        worker: &cfg.worker_id,
        types: Some(&shared.types),
        queues: cfg.queues.as_deref(),
        n: want,
        lease: cfg.lease,
    };
    let settled = shared.queue.settle_and_claim(finished, Some(claim))?;
    let done = round.done.iter().map(|d| (d.0, Kind::Done));
    let failed = round.failed.iter().map(|f| (f.0, Kind::Failed));
    let released = round.released.iter().map(|r| (r.0, Kind::Released));
    let snoozed = round.snoozed.iter().map(|r| (r.0, Kind::Snoozed));
    let outcomes = settled
        .completed
        .into_iter()
        .chain(settled.failed)
        .chain(settled.released)
        .chain(settled.snoozed);
    let kinds = done.chain(failed).chain(released).chain(snoozed);
    record(shared, kinds.zip(outcomes));
    Ok(settled.claimed)
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
fn record(shared: &Shared, statuses: impl Iterator<Item = ((JobId, Kind), Result<JobStatus>)>) {
    let mut state = shared.state();
    for ((id, kind), status) in statuses {
        if let Some(job) = state.running.remove(&id) {
            shared.settled(&job, outcome(kind, &status));
        }
        match (kind, status) {
            (_, Ok(JobStatus::Completed)) => state.counts.completed += 1,
            (Kind::Released, Ok(JobStatus::Pending)) => state.counts.released += 1,
            (Kind::Snoozed, Ok(JobStatus::Pending)) => state.counts.snoozed += 1,
            (Kind::Done | Kind::Failed, Ok(s)) if is_retry(s) => state.counts.retried += 1,
            (_, Ok(_)) => state.counts.failed += 1,
            (_, Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. }))) => {
                log::warn!("result of job {id} refused: {e}")
            }
            (_, Err(e)) => log::error!("result of job {id} not written: {e}"),
        }
    }
}

fn should_exit(shared: &Shared, stopping: bool) -> bool {
    let state = shared.state();
    let quiet = state.running.is_empty() && state.finished.is_empty();
    quiet && (stopping || shared.config.drain)
}
