//! [`Queue`]: the handle every part of jobq uses. Short methods that delegate to
//! the store; each state change is one transaction.

mod options;
mod signal;
pub(crate) mod tokens;
pub(crate) mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::job::{Job, JobId, JobStatus, NewJob};
use crate::retry::Backoff;
use crate::state::Move;
use crate::store::read::Cursor;
use crate::store::{admin, claim, enqueue, finish, read, ConnSettings, Store};

pub use crate::store::read::{JobFilter, PendingCounts, Stats, StatusCounts};
pub use options::{QueueOptions, DEFAULT_MAX_PAYLOAD_BYTES};
pub use signal::Signal;
pub use tokens::{secrets_match, sha256_hex, ApiToken, CreatedToken, TOKEN_PREFIX};
pub use validate::validate_job_type;

/// The most jobs a page of [`Queue::list`] returns.
pub const MAX_PAGE: usize = 500;
/// Jobs recovered or pruned per transaction, so no write lock is held long.
const BATCH: usize = 500;

/// A page of jobs from [`Queue::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// How many jobs match the filter in all.
    pub total: u64,
}

/// A handle on one queue file. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    opts: QueueOptions,
    backoffs: RwLock<HashMap<String, Backoff>>,
    /// Signals to notify at every enqueue through this handle (idle worker pools).
    listeners: Mutex<Vec<Weak<Signal>>>,
}

impl Queue {
    /// Opens (or creates) the queue at `path` with the default options.
    ///
    /// # Errors
    /// As [`Queue::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Queue> {
        Queue::open_with(QueueOptions::new(path))
    }

    /// Opens (or creates) a queue: refuses a file that is not a jobq database
    /// (text, truncated, another program's SQLite file) without changing it,
    /// creates or upgrades the schema, and sets WAL, busy_timeout, synchronous and
    /// foreign_keys on every connection, reading each back.
    ///
    /// # Errors
    /// [`Error::NotADatabase`], [`Error::Open`], [`Error::ReadOnly`], or a database error.
    pub fn open_with(opts: QueueOptions) -> Result<Queue> {
        let settings = ConnSettings {
            durability: opts.durability,
            busy_timeout: opts.busy_timeout,
            access: crate::store::Access::ReadWrite,
        };
        let store = Store::open(&opts.path, settings, opts.readers)?;
        Ok(Queue {
            inner: Arc::new(Inner {
                store,
                opts,
                backoffs: RwLock::new(HashMap::new()),
                listeners: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// The options the queue was opened with.
    pub fn options(&self) -> &QueueOptions {
        &self.inner.opts
    }

    /// The current time of the queue's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.opts.clock.now()
    }

    /// The queue's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.opts.clock.clone()
    }

    /// Sets the backoff schedule of `job_type` (used by `fail` and recovery in
    /// this process). Types without one use [`Backoff::default`].
    pub fn set_backoff(&self, job_type: &str, backoff: Backoff) {
        let mut map = self
            .inner
            .backoffs
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(job_type.to_string(), backoff);
    }

    /// The backoff schedule of `job_type`.
    pub fn backoff(&self, job_type: &str) -> Backoff {
        let map = self
            .inner
            .backoffs
            .read()
            .unwrap_or_else(|p| p.into_inner());
        map.get(job_type).cloned().unwrap_or_default()
    }

    /// Enqueues one job (one autocommit INSERT) and wakes an idle worker of this
    /// process. Returns the stored job.
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::PayloadTooLarge`], [`Error::Busy`],
    /// [`Error::DiskFull`], [`Error::ReadOnly`], or a database error.
    pub fn enqueue(&self, new: NewJob) -> Result<Job> {
        let (job, payload) = validate::build(new, self.now(), &self.inner.opts)?;
        self.inner.store.write_autocommit(|c| {
            enqueue::insert(c, &job, &payload).map_err(Error::db("enqueue"))
        })?;
        self.notify_enqueued();
        Ok(job)
    }

    /// Checks a job request as [`Queue::enqueue`] would, writing nothing (used to
    /// validate a whole batch and name the first bad entry in the caller's terms).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field, or [`Error::PayloadTooLarge`].
    pub fn check(&self, new: &NewJob) -> Result<()> {
        validate::build(new.clone(), self.now(), &self.inner.opts).map(|_| ())
    }

    /// Enqueues many jobs in one transaction: all or none. Every job is validated
    /// before anything is written. Returns the ids in input order.
    ///
    /// # Errors
    /// As [`Queue::enqueue`]; a validation error names the index of the first bad job
    /// in its reason (`job 3: ...`).
    pub fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let now = self.now();
        let mut built = Vec::with_capacity(jobs.len());
        for (i, new) in jobs.into_iter().enumerate() {
            built.push(validate::build(new, now, &self.inner.opts).map_err(|e| at_index(i, e))?);
        }
        let ids = self.inner.store.write("enqueue_many", |tx| {
            for (job, payload) in &built {
                enqueue::insert(tx, job, payload).map_err(Error::db("enqueue_many"))?;
            }
            Ok(built.iter().map(|(j, _)| j.id).collect())
        })?;
        self.notify_enqueued();
        Ok(ids)
    }

    fn notify_enqueued(&self) {
        let mut list = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        list.retain(|w| match w.upgrade() {
            Some(signal) => {
                signal.notify();
                true
            }
            None => false,
        });
    }

    /// Notifies `signal` at every enqueue (and manual retry or recovery) through
    /// this handle or its clones, until the signal is dropped. Worker pools use it
    /// to start new jobs without a polling delay.
    pub fn subscribe(&self, signal: &Arc<Signal>) {
        let mut list = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        list.push(Arc::downgrade(signal));
    }

    /// Reads one job.
    ///
    /// # Errors
    /// [`Error::NotFound`], or a database error.
    pub fn get(&self, id: JobId) -> Result<Job> {
        self.inner.store.read("get", |c| read::get(c, id))
    }

    /// Lists jobs newest first (by `created_at`, then id), `limit` at a time (1-500),
    /// after `cursor` (from the previous page's `next_cursor`). Keyset pagination:
    /// pages never repeat or skip a job while others are inserted.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad cursor or limit; database errors.
    pub fn list(&self, filter: &JobFilter, limit: usize, cursor: Option<&str>) -> Result<JobPage> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::Invalid {
                field: "limit",
                reason: format!("must be 1-{MAX_PAGE}"),
            });
        }
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let (jobs, total) = self
            .inner
            .store
            .read("list", |c| read::list(c, filter, cursor, limit))?;
        let next_cursor = (jobs.len() == limit)
            .then(|| jobs.last())
            .flatten()
            .map(|j| {
                Cursor {
                    created_at: j.created_at.0,
                    id: j.id,
                }
                .encode()
            });
        Ok(JobPage {
            jobs,
            next_cursor,
            total,
        })
    }

    /// Counts by status, by type and status, and pending split into ready,
    /// scheduled and retrying, from one snapshot.
    ///
    /// # Errors
    /// Database errors.
    pub fn stats(&self) -> Result<Stats> {
        let now = self.now();
        self.inner.store.read("stats", |c| read::stats(c, now))
    }

    /// Answers when the database answers a trivial read.
    ///
    /// # Errors
    /// Database errors.
    pub fn ping(&self) -> Result<()> {
        self.inner.store.read("ping", |c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(Error::db("ping"))
        })
    }

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
        if done.is_empty() && n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let texts: Vec<String> = done.iter().map(|(_, _, v)| v.to_string()).collect();
        let types = types.map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into()));
        let now = self.now();
        self.inner.store.write("complete_and_claim", |tx| {
            let mut out = Vec::with_capacity(done.len());
            for ((id, token, _), text) in done.iter().zip(&texts) {
                match finish::complete(tx, *id, *token, text, now) {
                    Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. })) => out.push(Err(e)),
                    other => out.push(Ok(other?)),
                }
            }
            let claimed = if n > 0 {
                claim::claim(tx, worker, types.as_deref(), n, now, now.plus(lease))?
            } else {
                Vec::new()
            };
            Ok((out, claimed))
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

    /// Cancels a job: a pending one ends `cancelled`; a running one gets a cancel
    /// request (its handler sees it; it ends `cancelled` when the handler returns);
    /// a cancelled one is left as is. Returns the job after the change.
    ///
    /// # Errors
    /// [`Error::Conflict`] for completed and failed jobs, [`Error::NotFound`].
    pub fn cancel(&self, id: JobId) -> Result<Job> {
        let now = self.now();
        let mv = self
            .inner
            .store
            .write("cancel", |tx| admin::cancel(tx, id, now))?;
        if mv == Move::RequestCancel {
            log::info!("cancel requested for running job {id}");
        }
        self.get(id)
    }

    /// Manual retry: a failed or cancelled job becomes `pending`, due now, with
    /// `attempts = 0`; its error history stays. Returns the job after the change.
    ///
    /// # Errors
    /// [`Error::Conflict`] for any other status, [`Error::NotFound`].
    pub fn retry(&self, id: JobId) -> Result<Job> {
        let now = self.now();
        self.inner
            .store
            .write("retry", |tx| admin::retry(tx, id, now))?;
        self.notify_enqueued();
        self.get(id)
    }

    /// Recovers every running job whose lease expired: each counts as a failed
    /// attempt with the retryable error "lease expired" (pending after backoff, or
    /// failed when no attempts are left). Safe in any process at any time. Returns
    /// how many jobs were recovered.
    ///
    /// # Errors
    /// Database errors.
    pub fn recover_expired(&self) -> Result<usize> {
        let backoff_for = |t: &str| self.backoff(t);
        let mut total = 0;
        loop {
            let now = self.now();
            let done = self.inner.store.write("recover", |tx| {
                finish::recover_expired(tx, &backoff_for, now, BATCH)
            })?;
            for (id, status) in &done {
                log::warn!("recovered job {id} after its lease expired: now {status}");
            }
            total += done.len();
            if done.len() < BATCH {
                if total > 0 {
                    self.notify_enqueued();
                }
                return Ok(total);
            }
        }
    }

    /// Deletes jobs in `statuses` that finished more than `older_than` ago.
    /// Only final statuses (completed, failed, cancelled) may be pruned. Deletes in
    /// batches of 500 per transaction. Returns how many were deleted.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a non-final status; database errors.
    pub fn prune(&self, older_than: Duration, statuses: &[JobStatus]) -> Result<u64> {
        if let Some(s) = statuses.iter().find(|s| !s.is_final()) {
            return Err(Error::Invalid {
                field: "status",
                reason: format!("{s} jobs cannot be pruned (only completed, failed, cancelled)"),
            });
        }
        let cutoff = self.now().minus(older_than);
        let mut total = 0u64;
        loop {
            let n = self.inner.store.write("prune", |tx| {
                admin::prune_batch(tx, statuses, cutoff, BATCH)
            })?;
            total += n as u64;
            if n < BATCH {
                return Ok(total);
            }
        }
    }
}

fn at_index(i: usize, e: Error) -> Error {
    match e {
        Error::Invalid { field, reason } => Error::Invalid {
            field,
            reason: format!("job {i}: {reason}"),
        },
        other => other,
    }
}
