//! [`WorkerPool`]: starts the threads, reports counters, shuts down gracefully
//! (the shutdown itself is in `shutdown.rs`).
//!
//! One coordinator thread writes finished attempts and claims jobs for idle
//! workers in one transaction; `workers` threads run handlers; one supervisor
//! thread heartbeats, polls cancel requests, enforces timeouts and recovers
//! expired leases.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::queue::{Queue, Signal};
use crate::worker::coordinator::coordinator_loop;
use crate::worker::shared::Shared;
use crate::worker::supervisor::supervisor_loop;
use crate::worker::thread::worker_loop;
use crate::worker::watcher::watcher_loop;
use crate::worker::{Registry, WorkerConfig};

/// Counters of a pool since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Jobs claimed and started.
    pub started: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Attempts failed and retried later.
    pub retried: u64,
    /// Jobs ended failed or cancelled.
    pub failed: u64,
    /// Started jobs handed back to pending at shutdown.
    pub released: u64,
    /// Attempts that snoozed (run again later without using an attempt).
    pub snoozed: u64,
    /// Reserved jobs (see [`WorkerConfig::prefetch`]) handed back unstarted,
    /// their attempts not counted: at shutdown, when their queue was paused
    /// or the pool stalled for `prefetch_ttl` (pending again), or after a
    /// cancel request (cancelled). Never in `started`.
    pub given_back: u64,
}

/// Adds another pool's (or pass's) counts, field by field: what `jobq work
/// --drain --wait` reports over its passes.
impl std::ops::AddAssign for PoolCounts {
    fn add_assign(&mut self, o: PoolCounts) {
        self.started += o.started;
        self.completed += o.completed;
        self.retried += o.retried;
        self.failed += o.failed;
        self.released += o.released;
        self.snoozed += o.snoozed;
        self.given_back += o.given_back;
    }
}

impl std::fmt::Display for PoolCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} started, {} completed, {} retried, {} snoozed, {} failed or cancelled, {} handed back, \
             {} reserved handed back unstarted",
            self.started,
            self.completed,
            self.retried,
            self.snoozed,
            self.failed,
            self.released,
            self.given_back
        )
    }
}

/// A running pool of worker threads. Dropping it without [`WorkerPool::shutdown`]
/// shuts it down with no grace.
pub struct WorkerPool {
    pub(super) shared: Arc<Shared>,
    pub(super) threads: Vec<JoinHandle<()>>,
    pub(super) coordinator: Option<JoinHandle<()>>,
    pub(super) supervisor: Option<JoinHandle<()>>,
    pub(super) watcher: Option<JoinHandle<()>>,
    /// The count of due jobs this pool does not serve, logged beside its start.
    pub(super) unserved: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("worker_id", &self.shared.config.worker_id)
            .field("workers", &self.shared.config.workers)
            .finish()
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|source| crate::Error::Thread {
            what: "worker pool",
            source,
        })
}

impl WorkerPool {
    /// Recovers expired leases, then starts the threads. The pool claims only the
    /// registry's job types, never more jobs than it has idle workers, and wakes at
    /// once for enqueues through `queue` (other processes' jobs: by polling).
    ///
    /// # Errors
    /// Database errors from the first recovery that waiting does not mend
    /// (busy, a full disk or an unreachable server are logged, and recovery
    /// runs again after `recovery_interval`); [`crate::Error::ReadOnly`] when
    /// the database opened read-only (a pool must write its claims), and any
    /// other database error that waiting does not mend met while registering
    /// the pool (a file that reports itself damaged: busy, a full disk or an
    /// unreachable server are only logged);
    /// [`crate::Error::Invalid`] for settings [`WorkerConfig::validate`]
    /// refuses (before anything is written); [`crate::Error::Thread`] when
    /// the system refuses a thread: the threads already started are stopped
    /// and the jobs they claimed handed back before it returns.
    pub fn start(queue: Queue, registry: Registry, config: WorkerConfig) -> Result<WorkerPool> {
        config.validate()?;
        match queue.recover_expired() {
            // Busy (another connection holds the write lock), a full disk or
            // an unreachable server pass with time: the pool starts, and its
            // recovery runs again every `recovery_interval`.
            Err(e) if e.is_transient() => log::warn!(
                "could not recover expired leases at start ({e}); trying again in {:?}",
                config.recovery_interval
            ),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // Both are advisory for this pool (limits are re-read at every claim, the
        // registry only informs): a full disk must not stop the pool starting.
        if let Err(e) = queue.apply_declared_queues() {
            log::warn!("could not write the declared queue limits: {e}");
        }
        let types = registry.types();
        match queue.register_pool(&config.worker_id, &types, config.queues.as_deref()) {
            // A pool on a database it cannot write would only retry its claims
            // forever (and a draining one never end), and one that reports
            // itself damaged must not be written on quietly: refused at start.
            // Busy, a full disk or a refused value only delay the listing.
            Err(e) if e.is_lasting() => return Err(e),
            Err(e) => log::warn!("could not register the worker pool: {e}"),
            Ok(()) => {}
        }
        let unserved = log_unserved_beside(&queue, types, config.queues.clone());
        let signal = Arc::new(Signal::new());
        queue.subscribe(&signal);
        let queue_watch = queue.watch_commits().map(Arc::from);
        let shared = Arc::new(Shared::new(queue, registry, config, signal, queue_watch));
        let mut pool = WorkerPool {
            shared,
            threads: Vec::new(),
            coordinator: None,
            supervisor: None,
            watcher: None,
            unserved,
        };
        if let Err(e) = pool.spawn_threads() {
            log::error!(
                "worker pool {}: {e}; stopping the threads already started",
                pool.shared.config.worker_id
            );
            pool.stop(Duration::ZERO);
            return Err(e);
        }
        let shared = &pool.shared;
        log::log!(
            shared.lifecycle_level(),
            "worker pool {} started: {} workers, prefetch {}, for {:?} in {}",
            shared.config.worker_id,
            shared.config.workers,
            shared.config.prefetch,
            shared.types,
            shared
                .config
                .queues
                .as_ref()
                .map_or("every queue".to_string(), |q| format!("queues {q:?}"))
        );
        Ok(pool)
    }

    /// Starts the worker threads, the coordinator, the supervisor and the
    /// watcher; stops at the first the system refuses.
    fn spawn_threads(&mut self) -> Result<()> {
        for _ in 0..self.shared.config.workers {
            let s = self.shared.clone();
            self.threads
                .push(spawn("jobq-worker", move || worker_loop(s))?);
        }
        let s = self.shared.clone();
        self.coordinator = Some(spawn("jobq-coordinator", move || coordinator_loop(s))?);
        let s = self.shared.clone();
        self.supervisor = Some(spawn("jobq-supervisor", move || supervisor_loop(s))?);
        if let Some(w) = self.shared.watch.clone() {
            let s = self.shared.clone();
            self.watcher = Some(spawn("jobq-watcher", move || watcher_loop(s, w))?);
        }
        Ok(())
    }

    /// This pool's worker id (as in `locked_by`).
    pub fn worker_id(&self) -> &str {
        &self.shared.config.worker_id
    }

    /// True once the pool has stopped claiming and every job it ran is written:
    /// in drain mode, when nothing was due and nothing running.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// True while none of the pool's workers runs a job: every job it holds
    /// has returned (its outcome may be still unwritten) or waits in the
    /// pool's buffer for a free worker, unstarted by it (prefetched, or
    /// claimed a moment ago). A graceful [`WorkerPool::shutdown`] now
    /// interrupts no handler (it writes the outcomes and hands the buffer
    /// back). The pool may start a job a moment later.
    pub fn is_idle(&self) -> bool {
        let st = self.shared.state();
        st.running.values().all(|r| r.done || r.started.is_none())
    }

    /// Blocks until the pool has finished (see [`WorkerPool::is_finished`]) or
    /// `timeout` passes. Returns whether it finished.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = crate::worker::instant_after(timeout);
        loop {
            let seen = self.shared.exited.generation();
            if self.is_finished() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.shared
                .exited
                .wait(seen, left.min(Duration::from_millis(100)));
        }
    }

    /// Why a pool in drain mode stopped before it drained: the text of a
    /// database error that does not pass with time (a corrupt or read-only
    /// file, a refused permission; not busy, disk full or an unreachable
    /// server, which are retried every second as in any pool), met by a
    /// claim, the pool's heartbeat or a schedule's firing. `None` while
    /// it runs or when it drained. Its unwritten outcomes come back when
    /// their leases expire.
    pub fn drain_error(&self) -> Option<String> {
        self.shared.state().ended_by.clone()
    }

    /// The pool's counters so far.
    pub fn counts(&self) -> PoolCounts {
        self.shared.state().counts
    }

    /// Graceful shutdown: stops claiming, lets running jobs finish within `grace`,
    /// then hands the unfinished ones back to `pending` (due now, attempt not used;
    /// their contexts report cancelled, and their late results are refused by
    /// fencing). Nothing is lost and nothing runs twice at the same time.
    /// Returns the pool's counters.
    pub fn shutdown(mut self, grace: Duration) -> PoolCounts {
        self.stop(grace)
    }
}

/// [`log_unserved`] on a thread of its own (joined when the pool stops):
/// counting the due jobs reads every pending row (about 10 ms per 30,000 on
/// the benchmark machine), which would otherwise hold up the pool's start
/// by as long. The count is advisory; it runs at once, inline, if the
/// thread cannot start.
fn log_unserved_beside(
    queue: &Queue,
    types: Vec<String>,
    queues: Option<Vec<String>>,
) -> Option<JoinHandle<()>> {
    let q = queue.clone();
    let (t, qs) = (types.clone(), queues.clone());
    let spawned = std::thread::Builder::new()
        .name("jobq-unserved".into())
        .spawn(move || log_unserved(&q, &t, qs.as_deref()));
    match spawned {
        Ok(handle) => Some(handle),
        Err(_) => {
            log_unserved(queue, &types, queues.as_deref());
            None
        }
    }
}

/// Logs the due jobs this pool will not run (types it has no handler for, or
/// queues it does not serve), so nothing waits silently.
pub(crate) fn log_unserved(queue: &Queue, types: &[String], queues: Option<&[String]>) {
    let waiting = match queue.waiting() {
        Ok(w) => w,
        Err(e) => return log::warn!("could not count waiting jobs: {e}"),
    };
    let serves = |t: &str, q: &str| {
        types.iter().any(|x| x == t) && queues.is_none_or(|qs| qs.iter().any(|x| x == q))
    };
    let unserved: Vec<String> = waiting
        .iter()
        .filter(|w| w.ready > 0 && !w.paused && !serves(&w.job_type, &w.queue))
        .map(|w| format!("{} {} (queue {})", w.ready, w.job_type, w.queue))
        .collect();
    let paused: Vec<String> = waiting
        .iter()
        .filter(|w| w.ready > 0 && w.paused && serves(&w.job_type, &w.queue))
        .map(|w| format!("{} {} (queue {})", w.ready, w.job_type, w.queue))
        .collect();
    if !paused.is_empty() {
        log::warn!(
            "due jobs this pool serves wait in paused queues: {}",
            paused.join(", ")
        );
    }
    if !unserved.is_empty() {
        log::warn!(
            "due jobs this pool does not serve (no handler for the type, or not its queue): {}",
            unserved.join(", ")
        );
    }
}
