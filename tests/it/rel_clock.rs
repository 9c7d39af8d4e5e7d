//! Reliability: scheduled jobs are not run early; a wall-clock jump lets
//! recovery take leases and fencing refuses the original workers' late results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{
    Clock, JobStatus, ManualClock, NewJob, Queue, QueueOptions, Registry, Timestamp, WorkerConfig,
    WorkerPool,
};
use serde_json::{json, Value};

use crate::util::wait_for;

fn open(db: &std::path::Path, clock: &ManualClock) -> Queue {
    Queue::open_with(QueueOptions::new(db).clock(Arc::new(clock.clone()))).unwrap()
}

#[test]
fn a_scheduled_job_is_not_run_early() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_764_504_000_000));
    let q = open(&dir.path().join("s.db"), &clock);
    let mut reg = Registry::new();
    reg.register("later", |_: &jobq::JobContext, _: Value| Ok(json!("ran")));
    let at = clock.now().plus(Duration::from_secs(600));
    let job = q
        .enqueue(NewJob::new("later", json!(null)).run_at(at))
        .unwrap();
    let cfg = WorkerConfig::default();
    clock.advance(Duration::from_secs(599));
    assert_eq!(jobq::run_due(&q, &reg, 10, &cfg).unwrap().processed, 0);
    assert_eq!(q.get(job.id).unwrap().status, JobStatus::Pending);
    clock.advance(Duration::from_secs(1));
    assert_eq!(jobq::run_due(&q, &reg, 10, &cfg).unwrap().completed, 1);
}

#[test]
fn a_clock_jump_lets_recovery_take_leases_and_late_results_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jump.db");
    let clock = ManualClock::new(Timestamp(1_764_504_000_000));
    let qa = open(&db, &clock);
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let mut reg_a = Registry::new();
    reg_a.register("job", move |_: &jobq::JobContext, _: Value| {
        while !g.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!("original"))
    });
    qa.set_backoff("job", jobq::Backoff::new(vec![Duration::ZERO]));
    let ids = qa
        .enqueue_many((0..3).map(|i| NewJob::new("job", json!(i))).collect())
        .unwrap();
    let cfg_a = WorkerConfig {
        workers: 3,
        heartbeat_interval: Some(Duration::from_secs(3600)),
        recovery_interval: Duration::from_secs(3600),
        ..WorkerConfig::default()
    };
    let pool_a = WorkerPool::start(qa.clone(), reg_a, cfg_a).unwrap();
    wait_for("pool A runs all three", Duration::from_secs(10), || {
        qa.stats().unwrap().by_status.in_progress == 3
    });
    clock.advance(Duration::from_secs(3600));
    let qb = open(&db, &clock);
    qb.set_backoff("job", jobq::Backoff::new(vec![Duration::ZERO]));
    assert_eq!(qb.recover_expired().unwrap(), 3);
    let mut reg_b = Registry::new();
    reg_b.register("job", |_: &jobq::JobContext, _: Value| {
        Ok(json!("after jump"))
    });
    let cfg_b = WorkerConfig {
        drain: true,
        ..WorkerConfig::default()
    };
    let pool_b = WorkerPool::start(qb.clone(), reg_b, cfg_b).unwrap();
    assert!(pool_b.wait(Duration::from_secs(20)));
    assert_eq!(pool_b.shutdown(Duration::from_secs(1)).completed, 3);
    gate.store(true, Ordering::SeqCst);
    // The grace lets A's handlers return; their results are refused by fencing.
    let counts_a = pool_a.shutdown(Duration::from_secs(5));
    assert_eq!(counts_a.released, 0);
    assert_eq!(counts_a.completed, 0, "every late result was refused");
    for id in ids {
        let j = qb.get(id).unwrap();
        assert_eq!(j.status, JobStatus::Completed);
        assert_eq!(j.result, Some(json!("after jump")));
        assert_eq!(j.attempts, 2);
    }
}
