//! [`QueueOptions`]: how a queue opens its file and the limits it enforces.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::store::Durability;

/// The default payload limit: 1 MiB of serialized JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Settings for [`crate::Queue::open_with`]. Build with [`QueueOptions::new`] and the setters.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// The database file. Created when missing.
    pub path: PathBuf,
    /// `synchronous` level. Default [`Durability::Full`].
    pub durability: Durability,
    /// How long a statement waits for another process's write lock. Default 5 s.
    pub busy_timeout: Duration,
    /// The largest serialized payload accepted, in bytes. Default 1 MiB.
    pub max_payload_bytes: usize,
    /// `max_attempts` of jobs enqueued without one. Default 5.
    pub default_max_attempts: u32,
    /// Read connections in the pool. Default 4.
    pub readers: u32,
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
    /// The defaults, for the file at `path`.
    pub fn new(path: impl AsRef<Path>) -> QueueOptions {
        QueueOptions {
            path: path.as_ref().to_path_buf(),
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            default_max_attempts: 5,
            readers: 4,
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
