use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{PruneConfig, PRUNE_JOB_TYPE};
use crate::handlers::prune::{ensure_scheduled, prune_once, PRUNE_EVERY};
use jobq::{
    Clock, ErrorClass, Failure, JobFilter, ManualClock, NewJob, Queue, QueueOptions, Timestamp,
};

const DAY: Duration = Duration::from_secs(86_400);

fn finish(queue: &Queue, job_type: &str, ok: bool) {
    queue.enqueue(NewJob::new(job_type, Value::Null)).unwrap();
    let types = [job_type.to_string()];
    let job = queue
        .claim("t", Some(&types), 1, DAY)
        .unwrap()
        .pop()
        .unwrap();
    if ok {
        queue
            .complete(job.id, job.lease_token, &Value::Null)
            .unwrap();
    } else {
        let failure = Failure::new("bad input", ErrorClass::Permanent);
        queue.fail(job.id, job.lease_token, &failure).unwrap();
    }
}

#[test]
fn prune_keeps_failed_jobs_longer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
    let opts = QueueOptions::new(dir.path().join("jobq.db")).clock(clock.clone());
    let queue = Queue::open_with(opts).unwrap();
    finish(&queue, "ok", true);
    finish(&queue, "bad", false);
    let policy = PruneConfig::default();
    clock.advance(8 * DAY);
    let out = prune_once(&queue, &policy).unwrap();
    assert_eq!(
        out,
        json!({"deleted_completed_cancelled": 1, "deleted_failed": 0})
    );
    clock.advance(30 * DAY);
    let out = prune_once(&queue, &policy).unwrap();
    assert_eq!(
        out,
        json!({"deleted_completed_cancelled": 0, "deleted_failed": 1})
    );
}

#[test]
fn one_prune_job_is_kept_scheduled_a_day_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path().join("jobq.db")).unwrap();
    assert!(ensure_scheduled(&queue).unwrap());
    assert!(!ensure_scheduled(&queue).unwrap());
    let filter = JobFilter {
        job_type: Some(PRUNE_JOB_TYPE.into()),
        ..JobFilter::default()
    };
    let page = queue.list(&filter, 10, None).unwrap();
    assert_eq!(page.total, 1);
    let job = &page.jobs[0];
    assert_eq!(job.next_retry, job.created_at.plus(PRUNE_EVERY));
}

/// Regression: the prune used to be scheduled only when `jobq work` started, so
/// after its first run no next one was queued.
#[test]
fn each_prune_run_schedules_the_next_one_a_day_later() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_764_504_000_000));
    let opts = QueueOptions::new(dir.path().join("jobq.db")).clock(Arc::new(clock.clone()));
    let queue = Queue::open_with(opts).unwrap();
    let mut registry = jobq::Registry::new();
    let handler = crate::handlers::prune::prune_handler(queue.clone(), PruneConfig::default());
    registry.register(PRUNE_JOB_TYPE, handler);
    assert!(ensure_scheduled(&queue).unwrap());
    let config = jobq::WorkerConfig::default();
    for day in 1..=3 {
        clock.advance(DAY);
        let ran = jobq::run_due(&queue, &registry, 10, &config).unwrap();
        assert_eq!(ran.completed, 1, "day {day}: the prune ran");
        let filter = JobFilter {
            job_type: Some(PRUNE_JOB_TYPE.into()),
            status: Some(jobq::JobStatus::Pending),
            ..JobFilter::default()
        };
        let next = queue.list(&filter, 10, None).unwrap();
        assert_eq!(next.total, 1, "day {day}: the next prune is pending");
        assert_eq!(next.jobs[0].next_retry, clock.now().plus(DAY));
    }
}

/// Regression: two `jobq work` and a `jobq serve` starting together each
/// scheduled a prune (the check and the enqueue were two steps).
#[test]
fn processes_starting_together_schedule_one_prune() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobq.db");
    Queue::open(&path).unwrap();
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let q = Queue::open(&path).unwrap();
            std::thread::spawn(move || ensure_scheduled(&q).unwrap())
        })
        .collect();
    let added = starts.into_iter().map(|t| t.join().unwrap());
    assert_eq!(added.filter(|a| *a).count(), 1, "one start scheduled it");
    let filter = JobFilter {
        job_type: Some(PRUNE_JOB_TYPE.into()),
        ..JobFilter::default()
    };
    let queue = Queue::open(&path).unwrap();
    assert_eq!(queue.list(&filter, 10, None).unwrap().total, 1);
}
