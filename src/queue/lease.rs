//! A worker's calls: claim, complete, fail, heartbeat, progress, release. Every
//! transition out of `in_progress` is fenced by the attempt's lease token.

use std::time::Duration;

use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::{Job, JobId, JobStatus};
use crate::queue::Queue;
use crate::store::{Claim, Round};

impl Queue {
    /// Claims up to `n` due pending jobs of the given types (`None`: any type) for
    /// `worker`, each with a lease of `lease` and a new fencing token, in one
    /// `BEGIN IMMEDIATE` transaction. Returns them in run order (priority, then
    /// due time, then enqueue order).
    ///
    /// # Errors
    /// [`Error::Busy`], [`Error::DiskFull`], or a database error.
    pub fn claim(
        &self,
        worker: &str,
        types: Option<&[String]>,
        n: usize,
        lease: Duration,
    ) -> Result<Vec<Job>> {
        let (_, claimed) = self.complete_and_claim(&[], worker, types, n, lease)?;
        Ok(claimed)
    }

    /// Completes a job whose lease the caller holds; it ends `cancelled` instead when
    /// a cancel was requested. Returns the final status.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the lease token is stale (nothing changes),
    /// [`Error::NotFound`], or a database error.
    pub fn complete(&self, id: JobId, lease_token: i64, result: &Value) -> Result<JobStatus> {
        let (mut completed, _) = self.complete_and_claim(
            &[(id, lease_token, result.clone())],
            "",
            None,
            0,
            Duration::ZERO,
        )?;
        completed.pop().unwrap_or(Err(Error::NotFound { id }))
    }

    /// Completes many jobs in one transaction. Each entry gets its own outcome; a
    /// refused one (lease lost) does not stop the others.
    ///
    /// # Errors
    /// The outer error when the transaction itself fails (then nothing was written).
    pub fn complete_many(&self, done: &[(JobId, i64, Value)]) -> Result<Vec<Result<JobStatus>>> {
        let (out, _) = self.complete_and_claim(done, "", None, 0, Duration::ZERO)?;
        Ok(out)
    }

    /// The worker pool's hot path: completes `done` (as [`Queue::complete_many`])
    /// and claims up to `n` jobs (as [`Queue::claim`]) in ONE transaction, halving
    /// the commits per job. A completion is durable once this returns.
    ///
    /// # Errors
    /// The outer error when the transaction fails (then nothing was written).
    pub fn complete_and_claim(
        &self,
        done: &[(JobId, i64, Value)],
        worker: &str,
        types: Option<&[String]>,
        n: usize,
        lease: Duration,
    ) -> Result<(Vec<Result<JobStatus>>, Vec<Job>)> {
        let finished = Finished {
            done,
            ..Finished::default()
        };
        let claim = ClaimSpec {
            worker,
            types,
            queues: None,
            n,
            lease,
            reserve: false,
            start_now: n,
            live: None,
        };
        let settled = self.settle_and_claim(finished, Some(claim))?;
        Ok((settled.completed, settled.claimed))
    }

    /// The pool's whole round in ONE transaction: completes `done`, records the
    /// failed attempts (as [`Queue::fail`]), hands back the released ones (as
    /// [`Queue::release`]), snoozes the snoozed ones, and claims as `claim`
    /// says. Each is its own fenced statement with its own outcome; a database
    /// error rolls back the whole round.
    pub(crate) fn settle_and_claim(
        &self,
        finished: Finished<'_>,
        claim: Option<ClaimSpec<'_>>,
    ) -> Result<Settled> {
        if finished.is_empty() && claim.is_none_or(|c| c.n == 0) {
            return Ok(Settled::default());
        }
        let texts: Vec<(JobId, i64, String)> = finished
            .done
            .iter()
            .map(|(id, token, v)| (*id, *token, v.to_string()))
            .collect();
        let now = self.now();
        let backoff_for = |t: &str| self.backoff(t);
        let snoozed: Vec<(JobId, i64, Duration)> = finished
            .snoozed
            .iter()
            .map(|(id, token, d)| {
                let d = (*d).clamp(crate::state::MIN_SNOOZE, crate::state::MAX_WAIT);
                (*id, *token, d)
            })
            .collect();
        let round = Round {
            starts: finished.starts,
            started_until: now.plus(finished.start_lease),
            unstarted: finished.unstarted,
            done: &texts,
            failed: finished.failed,
            released: finished.released,
            snoozed: &snoozed,
            claim: claim.map(|c| Claim {
                worker: c.worker,
                types: c.types,
                queues: c.queues,
                n: c.n,
                lease_until: now.plus(c.lease),
                reserve: c.reserve,
                start_now: c.start_now,
                live: c.live,
            }),
            backoff_for: &backoff_for,
            now,
        };
        self.backend().settle_and_claim(round)
    }

    /// Ids of this worker's running jobs that have a cancel request (a cheap read
    /// a pool polls to notice cancels made by other processes).
    ///
    /// # Errors
    /// Database errors.
    pub fn cancel_requests(&self, worker: &str) -> Result<Vec<JobId>> {
        self.backend().cancel_requests(worker)
    }

    /// Records a failed attempt: `pending` again after the type's backoff (or the
    /// failure's `retry_after`) when retryable with attempts left; otherwise
    /// `failed`; `cancelled` when a cancel was requested. Returns the new status.
    ///
    /// # Errors
    /// [`Error::LeaseLost`], [`Error::NotFound`], or a database error.
    pub fn fail(&self, id: JobId, lease_token: i64, failure: &Failure) -> Result<JobStatus> {
        let failed = [(id, lease_token, failure.clone())];
        let finished = Finished {
            failed: &failed,
            ..Finished::default()
        };
        let mut settled = self.settle_and_claim(finished, None)?;
        settled.failed.pop().unwrap_or(Err(Error::NotFound { id }))
    }

    /// Extends a held lease to `now + lease` (never shortens it: a lease that
    /// already runs later stays). Returns true when a cancel has been
    /// requested for the job.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the lease is gone, [`Error::NotFound`], database errors.
    pub fn heartbeat(&self, id: JobId, lease_token: i64, lease: Duration) -> Result<bool> {
        let mut out = self.heartbeat_many(&[(id, lease_token)], lease)?;
        out.pop().unwrap_or(Err(Error::NotFound { id }))
    }

    /// Extends many leases in one transaction; each entry gets its own outcome
    /// (`Ok(cancel_requested)` or the refusal).
    ///
    /// # Errors
    /// The outer error when the transaction fails.
    pub fn heartbeat_many(
        &self,
        held: &[(JobId, i64)],
        lease: Duration,
    ) -> Result<Vec<Result<bool>>> {
        let now = self.now();
        self.backend().heartbeat(held, now, now.plus(lease))
    }

    /// Stores a progress report on a running job: `fraction` is clamped to 0.0-1.0.
    ///
    /// # Errors
    /// [`Error::LeaseLost`], [`Error::NotFound`], or a database error.
    pub fn progress(
        &self,
        id: JobId,
        lease_token: i64,
        fraction: f64,
        message: &str,
    ) -> Result<()> {
        let now = self.now();
        // `+ 0.0` turns -0.0 into 0.0 (it is inside 0-1, and printed "-0%").
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0) + 0.0
        } else {
            0.0
        };
        let message = crate::failure::clean_error_text(message);
        let report = json!({"fraction": fraction, "message": message, "at": now}).to_string();
        self.backend().progress(id, lease_token, &report, now)
    }

    /// Snoozes a running job: `pending` again after `delay` (at least
    /// [`crate::state::MIN_SNOOZE`], at most [`crate::state::MAX_WAIT`]) without using up its attempt (`snoozes + 1`); `failed` once it has snoozed
    /// [`crate::state::MAX_SNOOZES`] times; `cancelled` when a cancel was requested.
    /// Returns the new status.
    ///
    /// # Errors
    /// [`Error::LeaseLost`], [`Error::NotFound`], or a database error.
    pub fn snooze(&self, id: JobId, lease_token: i64, delay: Duration) -> Result<JobStatus> {
        let snoozed = [(id, lease_token, delay)];
        let finished = Finished {
            snoozed: &snoozed,
            ..Finished::default()
        };
        let mut settled = self.settle_and_claim(finished, None)?;
        settled.snoozed.pop().unwrap_or(Err(Error::NotFound { id }))
    }

    /// Hands a running job back to `pending`, due now, without using up its attempt
    /// (graceful shutdown); `cancelled` instead when a cancel was requested.
    ///
    /// # Errors
    /// [`Error::LeaseLost`], [`Error::NotFound`], or a database error.
    pub fn release(&self, id: JobId, lease_token: i64) -> Result<JobStatus> {
        let released = [(id, lease_token)];
        let finished = Finished {
            released: &released,
            ..Finished::default()
        };
        let mut settled = self.settle_and_claim(finished, None)?;
        settled
            .released
            .pop()
            .unwrap_or(Err(Error::NotFound { id }))
    }
}

pub(crate) use crate::store::Settled;

/// Finished attempts to write in one round.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Finished<'a> {
    /// Reserved (prefetched) jobs a worker started, and when: marked started,
    /// their leases renewed for `start_lease`.
    pub starts: &'a [(JobId, i64, Timestamp)],
    pub start_lease: Duration,
    /// Reserved jobs that never started, and when they were claimed (the
    /// claimed [`Job`]'s `updated_at`): given back uncounted, their starts
    /// forgotten from their queues' rate windows.
    pub unstarted: &'a [(JobId, i64, Timestamp)],
    /// Completions: id, lease token, result.
    pub done: &'a [(JobId, i64, Value)],
    /// Failed attempts.
    pub failed: &'a [(JobId, i64, Failure)],
    /// Attempts handed back at shutdown.
    pub released: &'a [(JobId, i64)],
    /// Attempts that asked to run again after a delay, without using an attempt.
    pub snoozed: &'a [(JobId, i64, Duration)],
}

impl Finished<'_> {
    fn is_empty(&self) -> bool {
        self.starts.is_empty()
            && self.unstarted.is_empty()
            && self.done.is_empty()
            && self.failed.is_empty()
            && self.released.is_empty()
            && self.snoozed.is_empty()
    }
}

/// What a round claims: up to `n` due jobs of `types` from `queues` (`None`:
/// any), leased for `lease`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimSpec<'a> {
    pub worker: &'a str,
    pub types: Option<&'a [String]>,
    pub queues: Option<&'a [String]>,
    pub n: usize,
    /// The lease of started jobs; with `reserve`, the reservation's length.
    pub lease: Duration,
    /// Reserve the jobs for a prefetch buffer instead of starting them.
    pub reserve: bool,
    /// With `reserve`: the pool's idle workers (buffered jobs aside), the most
    /// jobs of limited queues the claim reserves; see
    /// [`crate::queues::QueueSettings::claimable`]. Unused without `reserve`.
    pub start_now: usize,
    /// Reads `n` and `start_now` at the claim's moment, after the round's
    /// writes (`n` above is then the most it may say); `None`: as given.
    pub live: Option<crate::store::LiveSize<'a>>,
}
