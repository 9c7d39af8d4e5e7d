//! [`Queue`]: the handle every part of jobq uses. Short methods that delegate to
//! the store; each state change is one transaction.

mod admin;
mod bulk;
mod enqueue;
mod ids;
mod lease;
mod named;
mod options;
mod overview;
mod prefetch_support;
mod read;
#[cfg(test)]
mod reserve_tests;
mod schedules;
mod signal;
pub(crate) mod tokens;
mod transfer;
pub(crate) mod validate;
mod workers;

#[doc(hidden)]
pub use prefetch_support::PrefetchRound;

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use crate::catalog::Catalog;
use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::location::Location;
use crate::retry::Backoff;
use crate::store::postgres::{PgOptions, Postgres};
use crate::store::sqlite::{Sqlite, SqliteOptions};
use crate::store::{Backend, Durability};

pub(crate) use crate::store::{CommitWatch, Wake};
pub(crate) use lease::{ClaimSpec, Finished};
pub use options::{QueueOptions, DEFAULT_MAX_PAYLOAD_BYTES};
pub use overview::COUNT_CAP;
pub use signal::Signal;
pub use transfer::MigrateProgress;

/// The most jobs a page of [`Queue::list`] returns.
pub const MAX_PAGE: usize = 500;
/// Jobs recovered or pruned per transaction, so no write lock is held long.
pub(crate) const BATCH: usize = 500;

/// A handle on one queue (a SQLite file or a PostgreSQL database). Cheap to
/// clone; clones share connections.
#[derive(Clone, Debug)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Box<dyn Backend>,
    opts: QueueOptions,
    /// Signals to notify at every enqueue through this handle (idle worker pools).
    listeners: Mutex<Vec<Weak<Signal>>>,
    /// Bumped whenever a cancel through this handle (or a clone) may have
    /// asked a running or reserved job to stop: this process's pools poll their
    /// cancel requests at their next supervisor tick instead of their next
    /// poll (see [`Queue::cancels_requested`]).
    cancels: std::sync::atomic::AtomicU64,
}

impl Queue {
    /// Opens (or creates) the queue at `location` (a SQLite file's path or a
    /// `postgres://` URL) with the default options.
    ///
    /// # Errors
    /// As [`Queue::open_with`].
    pub fn open(location: impl AsRef<Path>) -> Result<Queue> {
        Queue::open_with(QueueOptions::new(location))
    }

    /// Opens (or creates) a queue.
    ///
    /// SQLite: refuses a file that is not a jobq database (text, truncated,
    /// another program's SQLite file) without changing it, creates or upgrades
    /// the schema, and sets WAL, busy_timeout, synchronous and foreign_keys on
    /// every connection, reading each back. PostgreSQL: connects, and creates or
    /// upgrades the `jobq` schema (one process migrates when several start).
    ///
    /// # Errors
    /// [`crate::Error::NotADatabase`], [`crate::Error::Open`] (also a PostgreSQL server that
    /// cannot be reached or a bad URL, and an empty path or `:memory:`: a queue
    /// needs a file its connections share), [`crate::Error::ReadOnly`], or a
    /// database error.
    pub fn open_with(opts: QueueOptions) -> Result<Queue> {
        let backend = open_backend(&opts)?;
        Ok(Queue {
            inner: Arc::new(Inner {
                backend,
                opts,
                listeners: Mutex::new(Vec::new()),
                cancels: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// Where the queue lives. Its `Display` redacts any password.
    pub fn location(&self) -> &Location {
        &self.inner.opts.location
    }

    /// The SQLite database file, or `None` on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        self.inner.opts.location.sqlite_path()
    }

    fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
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

    /// The metrics this queue, its pools and its HTTP server record.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.opts.metrics
    }

    /// The job types this queue accepts and their defaults.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.opts.catalog
    }

    /// The backoff schedule of `job_type` in this queue's catalogue (jobs carry
    /// their own, stored at enqueue; this is for jobs stored without one).
    pub fn backoff(&self, job_type: &str) -> Backoff {
        self.inner.opts.catalog.backoff(job_type)
    }

    /// Tells this process's pools that a cancel may have reached a job one of
    /// them holds (see [`Queue::cancels_requested`]).
    pub(crate) fn notify_cancel(&self) {
        self.inner
            .cancels
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// How many cancels through this queue (any clone of it) may have asked a
    /// running or reserved job to stop: a pool compares it at each supervisor
    /// tick and polls its cancel requests when it changed, so such a cancel
    /// reaches a pool of the same process within a tick (50 ms), not its poll.
    pub(crate) fn cancels_requested(&self) -> u64 {
        self.inner
            .cancels
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wakes this process's pools on this queue (an enqueue, a recovery, a resume, a
    /// hand-back).
    pub(crate) fn notify_enqueued(&self) {
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

    /// A watch for commits by other processes on this queue's database, where
    /// the backend has one (SQLite on Linux: inotify on the WAL file); `None`:
    /// other processes' jobs are found by polling.
    pub(crate) fn watch_commits(&self) -> Option<Box<dyn CommitWatch>> {
        self.backend().watch_commits()
    }

    /// Notifies `signal` at every enqueue (and manual retry or recovery) through
    /// this handle or its clones, until the signal is dropped. Worker pools use it
    /// to start new jobs without a polling delay.
    ///
    /// On PostgreSQL (unless [`QueueOptions::notify`] is off) the first
    /// subscription starts a listener that notifies too when other processes
    /// enqueue.
    pub fn subscribe(&self, signal: &Arc<Signal>) {
        let mut list = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        list.push(Arc::downgrade(signal));
        drop(list);
        let weak = Arc::downgrade(&self.inner);
        self.backend().watch(Arc::new(move || {
            if let Some(inner) = weak.upgrade() {
                Queue { inner }.notify_enqueued();
            }
        }));
    }
}

/// Test support, not part of the API: brings the PostgreSQL database at `url`
/// to schema `version` (upgrade tests build older versions with it).
///
/// # Errors
/// As [`Queue::open`].
#[doc(hidden)]
pub fn postgres_schema_to(url: &str, version: i32) -> Result<()> {
    Postgres::migrate_to(url, version)
}

/// Test support, not part of the API: the PostgreSQL statements of
/// [`Queue::overview`] (the dashboard's home page, the metrics' gauges) as
/// (name, SQL), for the tests that check their query plans.
#[doc(hidden)]
pub fn postgres_overview_statements() -> &'static [(&'static str, &'static str)] {
    &crate::store::postgres::OVERVIEW_STATEMENTS
}

fn open_backend(opts: &QueueOptions) -> Result<Box<dyn Backend>> {
    match &opts.location {
        Location::Sqlite(path) => {
            let sqlite = SqliteOptions {
                durability: opts.durability,
                busy_timeout: opts.busy_timeout,
                readers: opts.readers,
                file_mode: opts.file_mode,
            };
            Ok(Box::new(Sqlite::open(path, sqlite)?))
        }
        Location::Postgres(url) => {
            let pg = PgOptions {
                pool: opts.readers.max(2),
                wait: opts.busy_timeout,
                notify: opts.notify,
                synchronous_commit: opts.durability == Durability::Full,
            };
            Ok(Box::new(Postgres::open(
                url,
                opts.location.redacted(),
                &pg,
            )?))
        }
    }
}
