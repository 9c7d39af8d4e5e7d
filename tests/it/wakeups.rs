//! Wake-ups across processes: a job another process enqueues starts without
//! waiting for the worker's poll (on Linux the pool watches the database's WAL
//! file; polling stays the fallback elsewhere). The poll interval is set to
//! 30 s and the jobs must finish well inside it, so the only timing in these
//! tests is that bound, never the fast path's speed.

use std::time::Duration;

use jobq::{Durability, JobContext, JobStatus, NewJob, Queue, QueueOptions, Registry};
use jobq::{WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::util::{signal, wait_exit, wait_for, Sandbox};

/// The poll interval of these pools: far longer than the tests wait.
const POLL: Duration = Duration::from_secs(30);

#[cfg(target_os = "linux")]
#[test]
fn a_job_enqueued_by_jobq_enqueue_starts_long_before_the_poll_interval() {
    let sb = Sandbox::new();
    sb.config(
        "[workers]\npoll_interval = \"30s\"\ndurability = \"normal\"\n\n\
         [handlers.mark]\ncommand = [\"cat\"]\n",
    );
    let first = sb.ok(&["enqueue", "mark", "--payload", "1"]);
    let mut work = sb.spawn(&["work"], "work");
    // The start-up round runs the first job; then the pool waits out its poll.
    wait_for("the first job", POLL / 2, || {
        sb.json(&["show", &first])["status"] == json!("completed")
    });
    for i in 2..5 {
        let id = sb.ok(&["enqueue", "mark", "--payload", &i.to_string()]);
        wait_for(
            "a job from another process, within half the poll",
            POLL / 2,
            || sb.json(&["show", &id])["status"] == json!("completed"),
        );
        assert_eq!(sb.json(&["show", &id])["result"], json!(i));
    }
    signal(&work, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut work, Duration::from_secs(30)),
        0,
        "{}",
        sb.log("work")
    );
}

/// Handlers `echo` (returns its payload) and `long` (runs until the flag is
/// set), and that flag.
fn echo_and_long() -> (Registry, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hold = release.clone();
    let mut reg = Registry::new();
    reg.register("echo", |_: &JobContext, v: Value| Ok(v));
    reg.register("long", move |_: &JobContext, _: Value| {
        while !hold.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(json!(null))
    });
    (reg, release)
}

/// Enqueues `n` echo jobs through `other`, one at a time, each of which must
/// complete within half the poll.
fn each_starts_within_half_the_poll(other: &Queue, n: i64) {
    for i in 0..n {
        let job = other.enqueue(NewJob::new("echo", json!(i))).unwrap().job;
        wait_for("the job, within half the poll", POLL / 2, || {
            other.get(job.id).unwrap().status == JobStatus::Completed
        });
    }
}

/// A pool of `workers` (30 s poll) started on a new file that holds a `long`
/// job and, before it, `quick` echo jobs; another handle on the file; the
/// flag that ends the long job; the long job's and the quick jobs' ids.
struct Started {
    _dir: tempfile::TempDir,
    other: Queue,
    pool: WorkerPool,
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
    long: jobq::JobId,
    quick: Vec<jobq::JobId>,
}

fn start_with_long(workers: usize, quick: usize) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wake.db");
    let (reg, release) = echo_and_long();
    let cfg = WorkerConfig {
        workers,
        poll_interval: POLL,
        ..WorkerConfig::default()
    };
    let q = open(&db);
    let long = q.enqueue(NewJob::new("long", json!({}))).unwrap().job.id;
    let quick = (0..quick)
        .map(|i| q.enqueue(NewJob::new("echo", json!(i))).unwrap().job.id)
        .collect();
    let pool = WorkerPool::start(q, reg, cfg).unwrap();
    Started {
        _dir: dir,
        other: open(&db),
        pool,
        release,
        long,
        quick,
    }
}

fn open(path: &std::path::Path) -> Queue {
    Queue::open_with(QueueOptions::new(path).durability(Durability::Normal)).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_pool_wakes_for_a_commit_through_another_connection_and_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wake.db");
    let mut reg = Registry::new();
    reg.register("echo", |_: &JobContext, v: Value| Ok(v));
    let cfg = WorkerConfig {
        poll_interval: POLL,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(open(&db), reg, cfg).unwrap();
    // Another handle: its own connections, no in-process signal to the pool.
    let other = open(&db);
    each_starts_within_half_the_poll(&other, 3);
    let counts = pool.shutdown(Duration::from_secs(5));
    assert_eq!(counts.completed, 3);
}

/// With one worker busy on a long job and the others idle, a job another
/// process enqueues still starts at once, not at the next poll (the pool
/// watched for other processes' commits only while nothing ran).
#[cfg(target_os = "linux")]
#[test]
fn idle_workers_beside_a_running_job_wake_for_another_connections_enqueue() {
    let t = start_with_long(2, 0);
    wait_for("the long job runs", POLL / 2, || {
        t.other.get(t.long).unwrap().status == JobStatus::InProgress
    });
    each_starts_within_half_the_poll(&t.other, 3);
    t.release.store(true, std::sync::atomic::Ordering::SeqCst);
    let counts = t.pool.shutdown(Duration::from_secs(5));
    assert_eq!(counts.completed, 4);
}

/// While every worker is busy the pool stops watching (its workers claim
/// anyway); once one is free again it watches again, so that a job another
/// process enqueues then still starts at once, not at the next poll. A job
/// enqueued while the pool was full runs too.
#[cfg(target_os = "linux")]
#[test]
fn a_pool_that_was_full_wakes_again_for_another_connections_enqueue() {
    let t = start_with_long(1, 0);
    let other = &t.other;
    wait_for("the long job runs", POLL / 2, || {
        other.get(t.long).unwrap().status == JobStatus::InProgress
    });
    // The pool is full: its one worker runs the long job.
    let during = other
        .enqueue(NewJob::new("echo", json!("during")))
        .unwrap()
        .job;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(other.get(during.id).unwrap().status, JobStatus::Pending);
    t.release.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for("the job enqueued while the pool was full", POLL / 2, || {
        other.get(during.id).unwrap().status == JobStatus::Completed
    });
    each_starts_within_half_the_poll(other, 3);
    let counts = t.pool.shutdown(Duration::from_secs(5));
    assert_eq!(counts.completed, 5);
}

/// A pool whose workers were all busy, one of which then frees up while the
/// other still runs: the freed worker's round wakes the coordinator, which
/// watches again, so a job another process enqueues later starts at once.
/// (The coordinator marks that it waits for such a round in the same look at
/// the pool's state that finds every worker busy: a round ending just after
/// that look would otherwise leave it waiting out the whole poll.)
#[cfg(target_os = "linux")]
#[test]
fn a_worker_freed_beside_a_long_job_brings_the_watch_back() {
    let t = start_with_long(2, 1);
    let other = &t.other;
    wait_for("the quick job ends and the long one runs", POLL / 2, || {
        other.get(t.quick[0]).unwrap().status == JobStatus::Completed
            && other.get(t.long).unwrap().status == JobStatus::InProgress
    });
    std::thread::sleep(Duration::from_millis(500));
    each_starts_within_half_the_poll(other, 1);
    t.release.store(true, std::sync::atomic::Ordering::SeqCst);
    let counts = t.pool.shutdown(Duration::from_secs(5));
    assert_eq!(counts.completed, 3);
}
