use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::PruneConfig;
use crate::handlers::prune::prune_once;
use jobq::{ErrorClass, Failure, ManualClock, NewJob, Queue, QueueOptions, Timestamp};

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
