//! The pool's rounds, written by its worker threads: never more jobs held than
//! workers (without prefetch), and a long-running job does not hold back the
//! rounds that settle and claim the short ones beside it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{Durability, JobStatus, NewJob, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::backends::both;
use crate::util::{all_of, wait_for};

const WAIT: Duration = Duration::from_secs(60);

both! {
fn a_default_pool_never_holds_more_jobs_than_workers(db) {
    let q = db.open(|o| o.durability(Durability::Normal));
    q.enqueue_many((0..120).map(|i| NewJob::new("look", json!(i))).collect())
        .unwrap();
    let most = Arc::new(AtomicUsize::new(0));
    let (m, reader) = (most.clone(), q.clone());
    let mut reg = Registry::new();
    reg.register("look", move |_: &jobq::JobContext, _: Value| {
        let held = reader.stats().map_err(|e| e.to_string())?.by_status.in_progress;
        m.fetch_max(usize::try_from(held).unwrap_or(usize::MAX), Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1));
        Ok(Value::Null)
    });
    let cfg = WorkerConfig {
        workers: 3,
        drain: true,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    assert!(pool.wait(WAIT));
    let counts = pool.shutdown(Duration::from_secs(5));
    assert_eq!(counts.completed, 120);
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "at most 3 held at once, saw {most}");
}
}

both! {
fn short_jobs_are_settled_while_a_long_one_runs(db) {
    let q = db.open(|o| o.durability(Durability::Normal));
    let open = Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    let mut reg = Registry::new();
    reg.register("long", move |_: &jobq::JobContext, _: Value| {
        while !gate.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!("long"))
    });
    reg.register("short", |_: &jobq::JobContext, _: Value| Ok(json!("short")));
    let long = q.enqueue(NewJob::new("long", Value::Null).priority(1)).unwrap().id;
    q.enqueue_many((0..50).map(|i| NewJob::new("short", json!(i))).collect())
        .unwrap();
    let cfg = WorkerConfig {
        workers: 2,
        drain: true,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    wait_for("the short jobs completed", WAIT, || {
        all_of(&q, "short").iter().all(|j| j.status == JobStatus::Completed)
    });
    assert_eq!(q.get(long).unwrap().status, JobStatus::InProgress);
    open.store(true, Ordering::SeqCst);
    assert!(pool.wait(WAIT));
    let counts = pool.shutdown(Duration::from_secs(5));
    assert_eq!((counts.started, counts.completed), (51, 51));
    assert_eq!(q.get(long).unwrap().status, JobStatus::Completed);
}
}
