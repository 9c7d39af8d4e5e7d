//! Storage: everything a [`crate::Queue`] asks of a database, as one interface
//! ([`Backend`]) with one implementation per database. All SQL lives in the
//! implementations (`sqlite/`, `postgres/`), never above this module.
//!
//! Each method is one transaction. Transitions out of `in_progress` are fenced
//! by the attempt's lease token; a refused one is that entry's outcome
//! ([`crate::Error::LeaseLost`] or [`crate::Error::NotFound`]), not the call's.
//! What a failed attempt writes is decided once for every backend
//! ([`plan::plan_failure`]).

pub(crate) mod fold;
pub(crate) mod plan;
pub(crate) mod postgres;
pub(crate) mod sqlite;
pub(crate) mod starts;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobId, JobStatus};
use crate::overview::{BulkAction, Overview, OverviewQuery};
use crate::queues::{LimitsChange, QueueInfo};
use crate::retry::Backoff;
use crate::schedule::ScheduleState;
use crate::state::Move;
use crate::stats::Stats;
use crate::stats::Waiting;
use crate::token::ApiToken;
use crate::transfer::Settings;
use crate::workers::WorkerInfo;

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// An acknowledged write survives power loss (SQLite `synchronous=FULL`).
    /// The default.
    #[default]
    Full,
    /// Survives a process crash; the last commits may be lost on power loss
    /// (SQLite `synchronous=NORMAL`). Several times faster per commit.
    Normal,
}

/// A job ready to insert: validated, with its payload's JSON text.
#[derive(Debug, Clone)]
pub(crate) struct NewRow {
    pub job: Job,
    pub payload: String,
}

/// Claiming as part of a round: up to `n` due jobs of `types` (`None`: any).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim<'a> {
    pub worker: &'a str,
    /// Only these job types, or `None` for any type.
    pub types: Option<&'a [String]>,
    /// Only these queues, or `None` for every queue.
    pub queues: Option<&'a [String]>,
    pub n: usize,
    pub lease_until: Timestamp,
    /// Reserve the jobs for a prefetch buffer (`started_at` stays NULL until
    /// [`Round::starts`] marks them; `lease_until` is then the reservation's
    /// end) instead of starting them.
    pub reserve: bool,
    /// With `reserve`: the pool's idle workers, the most jobs of limited
    /// queues the claim reserves (see `QueueSettings::claimable`).
    pub start_now: usize,
    /// The claim's size read at its moment, after the round's writes (see
    /// [`Claim::sized`]); `n` is then its upper bound.
    pub live: Option<LiveSize<'a>>,
}

/// Reads a claim's size (how many jobs, and `start_now`) at the claim's
/// moment: a prefetching pool's workers keep taking buffered jobs while the
/// round's writes run, so by then the buffer has more room than when the
/// round was taken.
#[derive(Clone, Copy)]
pub(crate) struct LiveSize<'a>(pub &'a dyn Fn() -> (usize, usize));

impl std::fmt::Debug for LiveSize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveSize")
    }
}

impl Claim<'_> {
    /// How many jobs to claim and `start_now`, read now: from [`Claim::live`]
    /// when set (at most `n`), otherwise `n` and `start_now` as given.
    pub fn sized(&self) -> (usize, usize) {
        match self.live {
            Some(LiveSize(live)) => {
                let (n, start_now) = live();
                (n.min(self.n), start_now)
            }
            None => (self.n, self.start_now),
        }
    }
}

/// A worker pool's round: finished attempts to write and jobs to claim, in ONE
/// transaction.
pub(crate) struct Round<'a> {
    /// Reserved jobs a worker has started (id, lease token, start time): marked
    /// started, their leases held until `started_until`. Written first, except
    /// the start of a job completed in this round, which its completion writes
    /// (see [`starts`]).
    pub starts: &'a [(JobId, i64, Timestamp)],
    pub started_until: Timestamp,
    /// Reserved jobs that never started (id, lease token, the claim round's
    /// time), given back: pending in their old place, the attempt not counted
    /// (cancelled if one was requested), and the start their claim recorded
    /// in a rate-limited queue's window (at the claim's time) forgotten.
    pub unstarted: &'a [(JobId, i64, Timestamp)],
    /// Completions: id, lease token, the result's JSON text.
    pub done: &'a [(JobId, i64, String)],
    /// Failed attempts.
    pub failed: &'a [(JobId, i64, Failure)],
    /// Attempts handed back (shutdown): pending again, the attempt not counted.
    pub released: &'a [(JobId, i64)],
    /// Attempts that snoozed: pending again after the delay, the attempt not
    /// counted, `snoozes + 1` (failed once [`crate::state::MAX_SNOOZES`] is reached).
    pub snoozed: &'a [(JobId, i64, std::time::Duration)],
    pub claim: Option<Claim<'a>>,
    /// The schedule of jobs stored without one.
    pub backoff_for: &'a dyn Fn(&str) -> Backoff,
    pub now: Timestamp,
}

/// What a round did: one outcome per entry, in input order, and the claimed jobs.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub started: Vec<Result<()>>,
    pub unstarted: Vec<Result<JobStatus>>,
    pub completed: Vec<Result<JobStatus>>,
    pub failed: Vec<Result<JobStatus>>,
    pub released: Vec<Result<JobStatus>>,
    pub snoozed: Vec<Result<JobStatus>>,
    pub claimed: Vec<Job>,
}

/// A job a recovery took back (an expired lease, or a dead pool's job
/// recovered by hand), with its status after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub id: JobId,
    pub status: JobStatus,
    /// It was reserved (prefetched, never started): handed back unstarted,
    /// its attempt not counted. Else a started attempt that was lost.
    pub reserved: bool,
}

impl Recovered {
    /// A started attempt taken back (counted as a failed attempt).
    pub fn attempt(id: JobId, status: JobStatus) -> Recovered {
        Recovered {
            id,
            status,
            reserved: false,
        }
    }

    /// A reservation taken back: the job never started.
    pub fn reservation(id: JobId, status: JobStatus) -> Recovered {
        Recovered {
            id,
            status,
            reserved: true,
        }
    }
}

/// One batch of a change to every job matching a filter: the next `limit`
/// eligible jobs in enqueue order (see [`Backend::find`]) after `after`, created
/// no later than `until` (so jobs enqueued meanwhile are left alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BulkBatch<'a> {
    pub action: BulkAction,
    pub filter: &'a JobFilter,
    pub after: Option<Cursor>,
    pub until: Timestamp,
    pub limit: usize,
    pub now: Timestamp,
}

/// What a bulk batch did: how many jobs it changed, and where the next batch
/// starts (`None`: no eligible job is left).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BulkDone {
    pub changed: usize,
    pub next: Option<Cursor>,
}

/// What firing a schedule writes.
#[derive(Debug, Default)]
pub(crate) struct FirePlan {
    /// The fire time to record as handled (never moves back).
    pub record: Option<Timestamp>,
    /// The job to enqueue.
    pub row: Option<NewRow>,
}

/// What a [`CommitWatch::wait`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The database may have changed (another process may have committed).
    Changed,
    /// Nothing seen before the timeout.
    Quiet,
    /// [`CommitWatch::interrupt`] was called: the watch is done.
    Stopped,
}

/// Waits for commits by other processes: a hint that lets an idle pool claim
/// at once instead of at its next poll. It may also report this process's own
/// commits, and may miss none that polling would find later.
pub(crate) trait CommitWatch: Send + Sync {
    /// Blocks until a commit may have happened, `timeout` passes or the watch
    /// is interrupted.
    fn wait(&self, timeout: Duration) -> Wake;
    /// Ends the current and every later [`CommitWatch::wait`] with [`Wake::Stopped`].
    fn interrupt(&self);
    /// Stops watching until [`CommitWatch::resume`], for a pool whose workers
    /// are all busy (their rounds claim anyway): a watch may cost every write
    /// of this process something (inotify's, about 5 % of a 4-worker no-op
    /// drain). Commits meanwhile are not reported.
    fn pause(&self) {}
    /// Watches again after [`CommitWatch::pause`]. Returns true when the watch
    /// was paused: the caller must then claim once more, in a write
    /// transaction, before it waits (see `coordinator.rs`), because a commit
    /// whose writes came while the watch was paused is never reported.
    fn resume(&self) -> bool {
        false
    }
}

/// Everything the queue asks of a database. Every method is one transaction.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// A watch for other processes' commits, where the database offers one
    /// cheaply (`None`: pools find other processes' jobs by polling). Not a transaction.
    fn watch_commits(&self) -> Option<Box<dyn CommitWatch>> {
        None
    }
    /// Inserts jobs in one transaction, all or none (a duplicate is not an
    /// error). Per row: `None` when inserted; the job holding its unique key
    /// when that refused it (a row may be refused by an earlier row of `rows`).
    fn insert(&self, rows: &[NewRow]) -> Result<Vec<Option<Job>>>;
    /// Writes a round's finished attempts and claims.
    fn settle_and_claim(&self, round: Round<'_>) -> Result<Settled>;
    /// Extends leases to `until`; per entry, whether a cancel was requested.
    fn heartbeat(
        &self,
        held: &[(JobId, i64)],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Result<bool>>>;
    /// Stores a progress report (JSON text) on a job whose lease is held.
    fn progress(&self, id: JobId, token: i64, report: &str, now: Timestamp) -> Result<()>;
    /// Ids of `worker`'s running jobs with a cancel request.
    fn cancel_requests(&self, worker: &str) -> Result<Vec<JobId>>;
    /// The queues paused at `now`, by name (a prefetching pool hands their
    /// reserved jobs back).
    fn paused_queues(&self, now: Timestamp) -> Result<Vec<String>>;
    /// Cancels (pending), requests a cancel (running), or accepts (cancelled).
    fn cancel(&self, id: JobId, now: Timestamp) -> Result<Move>;
    /// Manual retry: failed or cancelled to pending, attempts 0, due now.
    fn retry(&self, id: JobId, now: Timestamp) -> Result<()>;
    /// Recovers up to `limit` jobs whose lease expired before `now`.
    fn recover_expired(
        &self,
        now: Timestamp,
        limit: usize,
        backoff_for: &dyn Fn(&str) -> Backoff,
    ) -> Result<Vec<Recovered>>;
    /// Hands back at once every job `worker` holds in progress (its process is
    /// dead): a failed attempt with the retryable error `message`; a job going
    /// back to pending keeps its place in the run order.
    fn recover_worker(
        &self,
        worker: &str,
        message: &str,
        now: Timestamp,
        backoff_for: &dyn Fn(&str) -> Backoff,
    ) -> Result<Vec<Recovered>>;
    /// Records (or refreshes) a live pool: the types and queues it serves.
    fn register_worker(
        &self,
        id: &str,
        types: &[String],
        queues: Option<&[String]>,
        now: Timestamp,
    ) -> Result<()>;
    /// Beats a pool's heartbeat; forgets pools silent since before
    /// `forget_before` that hold no job. Returns false when the pool has no
    /// row to beat (it was forgotten or recovered by hand while it lived).
    fn beat_worker(&self, id: &str, now: Timestamp, forget_before: Timestamp) -> Result<bool>;
    /// Forgets a pool (clean shutdown).
    fn remove_worker(&self, id: &str) -> Result<()>;
    /// Every recorded pool; alive when its heartbeat is after `fresh_after`.
    fn workers(&self, fresh_after: Timestamp) -> Result<Vec<WorkerInfo>>;
    /// The workers (`locked_by`) holding jobs in progress.
    fn running_workers(&self) -> Result<Vec<String>>;
    /// Pending jobs by type and queue at `now`.
    fn waiting(&self, now: Timestamp) -> Result<Vec<Waiting>>;
    /// Deletes up to `limit` jobs in `statuses` (final ones) finished before `cutoff`.
    fn prune(&self, statuses: &[JobStatus], cutoff: Timestamp, limit: usize) -> Result<usize>;
    /// One job.
    fn get(&self, id: JobId) -> Result<Job>;
    /// Ids of jobs with `low <= id <= high`, descending (newest first, as
    /// [`Backend::list`]), at most `limit` of them:
    /// the jobs whose id starts with a prefix, given the prefix's bounds
    /// ([`crate::IdPrefix::bounds`]). Ids compare as the UUIDs' 16 bytes, which
    /// is also the order of their hyphenated lower-case text, so a range scan on
    /// the primary key answers it (a text `id` column or a native `uuid` one).
    fn ids_between(&self, low: JobId, high: JobId, limit: usize) -> Result<Vec<JobId>>;
    /// A page of jobs, newest first, and how many match in all.
    fn list(
        &self,
        filter: &JobFilter,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Job>, u64)>;
    /// The counts at `now`.
    fn stats(&self, now: Timestamp) -> Result<Stats>;
    /// A page of jobs matching `filter`, newest first, after `cursor`. Newest first is
    /// `created_at`, then id (PostgreSQL); SQLite orders by the id alone, which is the
    /// same for every job made by jobq from schema version 9 on (a job's UUID v7 id
    /// carries its `created_at`); no total. Must use indexes for the filter's fields where it can
    /// (the dashboard's first page is read on every visit).
    fn find(&self, filter: &JobFilter, cursor: Option<Cursor>, limit: usize) -> Result<Vec<Job>>;
    /// How many jobs match `filter`, counting no further than `limit` (so the
    /// cost is bounded by `limit` index entries, not by the history).
    fn count_up_to(&self, filter: &JobFilter, limit: u64) -> Result<u64>;
    /// The dashboard's snapshot, in one read transaction; see [`Overview`]
    /// for each part and [`OverviewQuery`] for the bounds every part keeps.
    fn overview(&self, query: &OverviewQuery) -> Result<Overview>;
    /// One batch of a bulk retry or cancel, in one write transaction; each job
    /// moves as its single-job call would (see [`crate::state`]).
    fn bulk(&self, batch: &BulkBatch<'_>) -> Result<BulkDone>;
    /// How many jobs the whole bulk change of `batch` (every batch from its
    /// start, `after` and `limit` aside) would move now; one read.
    fn bulk_count(&self, batch: &BulkBatch<'_>) -> Result<u64>;
    /// A trivial read.
    fn ping(&self) -> Result<()>;
    /// Every queue that is stored, has pending or running jobs, or is in `known`,
    /// with its counts and settings at `now`, sorted by name.
    fn queue_infos(&self, known: &[String], now: Timestamp) -> Result<Vec<QueueInfo>>;
    /// Changes a queue's limits (stored for every process).
    fn set_queue_limits(&self, queue: &str, change: LimitsChange, now: Timestamp) -> Result<()>;
    /// Pauses a queue until `until` (`None`: until resumed).
    fn pause_queue(&self, queue: &str, until: Option<Timestamp>, now: Timestamp) -> Result<()>;
    /// Resumes a paused queue.
    fn resume_queue(&self, queue: &str, now: Timestamp) -> Result<()>;
    /// Every schedule's stored state, by name.
    fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>>;
    /// In one transaction: reads schedule `name`'s last fire time, asks `plan`
    /// what to do, inserts its job (a duplicate of a unique fire time inserts
    /// nothing) and records the fire time handled and the job. Returns the job
    /// and whether it was a duplicate, when `plan` gave one.
    fn fire_schedule(
        &self,
        name: &str,
        now: Timestamp,
        plan: &dyn Fn(Option<Timestamp>) -> Result<FirePlan>,
    ) -> Result<Option<(Job, bool)>>;
    /// Stores a token's hash; returns its id.
    fn insert_token(&self, user: &str, admin: bool, hash: &str, now: Timestamp) -> Result<i64>;
    /// Tokens (of `user`), oldest first.
    fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>>;
    /// Revokes the live token `id`; returns how many (0 or 1).
    fn revoke_token(&self, id: i64, now: Timestamp) -> Result<usize>;
    /// Revokes every live token of `user`; returns how many.
    fn revoke_user_tokens(&self, user: &str, now: Timestamp) -> Result<usize>;
    /// The live token with this hash, and the stored hash.
    fn token_by_hash(&self, hash: &str) -> Result<Option<(ApiToken, String)>>;
    /// Up to `limit` jobs in id order after `after` (`None`: from the first),
    /// every column as stored: a page of a move to another database.
    fn export_jobs(&self, after: Option<JobId>, limit: usize) -> Result<Vec<Job>>;
    /// Inserts `jobs` exactly as given (every column: status, lease, fencing
    /// token, unique key, history) in one transaction, all or none.
    fn import_jobs(&self, jobs: &[Job]) -> Result<()>;
    /// Every token, queue-settings and schedule row, in one read transaction.
    fn export_settings(&self) -> Result<Settings>;
    /// Inserts token, queue-settings and schedule rows as given (token ids
    /// kept; new tokens get later ids) in one transaction, all or none.
    fn import_settings(&self, settings: &Settings) -> Result<()>;
    /// Calls `wake` whenever another process may have made a job due (an
    /// enqueue, a retry), for as long as the backend lives. Backends without
    /// such notifications do nothing: their pools poll.
    fn watch(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let _ = wake;
    }
}

/// A fenced statement that was refused (lease lost, job gone) is that entry's
/// outcome; any other error aborts the transaction.
pub(crate) fn refusal_is_an_outcome<T>(r: Result<T>) -> Result<Result<T>> {
    match r {
        Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. })) => Ok(Err(e)),
        other => other.map(Ok),
    }
}
