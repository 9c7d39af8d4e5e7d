//! Graceful shutdown under load: an attempt interrupted by shutdown goes back to
//! `pending` with its attempt not counted, never `cancelled` unless someone
//! asked for a cancel. Repeated many times with the CPU busy, since the failure
//! this pins was a race (about 1 run in 6 under load).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{
    Durability, JobError, JobStatus, NewJob, Queue, QueueOptions, Registry, StopReason,
    WorkerConfig, WorkerPool,
};
use serde_json::{json, Value};

use crate::util::{signal, wait_exit, wait_for, Sandbox};

/// Threads that keep both cores busy while the test runs.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(n: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().ok();
        }
    }
}

fn assert_handed_back(q: &Queue, ids: &[jobq::JobId], round: usize) {
    for id in ids {
        let job = q.get(*id).unwrap();
        assert_eq!(
            (job.status, job.attempts, job.cancel_requested),
            (JobStatus::Pending, 0, false),
            "round {round}: job {id} must be pending with its attempt not counted, got {:?} ({:?})",
            job.status,
            job.error_message
        );
    }
}

#[test]
fn shutdown_never_ends_a_job_cancelled_that_nobody_cancelled() {
    let _load = Load::start(2);
    let dir = tempfile::tempdir().unwrap();
    // FULL, the default: every hand-back is a commit with an fsync, which gives a
    // stopping handler time to return first.
    let opts = QueueOptions::new(dir.path().join("s.db")).durability(Durability::Full);
    let q = Queue::open_with(opts).unwrap();
    for round in 0..40 {
        let mut reg = Registry::new();
        reg.register("long", |ctx: &jobq::JobContext, _p: Value| {
            while !ctx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(ctx.stop_reason(), Some(StopReason::Shutdown));
            Err(JobError::Cancelled)
        });
        let cfg = WorkerConfig {
            workers: 3,
            poll_interval: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let ids: Vec<_> = (0..3)
            .map(|_| q.enqueue(NewJob::new("long", json!(null))).unwrap().id)
            .collect();
        let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
        wait_for("three running jobs", Duration::from_secs(10), || {
            ids.iter()
                .all(|id| q.get(*id).unwrap().status == JobStatus::InProgress)
        });
        let counts = pool.shutdown(Duration::from_millis(round as u64 % 3));
        assert_eq!(counts.released, 3, "round {round}: {counts}");
        assert_handed_back(&q, &ids, round);
        for id in &ids {
            q.cancel(*id).unwrap();
        }
    }
}

/// The running-gauge lines of `q`'s metrics, summed.
fn running_gauge(q: &Queue) -> f64 {
    q.metrics()
        .encode()
        .lines()
        .filter(|l| l.starts_with("jobq_running{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Shutdown without grace while a pool runs many short jobs: jobs claimed
/// and waiting in the pool for a free worker are handed back with the
/// running ones, and none of them starts afterwards (a round written
/// meanwhile once gave one to its writer: it ran while pending again, and
/// the running gauge stayed up). Under load, many rounds: it was a race.
#[test]
fn shutdown_without_grace_starts_no_job_it_handed_back() {
    let _load = Load::start(2);
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let opts = QueueOptions::new(dir.path().join("s.db")).durability(Durability::Normal);
        let q = Queue::open_with(opts).unwrap();
        let jobs = (0..1000).map(|i| NewJob::new("short", json!(i))).collect();
        let ids = q.enqueue_many(jobs).unwrap();
        let mut reg = Registry::new();
        reg.register("short", |_ctx: &jobq::JobContext, p: Value| {
            if p.as_i64().is_some_and(|i| i % 7 == 0) {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(Value::Null)
        });
        let cfg = WorkerConfig {
            workers: 2 + round % 3,
            poll_interval: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
        std::thread::sleep(Duration::from_millis(5 + (round as u64 * 7) % 40));
        let counts = pool.shutdown(Duration::ZERO);
        // A job started after its hand-back would still be running.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(running_gauge(&q), 0.0, "round {round}: {counts}");
        let running = ids
            .iter()
            .filter(|id| q.get(**id).unwrap().status == JobStatus::InProgress)
            .count();
        assert_eq!(running, 0, "round {round}: {counts}");
    }
}

#[test]
fn a_handler_stopping_itself_during_shutdown_hands_its_job_back() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("h.db")).unwrap();
    let stopping = Arc::new(AtomicBool::new(false));
    let seen = stopping.clone();
    let mut reg = Registry::new();
    reg.register("own", move |_ctx: &jobq::JobContext, _p: Value| {
        // The program's own shutdown signal, not the pool's: the handler gives up.
        while !seen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        Err(JobError::Cancelled)
    });
    let job = q.enqueue(NewJob::new("own", json!(null))).unwrap();
    let pool = WorkerPool::start(q.clone(), reg, WorkerConfig::default()).unwrap();
    wait_for("the job running", Duration::from_secs(10), || {
        q.get(job.id).unwrap().status == JobStatus::InProgress
    });
    stopping.store(true, Ordering::SeqCst);
    let counts = pool.shutdown(Duration::from_secs(10));
    assert_eq!(counts.released, 1, "{counts}");
    assert_handed_back(&q, &[job.id], 0);
}

#[test]
fn sigterm_hands_running_exec_jobs_back_under_load_every_time() {
    let _load = Load::start(2);
    let sb = Sandbox::new();
    sb.config(
        r#"
[workers]
count = 3
poll_interval = "50ms"
shutdown_grace = "100ms"

[handlers.slow]
command = ["sleep", "20"]
"#,
    );
    for round in 0..8 {
        let ids: Vec<String> = (0..3).map(|_| sb.ok(&["enqueue", "slow"])).collect();
        let mut work = sb.spawn(&["work"], "work");
        wait_for("three running jobs", Duration::from_secs(20), || {
            let stats = sb.json(&["stats"]);
            stats["by_status"]["in_progress"] == json!(3)
        });
        signal(&work, libc::SIGTERM);
        assert_eq!(wait_exit(&mut work, Duration::from_secs(30)), 0);
        let q = Queue::open(sb.db()).unwrap();
        let ids: Vec<jobq::JobId> = ids.iter().map(|s| s.parse().unwrap()).collect();
        assert_handed_back(&q, &ids, round);
        for id in &ids {
            q.cancel(*id).unwrap();
        }
    }
}
