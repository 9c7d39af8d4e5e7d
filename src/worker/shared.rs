//! State shared by a pool's threads: the claimed jobs, finished attempts waiting
//! to be written, the jobs waiting for a worker, the parked worker threads, and
//! the counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::clock::Timestamp;
use crate::job::{Job, JobId};
use crate::metrics::JobSeries;
use crate::queue::{CommitWatch, Queue, Signal};
use crate::worker::execute::Outcome;
use crate::worker::{PoolCounts, Registry, StopFlag, StopReason, WorkerConfig};

/// A claimed job, from claim until its outcome is written.
#[derive(Debug)]
pub(crate) struct RunningJob {
    pub lease_token: i64,
    /// When it was claimed: the claim round's time (the claimed job's
    /// `updated_at`, which later writes to its row change). A rate-limited
    /// queue recorded its start then, which a give-back forgets.
    pub claimed_at: Timestamp,
    /// The metric series of the job's queue and type.
    pub series: Arc<JobSeries>,
    /// When a worker started it; `None` while it waits for one.
    pub started: Option<Instant>,
    /// Reserved for the prefetch buffer (see `WorkerConfig::prefetch`): its
    /// row has no `started_at` until its start is written (`marked`).
    pub reserved: bool,
    /// The row says the job started (always, unless `reserved`): its lease is
    /// the pool's lease, not the reservation.
    pub marked: bool,
    /// When the handler returned (set with `done`).
    pub ended: Option<Instant>,
    pub timeout: Option<Duration>,
    /// Set by a cancel request, a lost lease, a timeout or shutdown, with the
    /// reason: the context reports it.
    pub stop: Arc<StopFlag>,
    /// Set when the pool gave up on the attempt (timeout or shutdown): the
    /// handler's late result is not the pool's to write.
    pub abandoned: Arc<AtomicBool>,
    /// The handler has returned; the outcome waits in `finished`.
    pub done: bool,
}

/// A claimed job on its way to a worker thread.
pub(crate) struct Task {
    pub job: Job,
    pub stop: Arc<StopFlag>,
    pub abandoned: Arc<AtomicBool>,
    pub reserved: bool,
}

/// What every thread of the pool shares under one lock.
#[derive(Default)]
pub(crate) struct PoolState {
    /// Claimed jobs not yet written back (waiting, running, or finished).
    pub running: HashMap<JobId, RunningJob>,
    /// Claimed jobs no worker has taken yet, in run order.
    pub buffer: VecDeque<Task>,
    /// Jobs handed to one parked worker thread, by the thread's index.
    pub inbox: HashMap<usize, Task>,
    /// Worker threads waiting for work, longest waiting first.
    pub parked: VecDeque<(usize, Thread)>,
    /// Finished attempts to write, and when the oldest of them finished.
    pub finished: Vec<(JobId, i64, Outcome)>,
    pub first_finished: Option<Instant>,
    /// Starts of reserved jobs to write (id, lease token, start time).
    pub starts: Vec<(JobId, i64, Timestamp)>,
    /// A thread is writing a round (one at a time).
    pub in_round: bool,
    /// Threads waiting for the current round to end.
    pub round_waiters: usize,
    /// The last claim found fewer due jobs than it had room for, and nothing
    /// was enqueued since: workers leave claim-only rounds to the coordinator.
    pub dry: bool,
    /// The coordinator waits out its poll because every worker was busy: a
    /// worker's round that leaves room with nothing due wakes it, so that it
    /// watches for other processes' commits instead (see `coordinator.rs`).
    pub coordinator_polls: bool,
    /// After a failed round: no worker writes a round before this.
    pub retry_at: Option<Instant>,
    /// After a round refused for a value it held (see `refused.rs`): how
    /// many more rounds write one outcome each, to find it.
    pub isolating: usize,
    /// Jobs whose refused outcome was replaced by a failure: if that is
    /// refused too, the outcome is given up.
    pub replaced: HashSet<JobId>,
    /// What ended a draining pool early: a database error that does not pass
    /// with time (see `coordinator.rs`).
    pub ended_by: Option<String>,
    /// When a failing round was last logged.
    pub last_error: Option<Instant>,
    /// The worker threads are told to exit.
    pub closed: bool,
    pub stopping: bool,
    /// Set when shutdown's grace has run out: outcomes that still cannot be
    /// written are given up (their jobs come back when their leases expire).
    pub give_up: bool,
    pub counts: PoolCounts,
    /// When the pool last claimed jobs or a worker last started one: a
    /// prefetching pool that has done neither for `WorkerConfig::prefetch_ttl`
    /// hands its buffer back (its workers are all held by long jobs).
    pub last_progress: Option<Instant>,
}

impl PoolState {
    /// Claimed jobs whose handlers have not returned (waiting or running).
    pub fn held(&self) -> usize {
        self.running.values().filter(|r| !r.done).count()
    }
}

/// Everything a pool's threads share.
pub(crate) struct Shared {
    pub queue: Queue,
    pub registry: Registry,
    pub config: WorkerConfig,
    pub types: Vec<String>,
    /// Wakes the coordinator: enqueues, idle pools, shutdown.
    pub signal: Arc<Signal>,
    /// Notified once, when the coordinator exits: what [`crate::WorkerPool::wait`]
    /// waits on, so that it is not woken by every finished job.
    pub exited: Signal,
    pub state: Mutex<PoolState>,
    /// Notified when a round ends and someone waits for it.
    pub round_cv: Condvar,
    /// The index the next worker thread gets.
    pub next_index: AtomicUsize,
    /// Set when the coordinator has exited (drained or stopped).
    pub finished: AtomicBool,
    /// Other processes' commits, when the database can be watched (see
    /// `watcher.rs`); `None`: they are found by polling.
    pub watch: Option<Arc<dyn CommitWatch>>,
    /// Commits seen by the watcher so far.
    pub external: AtomicU64,
    /// (the coordinator waits idle, the pool is done): the watcher's hand-off.
    pub idle: Mutex<(bool, bool)>,
    pub idle_cv: Condvar,
    /// Bumped whenever a parked worker thread is woken: what a thread about to
    /// park watches while it spins (see `thread.rs`).
    pub wakes: AtomicU64,
    /// How long a round takes here, in µs: a moving average of the rounds'
    /// wall times (each new round counts for an eighth). A thread about to
    /// park spins only when rounds are shorter than its spin (see `thread.rs`).
    pub round_micros: AtomicU64,
    /// Written rounds not yet recorded in `state` (see `hand_off.rs`), and
    /// whether there are any.
    pub unrecorded: crate::worker::hand_off::Queued,
    pub has_unrecorded: AtomicBool,
}

impl Shared {
    /// A pool's shared part before any thread starts: `signal` wakes its
    /// coordinator, `watch` (when the database can be watched) brings other
    /// processes' commits.
    pub fn new(
        queue: Queue,
        registry: Registry,
        config: WorkerConfig,
        signal: Arc<Signal>,
        watch: Option<Arc<dyn CommitWatch>>,
    ) -> Shared {
        Shared {
            types: registry.types(),
            queue,
            registry,
            config,
            signal,
            exited: Signal::new(),
            state: Mutex::new(PoolState::default()),
            round_cv: Condvar::new(),
            unrecorded: Default::default(),
            has_unrecorded: AtomicBool::new(false),
            next_index: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            watch,
            external: AtomicU64::new(0),
            idle: Mutex::new((false, false)),
            idle_cv: Condvar::new(),
            wakes: AtomicU64::new(0),
            round_micros: AtomicU64::new(0),
        }
    }

    /// The pool's state, with every written round recorded (see
    /// `hand_off.rs`).
    pub fn state(&self) -> MutexGuard<'_, PoolState> {
        let mut st = self.state_unrecorded();
        if self.has_unrecorded.load(Ordering::Acquire) {
            crate::worker::hand_off::record_queued(self, &mut st);
        }
        st
    }

    /// The pool's state as it is, a written round perhaps not yet recorded:
    /// for the thread that handed its round off and looks whether the next
    /// is due (see `hand_off.rs`).
    pub fn state_unrecorded(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pool's state once no round is being written (waits for the one in
    /// flight, if any): a round that has claimed jobs has not put them in
    /// `running` until it ends.
    pub fn state_between_rounds(&self) -> MutexGuard<'_, PoolState> {
        let mut st = self.state();
        while st.in_round {
            st.round_waiters += 1;
            st = self.round_cv.wait(st).unwrap_or_else(|p| p.into_inner());
            st.round_waiters -= 1;
        }
        if self.has_unrecorded.load(Ordering::Acquire) {
            crate::worker::hand_off::record_queued(self, &mut st);
        }
        st
    }

    /// Wakes a parked worker thread, and the threads spinning before they
    /// park, which then look for work of their own.
    pub fn wake(&self, thread: &Thread) {
        self.wakes.fetch_add(1, Ordering::Release);
        thread.unpark();
    }

    /// Counts a written round's wall time into [`Shared::round_micros`].
    /// Rounds are written one at a time, so the read and the store do not race.
    pub fn timed_round(&self, took: Duration) {
        let old = self.round_micros.load(Ordering::Relaxed);
        self.round_micros
            .store(averaged(old, took), Ordering::Relaxed);
    }

    /// How many jobs the pool may hold claimed and unfinished: its workers
    /// plus its prefetch buffer.
    pub fn capacity(&self) -> usize {
        self.config.workers + self.config.prefetch
    }

    /// The level of the pool's started and stopped lines: info, or debug for
    /// a pool in drain mode or a quiet one (`jobq work --drain --wait` starts
    /// one per pass and one per wait, and says what the drain did itself).
    pub fn lifecycle_level(&self) -> log::Level {
        if self.config.drain || self.config.quiet_lifecycle {
            log::Level::Debug
        } else {
            log::Level::Info
        }
    }

    /// How long a reserved (prefetched) job's row is held before other
    /// processes may take it back: [`crate::worker::RESERVATION`], or the
    /// lease when that is shorter.
    pub fn reservation(&self) -> Duration {
        crate::worker::RESERVATION.min(self.config.lease)
    }

    /// Records claimed jobs as held and turns them into tasks, in run order.
    pub fn adopt(&self, state: &mut PoolState, jobs: Vec<Job>, reserved: bool) -> Vec<Task> {
        if !jobs.is_empty() {
            // Not stalled: the claimed jobs are about to start (a worker was
            // idle, or the round would not have claimed).
            state.last_progress = Some(Instant::now());
        }
        let metrics = self.queue.metrics();
        // A round's jobs are mostly of one queue and type: the last series
        // looked up is tried first.
        let mut last: Option<Arc<JobSeries>> = None;
        jobs.into_iter()
            .map(|job| {
                let series = match &last {
                    Some(s) if s.is(&job.queue, &job.job_type) => s.clone(),
                    _ => {
                        let s = metrics.series(&job.queue, &job.job_type);
                        last = Some(s.clone());
                        s
                    }
                };
                let timeout = self.queue.catalog().timeout(&job.job_type);
                let stop = Arc::new(if job.cancel_requested {
                    StopFlag::with(StopReason::Cancelled)
                } else {
                    StopFlag::new()
                });
                let abandoned = Arc::new(AtomicBool::new(false));
                let older = state.running.insert(
                    job.id,
                    RunningJob {
                        lease_token: job.lease_token,
                        claimed_at: job.updated_at,
                        series,
                        started: None,
                        reserved,
                        marked: !reserved,
                        ended: None,
                        timeout,
                        stop: stop.clone(),
                        abandoned: abandoned.clone(),
                        done: false,
                    },
                );
                if let Some(old) = older {
                    // This pool still ran an earlier attempt of the job (its
                    // lease was taken back by hand, e.g. `jobq recover --worker
                    // NAME --force`): that attempt's lease is lost, and its
                    // outcome is not written (`thread::report`).
                    log::warn!(
                        "job {}: claimed again (attempt token {}) while this pool still ran attempt token {}; telling that one to stop",
                        job.id,
                        job.lease_token,
                        old.lease_token
                    );
                    old.stop.request(StopReason::LeaseLost);
                    if old.started.is_none() {
                        // Never started (prefetched, still in the buffer or
                        // handed to a parked thread): it must not start now.
                        old.abandoned.store(true, Ordering::SeqCst);
                        let token = old.lease_token;
                        state
                            .buffer
                            .retain(|t| t.job.id != job.id || t.job.lease_token != token);
                    }
                    self.settled(&old, None);
                }
                Task {
                    job,
                    stop,
                    abandoned,
                    reserved,
                }
            })
            .collect()
    }

    /// A worker takes `task`: it is running from now (a reserved job's start
    /// is queued for the next round to write).
    pub fn begin(&self, state: &mut PoolState, task: &mut Task) {
        let now = self.queue.now();
        if task.reserved {
            task.job.started_at = Some(now);
            state.starts.push((task.job.id, task.job.lease_token, now));
        }
        let now_i = Instant::now();
        let metrics = self.queue.metrics();
        match state.running.get_mut(&task.job.id) {
            Some(r) => {
                r.started = Some(now_i);
                r.series
                    .started(metrics, crate::metrics::wait_of(&task.job));
            }
            None => metrics.started(&task.job),
        }
        state.last_progress = Some(now_i);
        state.counts.started += 1;
    }

    /// Marks a running job as given up for `reason` (its handler is told to
    /// stop): the pool writes the attempt's end itself, and whatever the handler
    /// returns later is dropped. A job still waiting in the buffer leaves it,
    /// so no worker starts it. Returns the job, if it was running.
    pub fn abandon(state: &mut PoolState, id: JobId, reason: StopReason) -> Option<RunningJob> {
        let job = state.running.remove(&id)?;
        job.stop.request(reason);
        job.abandoned.store(true, Ordering::Relaxed);
        let token = job.lease_token;
        state
            .buffer
            .retain(|t| t.job.id != id || t.job.lease_token != token);
        Some(job)
    }

    /// Metrics of a started attempt that left this pool (settled, handed back
    /// or given up): the running gauge goes down; `outcome`, when the attempt
    /// ended with one, is counted with the handler's run time. Nothing for a
    /// job that never started.
    pub fn settled(&self, job: &RunningJob, outcome: Option<crate::metrics::Outcome>) {
        let Some(started) = job.started else {
            return;
        };
        let m = self.queue.metrics();
        job.series.running_ended(m);
        if let Some(outcome) = outcome {
            let ran = job.ended.unwrap_or_else(Instant::now) - started;
            job.series.finished(m, outcome, Some(ran));
        }
    }
}

/// The moving average of round times (µs) after a round that took `took`:
/// the new round counts for an eighth.
fn averaged(old: u64, took: Duration) -> u64 {
    let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    old.saturating_mul(7).saturating_add(sample) / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn average_after(samples: &[u64]) -> u64 {
        samples
            .iter()
            .fold(0, |avg, &us| averaged(avg, Duration::from_micros(us)))
    }

    #[test]
    fn the_round_time_is_a_moving_average_where_each_round_counts_an_eighth() {
        assert_eq!(average_after(&[]), 0);
        assert_eq!(average_after(&[800]), 100);
        assert_eq!(average_after(&[800, 800]), 187);
        // Steady 800 µs rounds cross a 500 µs spin within a dozen rounds; one
        // 5 ms round among 120 µs ones stops the spinning for a few rounds only.
        assert!(average_after(&[800; 12]) >= 500);
        let mut mixed = vec![120; 40];
        mixed.push(5_000);
        assert!(average_after(&mixed) >= 500);
        mixed.extend([120; 5]);
        assert!(average_after(&mixed) < 500);
    }
}
