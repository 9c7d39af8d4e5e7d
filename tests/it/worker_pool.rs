//! The worker pool in one process: end to end, panics, timeouts, cancels,
//! shutdown, priority order, many workers, and heartbeats.

use crate::backends::{both, Db};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq::{
    Backoff, Durability, JobError, JobStatus, NewJob, Queue, Registry, WorkerConfig, WorkerPool,
};
use serde_json::{json, Value};

use crate::util::wait_for;

fn open(db: &Db) -> Queue {
    db.open(|o| o.durability(Durability::Normal))
}

fn config(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        poll_interval: Duration::from_millis(50),
        timeout_grace: Duration::from_millis(200),
        ..WorkerConfig::default()
    }
}

/// Runs a pool of `workers` in drain mode until nothing is due or running, and
/// returns it (still to be shut down for its counters).
fn drain(q: &Queue, reg: Registry, workers: usize) -> WorkerPool {
    let cfg = WorkerConfig {
        drain: true,
        ..config(workers)
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    assert!(pool.wait(Duration::from_secs(60)), "drain finished");
    pool
}

fn status(q: &Queue, id: jobq::JobId) -> JobStatus {
    q.get(id).unwrap().status
}

both! {
fn a_job_is_processed_end_to_end_with_its_result_stored(db) {
    let q = open(&db);
    let mut reg = Registry::new();
    reg.register("double", |_ctx: &jobq::JobContext, p: Value| {
        Ok(json!({"doubled": p["n"].as_i64().unwrap_or(0) * 2}))
    });
    let pool = WorkerPool::start(q.clone(), reg, config(2)).unwrap();
    let job = q.enqueue(NewJob::new("double", json!({"n": 21}))).unwrap();
    wait_for("job completed", Duration::from_secs(10), || {
        status(&q, job.id) == JobStatus::Completed
    });
    let done = q.get(job.id).unwrap();
    assert_eq!(done.result, Some(json!({"doubled": 42})));
    assert_eq!(done.attempts, 1);
    assert!(done.completed_at.is_some() && done.started_at.is_some());
    let counts = pool.shutdown(Duration::from_secs(5));
    assert_eq!((counts.started, counts.completed), (1, 1));
}
}

both! {
fn an_enqueue_in_the_same_process_wakes_an_idle_worker_without_polling(db) {
    let q = open(&db);
    let mut reg = Registry::new();
    reg.register("noop", |_: &jobq::JobContext, _| Ok(Value::Null));
    let cfg = WorkerConfig {
        poll_interval: Duration::from_secs(3600),
        ..config(1)
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let job = q.enqueue(NewJob::new("noop", Value::Null)).unwrap();
    // With an hour-long poll interval only the wake-up can start the job.
    wait_for("woken job done", Duration::from_secs(30), || {
        status(&q, job.id) == JobStatus::Completed
    });
    pool.shutdown(Duration::from_secs(1));
}
}

both! {
fn a_panicking_handler_fails_its_attempt_and_the_pool_keeps_serving(db) {
    let q = open(&db);
    let mut reg = Registry::new();
    reg.register("boom", |_: &jobq::JobContext, _| -> jobq::HandlerResult {
        panic!("kaboom at step 3")
    });
    reg.register("ok", |_: &jobq::JobContext, _| Ok(json!("fine")));
    let pool = WorkerPool::start(q.clone(), reg, config(1)).unwrap();
    let bad = q
        .enqueue(NewJob::new("boom", Value::Null).max_attempts(1))
        .unwrap();
    let good: Vec<_> = (0..5)
        .map(|_| q.enqueue(NewJob::new("ok", Value::Null)).unwrap())
        .collect();
    wait_for("all settled", Duration::from_secs(10), || {
        status(&q, bad.id) == JobStatus::Failed
            && good
                .iter()
                .all(|j| status(&q, j.id) == JobStatus::Completed)
    });
    let failed = q.get(bad.id).unwrap();
    assert_eq!(
        failed.error_message.as_deref(),
        Some("panic: kaboom at step 3")
    );
    assert_eq!(failed.error_context.unwrap()["class"], "retryable");
    pool.shutdown(Duration::from_secs(1));
}
}

both! {
fn a_handler_past_its_timeout_fails_as_timed_out_is_retried_and_its_late_result_refused(db) {
    let mut catalog = jobq::Catalog::any_type();
    catalog
        .declare(
            jobq::JobType::new("slow")
                .timeout(Duration::from_millis(300))
                .backoff(Backoff::new(vec![Duration::ZERO]).unwrap()),
        )
        .unwrap();
    let q = db.open(|o| o.durability(Durability::Normal).catalog(catalog));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut reg = Registry::new();
    reg.register("slow", move |_: &jobq::JobContext, _| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            // Ignores cancellation: sleeps well past timeout + grace.
            std::thread::sleep(Duration::from_millis(1500));
            return Ok(json!("late"));
        }
        Ok(json!("second attempt"))
    });
    let pool = WorkerPool::start(q.clone(), reg, config(1)).unwrap();
    let job = q.enqueue(NewJob::new("slow", Value::Null)).unwrap();
    wait_for("retried job done", Duration::from_secs(20), || {
        status(&q, job.id) == JobStatus::Completed
    });
    let done = q.get(job.id).unwrap();
    assert_eq!(done.result, Some(json!("second attempt")));
    assert_eq!(done.attempts, 2);
    let errors = &done.error_context.unwrap()["errors"];
    assert_eq!(errors[0]["message"], "timed out after 0.3 s");
    // The first attempt's late "late" result arrives after this and is refused.
    wait_for("late handler returned", Duration::from_secs(10), || {
        calls.load(Ordering::SeqCst) == 2
    });
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(q.get(job.id).unwrap().result, Some(json!("second attempt")));
    pool.shutdown(Duration::from_secs(1));
}
}

/// A registry whose "loop" handler reports progress "started", then runs
/// until its context reports a cancel, and returns `JobError::Cancelled`.
fn looping_until_cancelled() -> Registry {
    let mut reg = Registry::new();
    reg.register("loop", |ctx: &jobq::JobContext, _| {
        ctx.progress(0.1, "started").ok();
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(JobError::Cancelled)
    });
    reg
}

both! {
fn cancelling_a_running_job_reaches_its_handler_and_it_ends_cancelled(db) {
    let q = open(&db);
    let reg = looping_until_cancelled();
    let cfg = WorkerConfig {
        poll_interval: Duration::from_millis(50),
        ..config(1)
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let job = q.enqueue(NewJob::new("loop", Value::Null)).unwrap();
    wait_for("running", Duration::from_secs(10), || {
        q.get(job.id).unwrap().progress.is_some()
    });
    assert_eq!(
        q.get(job.id).unwrap().progress.unwrap()["message"],
        "started"
    );
    q.cancel(job.id).unwrap();
    wait_for("cancelled", Duration::from_secs(10), || {
        status(&q, job.id) == JobStatus::Cancelled
    });
    let counts = pool.shutdown(Duration::from_secs(1));
    assert_eq!(counts.started, 1, "never retried");
    assert_eq!(q.get(job.id).unwrap().attempts, 1);
}
}

both! {
fn a_cancel_through_the_pool_s_own_queue_reaches_its_handler_before_the_next_poll(db) {
    // The pool polls for cancel requests every two minutes and its lease's
    // heartbeat is as rare: only the same process's cancel, single or bulk,
    // reaching the pool at its next supervisor tick ends these jobs within
    // the wait.
    let q = open(&db);
    let reg = looping_until_cancelled();
    let cfg = WorkerConfig {
        poll_interval: Duration::from_secs(120),
        heartbeat_interval: Some(Duration::from_secs(120)),
        ..config(1)
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let running = |id| q.get(id).unwrap().progress.is_some();
    let one = q.enqueue(NewJob::new("loop", json!(1))).unwrap();
    wait_for("the first job runs", Duration::from_secs(10), || running(one.id));
    q.cancel(one.id).unwrap();
    wait_for("cancelled by id", Duration::from_secs(20), || {
        status(&q, one.id) == JobStatus::Cancelled
    });
    let two = q.enqueue(NewJob::new("loop", json!(2))).unwrap();
    wait_for("the second job runs", Duration::from_secs(10), || running(two.id));
    let filter = jobq::JobFilter {
        job_type: Some("loop".into()),
        ..jobq::JobFilter::default()
    };
    assert_eq!(q.cancel_matching(&filter).unwrap(), 1);
    wait_for("cancelled in bulk", Duration::from_secs(20), || {
        status(&q, two.id) == JobStatus::Cancelled
    });
    let counts = pool.shutdown(Duration::from_secs(1));
    assert_eq!(counts.started, 2, "never retried");
    for id in [one.id, two.id] {
        assert_eq!(q.get(id).unwrap().attempts, 1);
    }
}
}

both! {
fn shutdown_hands_running_jobs_back_without_using_their_attempt(db) {
    let q = open(&db);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let f = finished.clone();
    let mut reg = Registry::new();
    reg.register("work", move |ctx: &jobq::JobContext, p: Value| {
        let long = p["long"].as_bool().unwrap_or(false);
        let until = Instant::now() + Duration::from_secs(if long { 30 } else { 0 });
        while Instant::now() < until && !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if ctx.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        f.lock().unwrap().push(ctx.id());
        Ok(Value::Null)
    });
    let pool = WorkerPool::start(q.clone(), reg, config(2)).unwrap();
    let short = q
        .enqueue(NewJob::new("work", json!({"long": false})))
        .unwrap();
    let long: Vec<_> = (0..2)
        .map(|_| {
            q.enqueue(NewJob::new("work", json!({"long": true})))
                .unwrap()
        })
        .collect();
    wait_for("long jobs running", Duration::from_secs(10), || {
        long.iter()
            .all(|j| status(&q, j.id) == JobStatus::InProgress)
    });
    let counts = pool.shutdown(Duration::from_millis(200));
    assert_eq!(counts.released, 2);
    assert_eq!(status(&q, short.id), JobStatus::Completed);
    for j in &long {
        let back = q.get(j.id).unwrap();
        assert_eq!(
            (back.status, back.attempts),
            (JobStatus::Pending, 0),
            "attempt not used"
        );
        assert!(back.locked_by.is_none());
    }
    assert_eq!(
        *finished.lock().unwrap(),
        vec![short.id],
        "nothing else ran to the end"
    );
}
}

both! {
fn a_thousand_jobs_on_eight_workers_complete_exactly_once(db) {
    let q = open(&db);
    let runs = Arc::new(Mutex::new(HashMap::<jobq::JobId, u32>::new()));
    let r = runs.clone();
    let mut reg = Registry::new();
    reg.register("count", move |ctx: &jobq::JobContext, _| {
        *r.lock().unwrap().entry(ctx.id()).or_default() += 1;
        Ok(json!(ctx.attempt()))
    });
    let ids = q
        .enqueue_many((0..1000).map(|i| NewJob::new("count", json!(i))).collect())
        .unwrap();
    let pool = drain(&q, reg, 8);
    let counts = pool.shutdown(Duration::from_secs(1));
    assert_eq!(counts.completed, 1000);
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 1000);
    assert!(runs.values().all(|n| *n == 1), "every handler ran once");
    assert_eq!(q.stats().unwrap().by_status.completed, 1000);
    assert!(ids.iter().all(|id| q.get(*id).unwrap().attempts == 1));
}
}

both! {
fn a_single_worker_runs_mixed_priorities_in_priority_order(db) {
    let q = open(&db);
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let mut reg = Registry::new();
    reg.register("p", move |_: &jobq::JobContext, p: Value| {
        o.lock().unwrap().push(p["prio"].as_i64().unwrap());
        Ok(Value::Null)
    });
    let prios = [3, -1, 10, 0, 3, 7, -20, 10, 1];
    for p in prios {
        q.enqueue(NewJob::new("p", json!({"prio": p})).priority(p as i32))
            .unwrap();
    }
    drain(&q, reg, 1);
    let mut want = prios.to_vec();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(*order.lock().unwrap(), want);
}
}

both! {
fn a_live_long_job_heartbeating_past_several_leases_is_never_recovered(db) {
    let q = open(&db);
    let mut reg = Registry::new();
    reg.register("long", |ctx: &jobq::JobContext, _| {
        std::thread::sleep(Duration::from_millis(2500));
        Ok(json!(ctx.attempt()))
    });
    let cfg = WorkerConfig {
        lease: Duration::from_millis(600),
        heartbeat_interval: Some(Duration::from_millis(150)),
        recovery_interval: Duration::from_millis(100),
        ..config(1)
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let job = q.enqueue(NewJob::new("long", Value::Null)).unwrap();
    let mut recovered = 0;
    wait_for("long job done", Duration::from_secs(30), || {
        recovered += q.recover_expired().unwrap();
        status(&q, job.id) == JobStatus::Completed
    });
    assert_eq!(recovered, 0);
    let done = q.get(job.id).unwrap();
    assert_eq!((done.attempts, done.result), (1, Some(json!(1))));
    pool.shutdown(Duration::from_secs(1));
}
}

both! {
fn run_due_runs_due_jobs_once_and_counts_them(db) {
    let q = open(&db);
    let mut reg = Registry::new();
    reg.register("ok", |_: &jobq::JobContext, _| Ok(Value::Null));
    reg.register("bad", |_: &jobq::JobContext, _| {
        Err(JobError::Permanent("invalid input".into()))
    });
    reg.register("flaky", |_: &jobq::JobContext, _| {
        Err("connection reset".into())
    });
    for t in ["ok", "ok", "bad", "flaky"] {
        q.enqueue(NewJob::new(t, Value::Null)).unwrap();
    }
    q.enqueue(NewJob::new("unregistered", Value::Null)).unwrap();
    let sum = jobq::run_due(&q, &reg, 3, &WorkerConfig::default()).unwrap();
    assert_eq!(sum.processed, 3);
    let sum2 = jobq::run_due(&q, &reg, 50, &WorkerConfig::default()).unwrap();
    assert_eq!(
        sum.processed + sum2.processed,
        4,
        "the unregistered type is left alone"
    );
    assert_eq!(sum.completed + sum2.completed, 2);
    assert_eq!(sum.failed + sum2.failed, 1);
    assert_eq!(sum.retried + sum2.retried, 1);
}
}

both! {
/// A handler that returns `JobError::Cancelled` on its own cancels its job: it is
/// not retried (it used to be retried as "handler gave up" and end failed).
fn a_handler_returning_cancelled_cancels_its_job(db) {
    let q = open(&db);
    let mut reg = Registry::new();
    reg.register("quit", |_: &jobq::JobContext, _| Err(JobError::Cancelled));
    let job = q.enqueue(NewJob::new("quit", Value::Null)).unwrap();
    drain(&q, reg, 1);
    let done = q.get(job.id).unwrap();
    assert_eq!((done.status, done.attempts), (JobStatus::Cancelled, 1));
}
}

both! {
fn settings_a_config_file_refuses_do_not_start_a_pool(db) {
    let q = open(&db);
    let job = q.enqueue(NewJob::new("t", json!({}))).unwrap();
    let bad = [
        WorkerConfig { lease: Duration::ZERO, ..config(2) },
        WorkerConfig { queues: Some(vec![]), ..config(2) },
        WorkerConfig { queues: Some(vec!["Not A Queue".into()]), ..config(2) },
        WorkerConfig { workers: jobq::MAX_WORKERS + 1, ..config(2) },
    ];
    for cfg in bad {
        let mut reg = Registry::new();
        reg.register("t", |_: &jobq::JobContext, _: Value| Ok(Value::Null));
        let e = WorkerPool::start(q.clone(), reg, cfg).unwrap_err();
        assert!(matches!(e, jobq::Error::Invalid { .. }), "{e}");
    }
    let after = q.get(job.id).unwrap();
    assert_eq!((after.status, after.attempts), (JobStatus::Pending, 0), "untouched");
    assert!(q.workers().unwrap().is_empty(), "no pool registered");
}
}

both! {
fn intervals_of_duration_max_mean_never_and_break_nothing(db) {
    let q = open(&db);
    let job = q.enqueue(NewJob::new("slow", json!({}))).unwrap();
    let mut reg = Registry::new();
    reg.register("slow", |_: &jobq::JobContext, _: Value| {
        std::thread::sleep(Duration::from_millis(1500));
        Ok(json!("done"))
    });
    let cfg = WorkerConfig {
        lease: Duration::from_secs(1),
        poll_interval: Duration::MAX,
        recovery_interval: Duration::MAX,
        drain: true,
        ..config(1)
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    assert!(pool.wait(Duration::MAX), "drains; a wait of Duration::MAX is forever");
    pool.shutdown(Duration::MAX);
    let done = q.get(job.id).unwrap();
    assert_eq!(
        (done.status, done.attempts, done.result),
        (JobStatus::Completed, 1, Some(json!("done"))),
        "heartbeats kept the 1 s lease through the 1.5 s job"
    );
}
}

both! {
fn a_snooze_or_retry_of_duration_max_waits_the_longest_delay(db) {
    let q = open(&db);
    let snoozer = q.enqueue(NewJob::new("snooze", json!({}))).unwrap();
    let retrier = q.enqueue(NewJob::new("later", json!({}))).unwrap();
    let mut reg = Registry::new();
    reg.register("snooze", |_: &jobq::JobContext, _: Value| {
        Err(JobError::Snooze(Duration::MAX))
    });
    reg.register("later", |_: &jobq::JobContext, _: Value| {
        Err(JobError::RetryAfter { delay: Duration::MAX, message: "not yet".into() })
    });
    let pool = WorkerPool::start(q.clone(), reg, WorkerConfig { drain: true, ..config(2) }).unwrap();
    assert!(pool.wait(Duration::from_secs(30)));
    pool.shutdown(Duration::from_secs(5));
    let longest = jobq::MAX_DELAY_S as i64 * 1000;
    for id in [snoozer.id, retrier.id] {
        let job = q.get(id).unwrap();
        assert_eq!(job.status, JobStatus::Pending);
        let wait = job.next_retry.0 - job.updated_at.0;
        assert!((longest - 1000..=longest).contains(&wait), "{id}: waits {wait} ms");
        let shown = serde_json::to_value(&job).unwrap()["next_retry"].clone();
        assert!(!shown.as_str().unwrap().starts_with("9999"), "{shown}");
    }
}
}

both! {
fn a_type_that_never_times_out_keeps_its_heartbeats(db) {
    // `JobType::timeout(Duration::MAX)`: no deadline. The supervisor adds the
    // pool's grace to it; an overflow there used to end the supervisor, and
    // with it every heartbeat, so a live job's lease ran out.
    let mut catalog = jobq::Catalog::any_type();
    catalog
        .declare(jobq::JobType::new("forever").timeout(Duration::MAX))
        .unwrap();
    let q = db.open(|o| o.catalog(catalog));
    let running = Arc::new(AtomicUsize::new(0));
    let r = running.clone();
    let mut reg = Registry::new();
    reg.register("forever", move |_: &jobq::JobContext, _: Value| {
        r.store(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(4000));
        Ok(json!("ok"))
    });
    let cfg = WorkerConfig {
        workers: 1,
        lease: Duration::from_secs(2),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let id = q.enqueue(NewJob::new("forever", Value::Null)).unwrap().id;
    wait_for("the job runs", Duration::from_secs(30), || running.load(Ordering::SeqCst) == 1);
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(q.recover_expired().unwrap(), 0, "a live job's lease ran out");
    wait_for("the job completes", Duration::from_secs(30), || {
        q.get(id).unwrap().status == JobStatus::Completed
    });
    pool.shutdown(Duration::from_secs(5));
}
}
