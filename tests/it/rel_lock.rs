//! Reliability: another connection holds the write lock for 3 s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{Error, JobStatus, NewJob, Queue, QueueOptions, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::util::wait_for;

/// Holds a write transaction on `db` for `hold`; returns once the lock is taken.
fn hold_write_lock(db: &std::path::Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let db = db.to_path_buf();
    let t = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; UPDATE jobs SET updated_at = updated_at WHERE 0;")
            .unwrap();
        tx.send(()).unwrap();
        std::thread::sleep(hold);
        conn.execute_batch("COMMIT").unwrap();
    });
    rx.recv().unwrap();
    t
}

#[test]
fn enqueue_and_workers_wait_out_an_external_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lock.db");
    let q = Queue::open(&db).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let mut reg = Registry::new();
    reg.register("t", move |_: &jobq::JobContext, _: Value| {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(json!(null))
    });
    let cfg = WorkerConfig {
        workers: 2,
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let before: Vec<_> = (0..20)
        .map(|i| q.enqueue(NewJob::new("t", json!(i))).unwrap().id)
        .collect();
    let locker = hold_write_lock(&db, Duration::from_secs(3));
    // Waits for the lock (default busy timeout 5 s), then succeeds.
    let during: Vec<_> = (0..20)
        .map(|i| q.enqueue(NewJob::new("t", json!(i))).unwrap().id)
        .collect();
    locker.join().unwrap();
    wait_for("all 40 jobs completed", Duration::from_secs(30), || {
        q.stats().unwrap().by_status.completed == 40
    });
    pool.shutdown(Duration::from_secs(1));
    for id in before.iter().chain(&during) {
        let j = q.get(*id).unwrap();
        assert_eq!(
            (j.status, j.attempts),
            (JobStatus::Completed, 1),
            "no job failed"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 40);
}

#[test]
fn a_pool_starts_while_another_connection_holds_the_write_lock_past_the_busy_timeout() {
    // Its first recovery meets `Busy`: logged, not fatal (`jobq work` exited 1
    // when another program held the lock for more than 5 s at its start; found
    // by a fresh-user pass). Its claims wait the lock out like any round.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("start.db");
    let q =
        Queue::open_with(QueueOptions::new(&db).busy_timeout(Duration::from_millis(200))).unwrap();
    let id = q.enqueue(NewJob::new("t", json!(1))).unwrap().id;
    let locker = hold_write_lock(&db, Duration::from_secs(2));
    let mut reg = Registry::new();
    reg.register("t", |_: &jobq::JobContext, v: Value| Ok(v));
    let cfg = WorkerConfig {
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).expect("starts while the file is locked");
    locker.join().unwrap();
    wait_for(
        "the job completes after the lock",
        Duration::from_secs(30),
        || q.get(id).unwrap().status == JobStatus::Completed,
    );
    pool.shutdown(Duration::from_secs(1));
}

#[test]
fn enqueue_fails_clearly_once_the_busy_timeout_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    let q =
        Queue::open_with(QueueOptions::new(&db).busy_timeout(Duration::from_millis(300))).unwrap();
    let locker = hold_write_lock(&db, Duration::from_secs(2));
    let err = q.enqueue(NewJob::new("t", json!(1))).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(err.to_string().starts_with("database busy"), "{err}");
    locker.join().unwrap();
    q.enqueue(NewJob::new("t", json!(2))).unwrap();
    assert_eq!(q.stats().unwrap().total, 1);
}
