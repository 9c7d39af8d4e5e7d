//! Prefetching drains of many short jobs, where the thread writing rounds
//! goes straight on to the next while other threads record the last: every
//! job runs once with one attempt, and the pool's counts and its metrics
//! (the running gauge, finished, wait and duration counts) add up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq::{JobStatus, NewJob, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::backends::both;
use crate::util::all_of;

/// The sum of the metric lines that start with `name` and carry `label`.
fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    let lines: BTreeMap<&str, f64> = text
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    lines.values().sum()
}

/// Drains `n` jobs with `workers` workers and a buffer of `prefetch`; job `i`
/// keeps its thread busy for up to `busy_us` µs (spread over the jobs).
fn drain(db: &crate::backends::Db, n: usize, workers: usize, prefetch: usize, busy_us: u64) {
    let q = db.open(|o| o);
    let ty = format!("short{prefetch}");
    q.enqueue_many((0..n).map(|i| NewJob::new(&ty, json!(i))).collect())
        .unwrap();
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let s = seen.clone();
    let mut reg = Registry::new();
    reg.register(&ty, move |ctx: &jobq::JobContext, p: Value| {
        assert_eq!(ctx.attempt(), 1);
        let i = p.as_i64().unwrap();
        let busy = Duration::from_micros(i.unsigned_abs() * 7919 % (busy_us + 1));
        let t = Instant::now();
        while t.elapsed() < busy {}
        s.lock().unwrap().push(i);
        Ok(Value::Null)
    });
    let cfg = WorkerConfig {
        workers,
        drain: true,
        ..WorkerConfig::default()
    }
    .prefetch(prefetch);
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    assert!(pool.wait(Duration::from_secs(60)), "the drain did not end");
    let counts = pool.shutdown(Duration::from_secs(5));
    let n64 = n as u64;
    assert_eq!((counts.started, counts.completed), (n64, n64), "{counts:?}");
    assert_eq!((counts.given_back, counts.failed), (0, 0), "{counts:?}");
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..n as i64).collect::<Vec<_>>());
    let jobs = all_of(&q, &ty);
    assert_eq!(jobs.len(), n);
    assert!(jobs
        .iter()
        .all(|j| j.status == JobStatus::Completed && j.attempts == 1 && j.started_at.is_some()));

    let text = q.metrics().encode();
    let label = format!("job_type=\"{ty}\"");
    assert_eq!(metric_sum(&text, "jobq_running{", ""), 0.0, "{text}");
    assert_eq!(
        metric_sum(&text, "jobq_jobs_finished_total{", &label),
        n as f64
    );
    assert_eq!(
        metric_sum(&text, "jobq_job_wait_seconds_count{", &label),
        n as f64
    );
    assert_eq!(
        metric_sum(&text, "jobq_job_duration_seconds_count{", &label),
        n as f64
    );
}

both! {
fn a_prefetch_drain_of_short_jobs_adds_up_with_a_small_buffer(db) {
    drain(&db, 1500, 4, 8, 300);
}
}

both! {
fn a_prefetch_drain_of_short_jobs_adds_up_with_a_large_buffer(db) {
    drain(&db, 3000, 4, 100, 50);
}
}
