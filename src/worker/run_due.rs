//! Running due jobs once, on the calling thread (the HTTP cron endpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::{JobId, JobStatus};
use crate::queue::{ClaimSpec, Finished, Queue};
use crate::store::Settled;
use crate::worker::execute::{execute, outcome_of, Outcome};
use crate::worker::lease_keeper::LeaseKeeper;
use crate::worker::refused;
use crate::worker::{Registry, StopFlag, WorkerConfig};

/// What [`run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(description = "What one call that runs due jobs did.")]
pub struct RunSummary {
    /// Jobs claimed and run.
    pub processed: u64,
    /// Jobs that completed.
    pub completed: u64,
    /// Jobs that failed and will be retried (or were handed back unfinished
    /// as the server stopped).
    pub retried: u64,
    /// Jobs that asked to run later (a snooze: `JobError::Snooze`, exit 79, a
    /// webhook's 429), their attempt not used. Not among `retried`. (0 when
    /// read from a server older than the field.)
    #[serde(default)]
    #[schema(required = true)]
    pub snoozed: u64,
    /// Jobs that failed for good (or ended cancelled).
    pub failed: u64,
    /// Wall time of the whole call, in ms.
    pub duration_ms: u64,
}

/// Claims due jobs of the registry's types one at a time, up to `limit`, and runs
/// each on this thread with the pool's rules (lease of `config.lease`, renewed
/// by a helper thread every third of it while the job runs, which also passes
/// cancel requests on; the type's timeout as a cooperative deadline, panics
/// caught). Safe beside running pools
/// and other calls: every job is claimed by exactly one of them.
///
/// As in a pool's rounds, each job's outcome is written in the transaction
/// that claims the next job (one commit per job; never more than one job
/// claimed and not yet run).
///
/// # Errors
/// Database errors from a round; a job's own failure is counted, not
/// returned. Jobs settled before the error stay settled; the outcome of the
/// job run just before it is not written (its lease expires and it runs again).
/// A value the database refuses (a result too big, a constraint) is not an
/// error: the outcome is replaced by a failed attempt saying why, or given up
/// when that is refused too (README, "Nothing waits silently").
pub fn run_due(
    queue: &Queue,
    registry: &Registry,
    limit: usize,
    config: &WorkerConfig,
) -> Result<RunSummary> {
    run_due_until(queue, registry, limit, config, &AtomicBool::new(false))
}

/// [`run_due`] that claims no further job once `stop` is set (a server
/// shutting down): the job running then finishes and its outcome is written,
/// and the call returns. The HTTP cron endpoint stops so when `jobq serve`
/// shuts down.
///
/// # Errors
/// As [`run_due`].
pub fn run_due_until(
    queue: &Queue,
    registry: &Registry,
    limit: usize,
    config: &WorkerConfig,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let started = Instant::now();
    let keeper = LeaseKeeper::default();
    let summary = std::thread::scope(|s| {
        let renewer = std::thread::Builder::new()
            .name("jobq-run-due-lease".into())
            .spawn_scoped(s, || keeper.run(queue, config.lease));
        if let Err(e) = renewer {
            log::error!("cannot start the thread that renews leases: {e}; a job that runs past its lease may be recovered");
        }
        let summary = run_rounds(queue, registry, limit, config, stop, &keeper);
        keeper.finish();
        summary
    });
    let mut sum = summary?;
    sum.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(sum)
}

/// The rounds of [`run_due_until`]: each writes the last job's outcome and
/// claims the next, which runs on this thread while `keeper` holds its lease.
fn run_rounds(
    queue: &Queue,
    registry: &Registry,
    limit: usize,
    config: &WorkerConfig,
    stop: &AtomicBool,
    keeper: &LeaseKeeper,
) -> Result<RunSummary> {
    let types = registry.types();
    let mut sum = RunSummary::default();
    let mut last = Last::default();
    loop {
        let claim = ClaimSpec {
            worker: &config.worker_id,
            types: Some(&types),
            queues: None,
            n: usize::from(sum.processed < limit as u64 && !stop.load(Ordering::SeqCst)),
            lease: config.lease,
            reserve: false,
            start_now: 1,
            live: None,
        };
        let settled = match queue.settle_and_claim(last.finished(), Some(claim)) {
            Err(e) if e.refuses_value() && !last.is_empty() => {
                settle_refused(queue, &mut last, claim, &e)?
            }
            written => written?,
        };
        last.measure(queue, &settled);
        let finished = settled.completed.into_iter().chain(settled.failed);
        count(&mut sum, finished.chain(settled.released), false);
        count(&mut sum, settled.snoozed.into_iter(), true);
        last = Last::default();
        let Some(mut job) = settled.claimed.into_iter().next() else {
            break;
        };
        sum.processed += 1;
        queue.metrics().started(&job);
        let flag = Arc::new(StopFlag::new());
        keeper.hold(job.id, job.lease_token, flag.clone());
        let ran = Instant::now();
        let outcome = execute(queue, registry, &mut job, config.lease, flag);
        keeper.release();
        last.ran = Some((job.queue.clone(), job.job_type.clone(), ran.elapsed()));
        last.record(job.id, job.lease_token, outcome);
    }
    Ok(sum)
}

/// Writes, with the same claim, a failed attempt in place of the last outcome
/// after the database refused a value it held (see `refused.rs`); refused
/// again, the outcome is given up (its job runs again once its lease
/// expires) and the claim is written alone.
fn settle_refused(
    queue: &Queue,
    last: &mut Last,
    claim: ClaimSpec<'_>,
    e: &Error,
) -> Result<Settled> {
    let given_up = |id: JobId, e: &Error| {
        log::error!("job {id}: the database refused its outcome ({e}); given up: the job runs again once its lease expires");
    };
    match last.stand_in(e) {
        Ok(id) => {
            log::error!("job {id}: the database refused its outcome ({e}); recording a failed attempt instead");
            match queue.settle_and_claim(last.finished(), Some(claim)) {
                Err(again) if again.refuses_value() => given_up(id, &again),
                written => return written,
            }
        }
        Err(id) => given_up(id, e),
    }
    *last = Last {
        ran: last.ran.take(),
        ..Last::default()
    };
    queue.settle_and_claim(Finished::default(), Some(claim))
}

/// The outcome of the job run last, to write with the next claim.
#[derive(Default)]
struct Last {
    done: Vec<(JobId, i64, Value)>,
    failed: Vec<(JobId, i64, Failure)>,
    released: Vec<(JobId, i64)>,
    snoozed: Vec<(JobId, i64, Duration)>,
    /// The job's queue and type, and how long its handler ran (metrics).
    ran: Option<(String, String, Duration)>,
}

impl Last {
    fn record(&mut self, id: JobId, token: i64, outcome: Outcome) {
        match outcome {
            Outcome::Success(v) => self.done.push((id, token, v)),
            Outcome::Failure(f) => self.failed.push((id, token, f)),
            Outcome::Release => self.released.push((id, token)),
            Outcome::Snooze(d) => self.snoozed.push((id, token, d)),
        }
    }

    /// Counts the written outcome in the metrics, as a pool does: the
    /// running gauge goes down; an attempt that ended (not handed back, not
    /// refused) counts with its run time.
    fn measure(&self, queue: &Queue, settled: &Settled) {
        let Some((q, job_type, ran)) = &self.ran else {
            return;
        };
        let m = queue.metrics();
        m.running_ended(q);
        let ended = settled
            .completed
            .iter()
            .chain(&settled.failed)
            .map(|s| (s, false))
            .chain(settled.snoozed.iter().map(|s| (s, true)));
        for (status, snoozed) in ended {
            if let Ok(s) = status {
                m.finished(q, job_type, outcome_of(*s, snoozed), Some(*ran));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.done.len() + self.failed.len() + self.released.len() + self.snoozed.len() == 0
    }

    /// Replaces a result or a failure by the failed attempt recorded in its
    /// place, and returns its job; `Err` with the job for a hand-back or a
    /// snooze, which have no stand-in.
    fn stand_in(&mut self, e: &Error) -> std::result::Result<JobId, JobId> {
        if let Some((id, token, _)) = self.done.pop() {
            self.failed.push((id, token, refused::for_result(e)));
            return Ok(id);
        }
        if let Some((id, token, f)) = self.failed.pop() {
            self.failed.push((id, token, refused::for_failure(f, e)));
            return Ok(id);
        }
        let other = self.released.first().map(|r| r.0);
        Err(other
            .or(self.snoozed.first().map(|s| s.0))
            .unwrap_or_default())
    }

    fn finished(&self) -> Finished<'_> {
        Finished {
            done: &self.done,
            failed: &self.failed,
            released: &self.released,
            snoozed: &self.snoozed,
            ..Finished::default()
        }
    }
}

/// Counts written outcomes (`snoozes`: these were snoozes, so a pending one
/// was snoozed, not retried); a refused one (lease lost, job gone) is logged.
fn count(sum: &mut RunSummary, statuses: impl Iterator<Item = Result<JobStatus>>, snoozes: bool) {
    for status in statuses {
        match status {
            Ok(JobStatus::Completed) => sum.completed += 1,
            Ok(JobStatus::Pending) if snoozes => sum.snoozed += 1,
            Ok(JobStatus::Pending) => sum.retried += 1,
            Ok(_) => sum.failed += 1,
            Err(e) => log::warn!("{e}"),
        }
    }
}
