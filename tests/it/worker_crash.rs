//! A worker process killed with SIGKILL mid-job: its job comes back once the
//! lease expires and another process completes it exactly once.

use crate::backends::both;
use std::path::Path;
use std::time::Duration;

use jobq::{JobStatus, NewJob, Queue, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::util::wait_for;

/// Child: a pool whose handler marks the start, then works for a minute.
pub fn child_slow_worker(db: &Path) {
    let q = Queue::open(db).unwrap();
    let marker = std::env::var("JOBQ_TEST_OUT").expect("JOBQ_TEST_OUT") + "/started";
    let mut reg = Registry::new();
    reg.register("job", move |ctx: &jobq::JobContext, _| {
        std::fs::write(&marker, ctx.id().to_string()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
        Ok(json!("child"))
    });
    let cfg = WorkerConfig {
        workers: 1,
        lease: Duration::from_millis(1500),
        ..WorkerConfig::default()
    };
    let _pool = WorkerPool::start(q, reg, cfg).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

both! {
fn a_job_of_a_sigkilled_worker_process_is_recovered_and_completed_once(db) {
    let q = db.open(|o| o.catalog(crate::util::retry_at_once("job")));
    let job = q.enqueue(NewJob::new("job", Value::Null)).unwrap();
    let mut child = crate::child::spawn_child(
        "slow_worker",
        Path::new(&db.location()),
        &[("JOBQ_TEST_OUT", db.dir().display().to_string())],
    );
    let marker = db.dir().join("started");
    wait_for("child started the job", Duration::from_secs(30), || {
        marker.exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(q.get(job.id).unwrap().status, JobStatus::InProgress);

    let completions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = completions.clone();
    let mut reg = Registry::new();
    reg.register("job", move |_: &jobq::JobContext, _| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(json!("parent"))
    });
    let cfg = WorkerConfig {
        workers: 1,
        recovery_interval: Duration::from_millis(100),
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    wait_for("recovered and completed", Duration::from_secs(30), || {
        q.get(job.id).unwrap().status == JobStatus::Completed
    });
    pool.shutdown(Duration::from_secs(1));
    let done = q.get(job.id).unwrap();
    assert_eq!(done.result, Some(json!("parent")));
    assert_eq!(done.attempts, 2);
    assert_eq!(
        done.error_context.unwrap()["errors"][0]["message"],
        "lease expired"
    );
    assert_eq!(completions.load(std::sync::atomic::Ordering::SeqCst), 1);
}
}
