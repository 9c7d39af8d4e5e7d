//! State shared by a pool's threads: the running jobs, finished attempts waiting
//! to be written, the task queue of the worker threads, and the counters.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::job::{Job, JobId};
use crate::queue::{CommitWatch, Queue, Signal};
use crate::worker::execute::Outcome;
use crate::worker::{PoolCounts, Registry, StopFlag, StopReason, WorkerConfig};

/// A claimed job, from claim until its outcome is written.
#[derive(Debug)]
pub(crate) struct RunningJob {
    pub lease_token: i64,
    /// The job's queue and type (metrics labels).
    pub queue: String,
    pub job_type: String,
    pub started: Instant,
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

/// A job handed to a worker thread.
pub(crate) struct Task {
    pub job: Job,
    pub stop: Arc<StopFlag>,
    pub abandoned: Arc<AtomicBool>,
}

/// What the coordinator, the supervisor and the workers share under one lock.
#[derive(Debug, Default)]
pub(crate) struct PoolState {
    pub running: HashMap<JobId, RunningJob>,
    pub finished: Vec<(JobId, i64, Outcome)>,
    pub stopping: bool,
    /// Set when shutdown's grace has run out: outcomes that still cannot be
    /// written are given up (their jobs come back when their leases expire).
    pub give_up: bool,
    pub counts: PoolCounts,
}

impl PoolState {
    /// Worker threads without a job.
    pub fn idle(&self, workers: usize) -> usize {
        workers.saturating_sub(self.running.values().filter(|r| !r.done).count())
    }
}

#[derive(Default)]
pub(crate) struct Tasks {
    pub items: VecDeque<Task>,
    pub closed: bool,
}

/// Everything a pool's threads share.
pub(crate) struct Shared {
    pub queue: Queue,
    pub registry: Registry,
    pub config: WorkerConfig,
    pub types: Vec<String>,
    /// Wakes the coordinator: enqueues, finished jobs, shutdown.
    pub signal: Arc<Signal>,
    /// Notified once, when the coordinator exits: what [`crate::WorkerPool::wait`]
    /// waits on, so that it is not woken by every finished job.
    pub exited: Signal,
    pub state: Mutex<PoolState>,
    pub tasks: Mutex<Tasks>,
    pub tasks_cv: Condvar,
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
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands claimed jobs to the worker threads and records them as running.
    pub fn dispatch(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut state = self.state();
        let mut tasks = self.tasks();
        for job in jobs {
            let timeout = self.queue.catalog().timeout(&job.job_type);
            let stop = Arc::new(if job.cancel_requested {
                StopFlag::with(StopReason::Cancelled)
            } else {
                StopFlag::new()
            });
            let abandoned = Arc::new(AtomicBool::new(false));
            state.counts.started += 1;
            let queue = job.queue.clone();
            self.claimed(&queue, &job);
            state.running.insert(
                job.id,
                RunningJob {
                    lease_token: job.lease_token,
                    queue,
                    job_type: job.job_type.clone(),
                    started: Instant::now(),
                    ended: None,
                    timeout,
                    stop: stop.clone(),
                    abandoned: abandoned.clone(),
                    done: false,
                },
            );
            tasks.items.push_back(Task {
                job,
                stop,
                abandoned,
            });
        }
        // One wake-up here; each woken worker wakes the next while tasks remain
        // (see `worker_loop`), so the coordinator does not pay for every wake-up.
        self.tasks_cv.notify_one();
    }

    /// Marks a running job as given up for `reason` (its handler is told to
    /// stop): the pool writes the attempt's end itself, and whatever the handler
    /// returns later is dropped. Returns the job, if it was running.
    pub fn abandon(state: &mut PoolState, id: JobId, reason: StopReason) -> Option<RunningJob> {
        let job = state.running.remove(&id)?;
        job.stop.request(reason);
        job.abandoned.store(true, Ordering::Relaxed);
        Some(job)
    }

    /// Metrics of a claim: the running gauge goes up; the wait from the job's
    /// due time to its claim is observed.
    fn claimed(&self, queue: &str, job: &Job) {
        let m = self.queue.metrics();
        m.running_started(queue);
        let due = job.next_retry;
        let wait = job.started_at.map(|s| s.since(due)).unwrap_or_default();
        m.waited(queue, &job.job_type, wait);
    }

    /// Metrics of an attempt that left this pool (settled, handed back or given
    /// up): the running gauge goes down; `outcome`, when the attempt ended
    /// with one, is counted with the handler's run time.
    pub fn settled(&self, job: &RunningJob, outcome: Option<crate::metrics::Outcome>) {
        let m = self.queue.metrics();
        m.running_ended(&job.queue);
        if let Some(outcome) = outcome {
            let ran = job.ended.unwrap_or_else(Instant::now) - job.started;
            m.finished(&job.queue, &job.job_type, outcome, Some(ran));
        }
    }
}
