//! `run_due` (the cron endpoint's work) writes each job's outcome in the round
//! that claims the next: a limit leaves the rest pending, never one claimed
//! ahead and left holding a lease, and every outcome is written, the last one
//! included.

use jobq::{Durability, JobError, JobStatus, NewJob, Queue, QueueOptions, Registry, WorkerConfig};
use serde_json::{json, Value};

fn registry() -> Registry {
    let mut reg = Registry::new();
    reg.register("echo", |_: &jobq::JobContext, v: Value| Ok(v));
    reg.register("bad", |_: &jobq::JobContext, _: Value| {
        Err(JobError::Permanent("no".into()))
    });
    reg
}

/// A queue under `synchronous = NORMAL` in `dir`.
fn normal_queue(dir: &tempfile::TempDir) -> Queue {
    let path = dir.path().join("due.db");
    Queue::open_with(QueueOptions::new(path).durability(Durability::Normal)).unwrap()
}

#[test]
fn a_limit_runs_that_many_and_leaves_the_rest_pending_with_no_lease_held() {
    let dir = tempfile::tempdir().unwrap();
    let q = normal_queue(&dir);
    let ids = q
        .enqueue_many((0..10).map(|i| NewJob::new("echo", json!(i))).collect())
        .unwrap();
    let sum = jobq::run_due(&q, &registry(), 4, &WorkerConfig::default()).unwrap();
    assert_eq!((sum.processed, sum.completed), (4, 4));
    let statuses: Vec<_> = ids.iter().map(|id| q.get(*id).unwrap().status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == JobStatus::Completed)
            .count(),
        4
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == JobStatus::Pending)
            .count(),
        6
    );
    let done = q.get(ids[3]).unwrap();
    assert_eq!(
        (done.status, done.result),
        (JobStatus::Completed, Some(json!(3)))
    );
}

#[test]
fn the_last_jobs_outcome_is_written_whatever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("last.db")).unwrap();
    let ok = q.enqueue(NewJob::new("echo", json!("a"))).unwrap().job.id;
    let bad = q.enqueue(NewJob::new("bad", json!(null))).unwrap().job.id;
    let sum = jobq::run_due(&q, &registry(), 100, &WorkerConfig::default()).unwrap();
    assert_eq!((sum.processed, sum.completed, sum.failed), (2, 1, 1));
    assert_eq!(q.get(ok).unwrap().status, JobStatus::Completed);
    let failed = q.get(bad).unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.locked_by.is_none() && failed.lease_expires_at.is_none());
}

#[test]
fn run_due_until_claims_nothing_more_once_told_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let q = normal_queue(&dir);
    let ids = q
        .enqueue_many((0..5).map(|i| NewJob::new("halt", json!(i))).collect())
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let mut reg = Registry::new();
    // The first job's handler asks the call to stop (as a server shutting down does).
    reg.register("halt", move |_: &jobq::JobContext, v: Value| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(v)
    });
    let sum = jobq::run_due_until(&q, &reg, 10, &WorkerConfig::default(), &stop).unwrap();
    assert_eq!((sum.processed, sum.completed), (1, 1), "{sum:?}");
    let statuses: Vec<_> = ids.iter().map(|id| q.get(*id).unwrap().status).collect();
    assert_eq!(
        statuses[0],
        JobStatus::Completed,
        "the running job's outcome is written"
    );
    assert!(
        statuses[1..].iter().all(|s| *s == JobStatus::Pending),
        "{statuses:?}"
    );
}

#[test]
fn a_job_that_runs_past_its_lease_keeps_it_and_sees_a_cancel() {
    // run_due runs on the caller's thread; a helper renews the lease, so a
    // job longer than the lease is not recovered (and claimed again
    // elsewhere) while it runs, and a cancel request reaches its handler.
    let dir = tempfile::tempdir().unwrap();
    let q = normal_queue(&dir);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = std::sync::Mutex::new(tx);
    let mut reg = Registry::new();
    reg.register("long", move |ctx: &jobq::JobContext, _: Value| {
        tx.lock().unwrap().send(()).unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(30) {
            if ctx.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(json!("ran to the end"))
    });
    let id = q.enqueue(NewJob::new("long", Value::Null)).unwrap().id;
    let cfg = WorkerConfig {
        lease: std::time::Duration::from_secs(2),
        ..WorkerConfig::default()
    };
    let q2 = q.clone();
    let runner = std::thread::spawn(move || jobq::run_due(&q2, &reg, 1, &cfg).unwrap());
    rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3000));
    assert_eq!(
        q.recover_expired().unwrap(),
        0,
        "a running job's lease ran out"
    );
    assert!(q
        .claim("other", None, 1, std::time::Duration::from_secs(60))
        .unwrap()
        .is_empty());
    q.cancel(id).unwrap();
    let summary = runner.join().unwrap();
    assert_eq!((summary.processed, summary.failed), (1, 1), "{summary:?}");
    let job = q.get(id).unwrap();
    assert_eq!(job.status, JobStatus::Cancelled, "{job:?}");
    assert_eq!(job.attempts, 1);
}
