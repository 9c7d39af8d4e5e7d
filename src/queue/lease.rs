//! A worker's calls: claim, complete, fail, heartbeat, progress, release. Every
//! transition out of `in_progress` is fenced by the attempt's lease token.

use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::{Job, JobId, JobStatus};
use crate::queue::Queue;
use crate::store::{claim, finish, read};

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
        let text = result.to_string();
        let now = self.now();
        self.inner.store.write("complete", |tx| {
            finish::complete(tx, id, lease_token, &text, now)
        })
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
        let settled = self.settle_and_claim(done, &[], &[], worker, types, n, lease)?;
        Ok((settled.completed, settled.claimed))
    }

    /// The pool's whole round in ONE transaction: completes `done`, records the
    /// failed attempts `failed` (as [`Queue::fail`]), hands back `released` (as
    /// [`Queue::release`]), and claims up to `n` jobs. Each is its own fenced
    /// statement with its own outcome; a database error rolls back the whole round.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn settle_and_claim(
        &self,
        done: &[(JobId, i64, Value)],
        failed: &[(JobId, i64, Failure)],
        released: &[(JobId, i64)],
        worker: &str,
        types: Option<&[String]>,
        n: usize,
        lease: Duration,
    ) -> Result<Settled> {
        if done.is_empty() && failed.is_empty() && released.is_empty() && n == 0 {
            return Ok(Settled::default());
        }
        let texts: Vec<String> = done.iter().map(|(_, _, v)| v.to_string()).collect();
        let types = types.map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into()));
        let now = self.now();
        let backoff_for = |t: &str| self.backoff(t);
        self.inner.store.write("complete_and_claim", |tx| {
            let completed = done
                .iter()
                .zip(&texts)
                .map(|((id, token, _), text)| finish::complete(tx, *id, *token, text, now))
                .map(refusal_is_an_outcome)
                .collect::<Result<_>>()?;
            let failed = failed
                .iter()
                .map(|(id, token, f)| finish::fail(tx, *id, *token, f, &backoff_for, now))
                .map(refusal_is_an_outcome)
                .collect::<Result<_>>()?;
            let released = released
                .iter()
                .map(|(id, token)| finish::release(tx, *id, *token, now))
                .map(refusal_is_an_outcome)
                .collect::<Result<_>>()?;
            let claimed = if n > 0 {
                claim::claim(tx, worker, types.as_deref(), n, now, now.plus(lease))?
            } else {
                Vec::new()
            };
            Ok(Settled {
                completed,
                failed,
                released,
                claimed,
            })
        })
    }

    /// Ids of this worker's running jobs that have a cancel request (a cheap read
    /// a pool polls to notice cancels made by other processes).
    ///
    /// # Errors
    /// Database errors.
    pub fn cancel_requests(&self, worker: &str) -> Result<Vec<JobId>> {
        self.inner
            .store
            .read("cancel_requests", |c| read::cancel_requests(c, worker))
    }

    /// Records a failed attempt: `pending` again after the type's backoff (or the
    /// failure's `retry_after`) when retryable with attempts left; otherwise
    /// `failed`; `cancelled` when a cancel was requested. Returns the new status.
    ///
    /// # Errors
    /// [`Error::LeaseLost`], [`Error::NotFound`], or a database error.
    pub fn fail(&self, id: JobId, lease_token: i64, failure: &Failure) -> Result<JobStatus> {
        let now = self.now();
        let backoff_for = |t: &str| self.backoff(t);
        self.inner.store.write("fail", |tx| {
            finish::fail(tx, id, lease_token, failure, &backoff_for, now)
        })
    }

    /// Extends a held lease to `now + lease`. Returns true when a cancel has been
    /// requested for the job.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the lease is gone, [`Error::NotFound`], database errors.
    pub fn heartbeat(&self, id: JobId, lease_token: i64, lease: Duration) -> Result<bool> {
        let now = self.now();
        self.inner.store.write("heartbeat", |tx| {
            claim::heartbeat(tx, id, lease_token, now, now.plus(lease))
        })
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
        self.inner.store.write("heartbeat", |tx| {
            let mut out = Vec::with_capacity(held.len());
            for (id, token) in held {
                match claim::heartbeat(tx, *id, *token, now, now.plus(lease)) {
                    Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. })) => out.push(Err(e)),
                    other => out.push(Ok(other?)),
                }
            }
            Ok(out)
        })
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
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let message = crate::failure::clean_error_text(message);
        let report = json!({"fraction": fraction, "message": message, "at": now}).to_string();
        self.inner.store.write("progress", |tx| {
            claim::progress(tx, id, lease_token, &report, now)
        })
    }

    /// Hands a running job back to `pending`, due now, without using up its attempt
    /// (graceful shutdown); `cancelled` instead when a cancel was requested.
    ///
    /// # Errors
    /// [`Error::LeaseLost`], [`Error::NotFound`], or a database error.
    pub fn release(&self, id: JobId, lease_token: i64) -> Result<JobStatus> {
        let now = self.now();
        self.inner
            .store
            .write("release", |tx| finish::release(tx, id, lease_token, now))
    }
}

/// What [`Queue::settle_and_claim`] did: one outcome per completion and per
/// failure, in input order, and the claimed jobs.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub completed: Vec<Result<JobStatus>>,
    pub failed: Vec<Result<JobStatus>>,
    pub released: Vec<Result<JobStatus>>,
    pub claimed: Vec<Job>,
}

/// A fenced statement that was refused (lease lost, job gone) is that entry's
/// outcome; any other error aborts the transaction.
fn refusal_is_an_outcome(r: Result<JobStatus>) -> Result<Result<JobStatus>> {
    match r {
        Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. })) => Ok(Err(e)),
        other => other.map(Ok),
    }
}
