//! [`QueueOptions`]: where a queue lives, how it opens it, and the limits it enforces.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::clock::{Clock, SystemClock};
use crate::location::Location;
use crate::metrics::Metrics;
use crate::store::Durability;

/// The default payload limit: 1 MiB of serialized JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Settings for [`crate::Queue::open_with`]. Build with [`QueueOptions::new`] and the setters.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// The database: a SQLite file (created when missing) or a PostgreSQL
    /// database (its `jobq` schema created when missing).
    pub location: Location,
    /// How hard commits are pushed to disk. Default [`Durability::Full`]. On
    /// PostgreSQL, `Normal` sets `synchronous_commit = off` on jobq's connections.
    pub durability: Durability,
    /// How long a statement waits for another process's write lock (SQLite);
    /// on PostgreSQL, how long a call waits for a connection (and a connect for
    /// the server) before failing with [`crate::Error::Unavailable`]. Default 5 s.
    pub busy_timeout: Duration,
    /// The largest serialized payload accepted, in bytes. Default 1 MiB.
    pub max_payload_bytes: usize,
    /// `max_attempts` of jobs enqueued without one. Default 5.
    pub default_max_attempts: u32,
    /// Read connections in the pool (SQLite); on PostgreSQL, connections in
    /// the pool (at least 2). Default 4.
    pub readers: u32,
    /// PostgreSQL only: wake worker pools of other processes with LISTEN/NOTIFY.
    /// Default true. Set false (poll only) behind a connection pooler in
    /// transaction mode (PgBouncer), where LISTEN does not work.
    pub notify: bool,
    /// Where "now" comes from. Default the system clock.
    pub clock: Arc<dyn Clock>,
    /// The job types accepted and their defaults. Default
    /// [`Catalog::any_type`]: any valid type, with the library defaults.
    pub catalog: Catalog,
    /// Permission bits of a database file created by this open (its `-wal` and
    /// `-shm` get the same), before the umask. Default `0o600`: owner only, since
    /// the file holds payloads, results and token hashes. An existing file's mode
    /// is left alone (with a warning when other users can read it).
    pub file_mode: u32,
    /// Where this queue's handle and its worker pools and HTTP server record
    /// their metrics. Default: new, empty metrics for this open.
    pub metrics: Metrics,
}

impl QueueOptions {
    /// The defaults, for the database at `location`: a SQLite file's path (or
    /// `sqlite:PATH`), or a `postgres://` URL (see [`Location::parse`]).
    pub fn new(location: impl AsRef<Path>) -> QueueOptions {
        QueueOptions {
            location: Location::parse(location),
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            default_max_attempts: 5,
            readers: 4,
            notify: true,
            clock: Arc::new(SystemClock),
            catalog: Catalog::any_type(),
            file_mode: 0o600,
            metrics: Metrics::new(),
        }
    }

    /// Sets the durability.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Sets the busy timeout.
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Sets the payload limit in bytes.
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.max_payload_bytes = n;
        self
    }

    /// Sets the default `max_attempts` (at least 1).
    pub fn default_max_attempts(mut self, n: u32) -> Self {
        self.default_max_attempts = n.max(1);
        self
    }

    /// Sets the permission bits of a newly created database file.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode & 0o777;
        self
    }

    /// Sets the connections in the pool (at least 1; PostgreSQL at least 2).
    pub fn readers(mut self, n: u32) -> Self {
        self.readers = n.max(1);
        self
    }

    /// Turns LISTEN/NOTIFY wake-ups on or off (PostgreSQL).
    pub fn notify(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }

    /// Sets the catalogue of job types.
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}
