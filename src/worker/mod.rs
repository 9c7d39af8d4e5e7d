//! Workers: a pool of blocking threads that claim jobs, run their handlers, hold
//! their leases with heartbeats, recover expired leases, and shut down gracefully.

mod context;
mod coordinator;
mod execute;
mod give_back;
mod hand_off;
mod handler;
mod lease_keeper;
mod pool;
mod refused;
mod round;
mod round_record;
mod run_due;
mod scheduler;
mod shared;
mod shutdown;
mod supervisor;
mod thread;
mod watcher;

use std::time::Duration;

pub use context::{JobContext, StopFlag, StopReason};
pub use handler::{Handler, HandlerResult, JobError, Registry};
pub use pool::{PoolCounts, WorkerPool};
pub use run_due::{run_due, run_due_until, RunSummary};

/// How often an error that goes on (a failing round, a schedule that cannot
/// fire) is logged again at error level: once a minute.
pub(crate) const ERROR_REPEAT: Duration = Duration::from_secs(60);

/// Settings of a [`WorkerPool`]. Every duration is a [`Duration`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Worker threads (jobs running at once). Default 4.
    pub workers: usize,
    /// Lease taken at claim and renewed by heartbeats. Default 5 min.
    pub lease: Duration,
    /// How often running jobs' leases are extended. Default `lease / 3`.
    pub heartbeat_interval: Option<Duration>,
    /// How often to look for jobs enqueued by other processes. Default 1 s.
    /// (Enqueues through the same [`crate::Queue`] wake workers at once; on
    /// Linux an idle pool also wakes within milliseconds of another process's
    /// commit, by watching the database's WAL file, so the poll is the fallback.)
    /// It is also how soon an idle pool finds a job that became due with
    /// time (a delay, a backoff, a snooze, the end of a rate-limit window or
    /// of a pause): within one poll interval, or sooner when a commit wakes it.
    pub poll_interval: Duration,
    /// How often expired leases are recovered (also once at start). Default 30 s.
    pub recovery_interval: Duration,
    /// After a job's timeout, how long its handler may still take before the slot
    /// is released and the attempt recorded as timed out. Default 5 s.
    pub timeout_grace: Duration,
    /// The most jobs claimed in one transaction (never more than the room the
    /// pool has: idle workers plus free prefetch slots). Default: the number of
    /// workers plus `prefetch`.
    pub claim_batch: usize,
    /// Jobs the pool may hold claimed but not yet started, beside its running
    /// ones (a local buffer that saves a transaction per job). Default 0: never
    /// more jobs claimed than idle workers. Such a job is *reserved* for
    /// [`RESERVATION`] (renewed while the pool lives): it does not use an
    /// attempt until a worker starts it, shutdown hands it back at once, so
    /// does a pool stalled for [`WorkerConfig::prefetch_ttl`], and if
    /// the process dies any pool's recovery takes it back, uncounted, once the
    /// reservation has run out. The buffer runs in priority order and is
    /// refilled by a round written once half of it has been started (or 200 µs
    /// after a job finished, or when every held job has finished), so a job
    /// enqueued later with a higher priority waits behind at most about half
    /// the buffer. A queue with a concurrency or rate limit is reserved only
    /// for idle workers (a reserved job holds one of its slots). At most
    /// [`MAX_PREFETCH`].
    pub prefetch: usize,
    /// With [`WorkerConfig::prefetch`]: how long the pool may hold reserved
    /// jobs while it neither claims nor starts a job (its workers all held by
    /// long jobs).
    /// Then (checked every quarter of it, between 50 ms and 1 s) its reserved
    /// jobs are handed back, pending in their old places and their attempts
    /// not counted, so that a pool with an idle worker may run them; and a
    /// pool whose every worker is busy reserves nothing. A pool that keeps
    /// starting jobs keeps its buffer, however long a job waits in it.
    /// Default 5 s ([`PREFETCH_TTL`]); more than 0. graphile-worker's local
    /// queue has a similar bound (`ttl`, 5 min by default, counted from the
    /// claim).
    pub prefetch_ttl: Duration,
    /// This pool's name in `locked_by` and error history. Default `host:pid:random`.
    pub worker_id: String,
    /// Stop by itself once no job is due and none is running, or on a
    /// database error that does not pass with time ([`WorkerPool::drain_error`]).
    /// Default false.
    pub drain: bool,
    /// Log the pool's started and stopped lines at debug level instead of
    /// info (a pool in drain mode always does): for a program that starts
    /// and stops pools as it goes, and says what they did itself (`jobq work
    /// --drain --wait`). Default false.
    pub quiet_lifecycle: bool,
    /// Serve only these queues; `None` (the default): every queue. The pool's
    /// `workers` stay its local cap; each queue's limits hold across processes.
    pub queues: Option<Vec<String>>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            workers: 4,
            lease: Duration::from_secs(300),
            heartbeat_interval: None,
            poll_interval: Duration::from_secs(1),
            recovery_interval: Duration::from_secs(30),
            timeout_grace: Duration::from_secs(5),
            claim_batch: 0,
            prefetch: 0,
            prefetch_ttl: PREFETCH_TTL,
            worker_id: default_worker_id(),
            drain: false,
            quiet_lifecycle: false,
            queues: None,
        }
    }
}

impl WorkerConfig {
    /// The heartbeat interval in force: the set one, or a third of the lease.
    pub fn heartbeat_every(&self) -> Duration {
        self.heartbeat_interval.unwrap_or(self.lease / 3)
    }

    /// The claim batch in force: the set one, or the number of workers plus
    /// the prefetch buffer.
    pub fn batch(&self) -> usize {
        if self.claim_batch == 0 {
            self.workers.max(1) + self.prefetch
        } else {
            self.claim_batch
        }
    }

    /// Checks the settings as `jobq.toml`'s `[workers]` does: 1 to
    /// [`MAX_WORKERS`] workers; a prefetch of at most [`MAX_PREFETCH`]; a
    /// lease, poll interval, recovery interval, prefetch TTL and (when set) heartbeat
    /// interval above zero (a heartbeat not shorter than the lease is logged
    /// as a warning); a `worker_id` of 1-255 bytes without control
    /// characters; `queues`, when set, a non-empty list of valid queue names.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] naming the first field refused.
    pub fn validate(&self) -> crate::Result<()> {
        let refuse = |field: &'static str, reason: &str| {
            Err(crate::Error::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return refuse("workers", "must be 1-1000");
        }
        if self.prefetch > MAX_PREFETCH {
            return refuse("prefetch", "must be 0-10000");
        }
        for (field, d) in [
            ("lease", self.lease),
            ("poll_interval", self.poll_interval),
            ("recovery_interval", self.recovery_interval),
            ("prefetch_ttl", self.prefetch_ttl),
        ] {
            if d.is_zero() {
                return refuse(field, "must be more than 0");
            }
        }
        if let Some(h) = self.heartbeat_interval {
            if h.is_zero() {
                return refuse("heartbeat_interval", "must be more than 0");
            }
            if h >= self.lease {
                log::warn!(
                    "heartbeat_interval {h:?} is not shorter than the lease {:?}: \
                     running jobs will be recovered as if their worker had died",
                    self.lease
                );
            }
        }
        let id = &self.worker_id;
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
            return refuse(
                "worker_id",
                "must be 1-255 bytes without control characters",
            );
        }
        match &self.queues {
            Some(q) if q.is_empty() => refuse(
                "queues",
                "must name at least one queue (None serves every queue)",
            ),
            Some(q) => q
                .iter()
                .try_for_each(|name| crate::queues::validate_queue_name(name)),
            None => Ok(()),
        }
    }

    /// Sets [`WorkerConfig::prefetch`]: up to `n` claimed jobs held ready
    /// beside the running ones (0: none).
    #[must_use]
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }

    /// Sets [`WorkerConfig::prefetch_ttl`]: how long the pool may hold
    /// reserved jobs while none of its workers starts a job.
    #[must_use]
    pub fn prefetch_ttl(mut self, ttl: Duration) -> Self {
        self.prefetch_ttl = ttl;
        self
    }
}

/// `d` from now, or about a century from now when `d` reaches past what an
/// `Instant` holds (`Duration::MAX` is a caller's "never"): deadlines of the
/// pool's own timers never overflow.
pub(crate) fn instant_after(d: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// The most worker threads a pool runs (each is an OS thread, and SQLite
/// has one writer: far fewer serve any workload as well).
pub const MAX_WORKERS: usize = 1000;

/// The largest prefetch buffer ([`WorkerConfig::prefetch`]): its jobs are
/// held in memory with their payloads (up to 1 MB each), and a round that
/// refills it claims up to this many jobs in one transaction.
pub const MAX_PREFETCH: usize = 10_000;

/// How long a prefetched job stays reserved for its pool without a renewal
/// (10 s, or the lease when that is shorter; renewed every third of it while
/// the pool lives). After a crash, other pools take it back, its attempt not
/// counted, at their first recovery after this.
pub const RESERVATION: Duration = Duration::from_secs(10);

/// The default [`WorkerConfig::prefetch_ttl`]: 5 s.
pub const PREFETCH_TTL: Duration = Duration::from_secs(5);

/// `host:pid:xxxx`, unique enough to tell workers apart in `locked_by`.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &tag[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_the_config_file_refuses_are_refused_here_too() {
        let ok = WorkerConfig::default();
        assert!(ok.validate().is_ok());
        let cases: [(&str, WorkerConfig); 11] = [
            (
                "workers",
                WorkerConfig {
                    workers: 0,
                    ..ok.clone()
                },
            ),
            (
                "workers",
                WorkerConfig {
                    workers: 1001,
                    ..ok.clone()
                },
            ),
            (
                "lease",
                WorkerConfig {
                    lease: Duration::ZERO,
                    ..ok.clone()
                },
            ),
            (
                "poll_interval",
                WorkerConfig {
                    poll_interval: Duration::ZERO,
                    ..ok.clone()
                },
            ),
            (
                "recovery_interval",
                WorkerConfig {
                    recovery_interval: Duration::ZERO,
                    ..ok.clone()
                },
            ),
            (
                "heartbeat_interval",
                WorkerConfig {
                    heartbeat_interval: Some(Duration::ZERO),
                    ..ok.clone()
                },
            ),
            (
                "worker_id",
                WorkerConfig {
                    worker_id: "a\0b".into(),
                    ..ok.clone()
                },
            ),
            (
                "queues",
                WorkerConfig {
                    queues: Some(vec![]),
                    ..ok.clone()
                },
            ),
            (
                "queue",
                WorkerConfig {
                    queues: Some(vec!["BAD".into()]),
                    ..ok.clone()
                },
            ),
            ("prefetch", ok.clone().prefetch(MAX_PREFETCH + 1)),
            ("prefetch_ttl", ok.clone().prefetch_ttl(Duration::ZERO)),
        ];
        for (field, cfg) in cases {
            match cfg.validate() {
                Err(crate::Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let far = instant_after(Duration::MAX);
        assert!(far > std::time::Instant::now() + Duration::from_secs(86_400 * 365));
        let most = WorkerConfig {
            workers: MAX_WORKERS,
            heartbeat_interval: Some(Duration::from_secs(1)),
            ..ok
        }
        .prefetch(MAX_PREFETCH);
        assert!(most.validate().is_ok());
    }
}
