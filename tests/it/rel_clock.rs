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
    let qa = Queue::open_with(
        QueueOptions::new(&db)
            .clock(Arc::new(clock.clone()))
            .catalog(crate::util::retry_at_once("job")),
    )
    .unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let mut reg_a = Registry::new();
    reg_a.register("job", move |_: &jobq::JobContext, _: Value| {
        while !g.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!("original"))
    });
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
    // Another process, without the type's declaration: the schedule stored with
    // each job still applies (retry at once).
    let qb = open(&db, &clock);
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

#[test]
fn a_jobs_retry_policy_does_not_depend_on_which_process_moves_it() {
    let sb = crate::util::Sandbox::new();
    sb.config(
        "[handlers.flaky]\ncommand = [\"false\"]\nbackoff = [\"2h\"]\n\n[handlers.other]\ncommand = [\"true\"]\n",
    );
    let failed_id: jobq::JobId = sb.ok(&["enqueue", "flaky"]).parse().unwrap();
    let recovered_id: jobq::JobId = sb.ok(&["enqueue", "flaky"]).parse().unwrap();
    // A library program that declares nothing (any type, default schedule).
    let clock = ManualClock::new(Timestamp(4_102_444_800_000)); // 2100-01-01, after both enqueues
    let q = open(&sb.db(), &clock);
    let two_hours = Duration::from_secs(7200);
    let claimed = q.claim("lib", None, 2, Duration::from_secs(60)).unwrap();
    assert_eq!(claimed.len(), 2);
    let first = claimed.iter().find(|j| j.id == failed_id).unwrap();
    let failure = jobq::Failure::new("upstream timed out", jobq::ErrorClass::Retryable);
    q.fail(first.id, first.lease_token, &failure).unwrap();
    assert_eq!(
        q.get(failed_id).unwrap().next_retry,
        clock.now().plus(two_hours)
    );
    // The other one's lease runs out; another program that declares nothing
    // recovers it: the schedule stored with the job applies, not the default.
    clock.advance(Duration::from_secs(120));
    let before = clock.now();
    let q2 = open(&sb.db(), &clock);
    assert_eq!(q2.recover_expired().unwrap(), 1);
    let back = q2.get(recovered_id).unwrap();
    assert_eq!(back.error_message.as_deref(), Some("lease expired"));
    assert_eq!(back.next_retry, before.plus(two_hours));
}
