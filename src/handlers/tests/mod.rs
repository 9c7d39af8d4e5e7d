//! Handler tests: each runs a handler on a real claimed job of a temporary queue.

mod exec;
mod prune;
mod webhook;

use jobq::StopFlag;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use jobq::{Job, JobContext, NewJob, Queue};

/// One claimed attempt and its context.
struct Attempt {
    _dir: tempfile::TempDir,
    queue: Queue,
    job: Job,
    ctx: JobContext,
    cancel: Arc<StopFlag>,
}

fn attempt(job_type: &str) -> Attempt {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = Queue::open(dir.path().join("jobq.db")).expect("open");
    queue
        .enqueue(NewJob::new(job_type, Value::Null))
        .expect("enqueue");
    let lease = Duration::from_secs(60);
    let job = queue
        .claim("test", None, 1, lease)
        .expect("claim")
        .pop()
        .expect("a job");
    let cancel = Arc::new(StopFlag::new());
    let ctx = JobContext::new(queue.clone(), &job, lease, cancel.clone(), None);
    Attempt {
        _dir: dir,
        queue,
        job,
        ctx,
        cancel,
    }
}
