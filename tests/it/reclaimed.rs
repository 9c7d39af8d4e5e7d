//! A job claimed again by the same pool while that pool still runs an earlier
//! attempt of it (its lease taken back by hand: `jobq recover --worker NAME
//! --force` on a live pool) is tracked as the later attempt: the earlier one
//! is told to stop and its outcome dropped, and a graceful shutdown hands the
//! later one back. The pool used to forget the later attempt when the earlier
//! one ended, so shutdown left the job `in_progress` until its lease expired.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq::{JobError, JobStatus, NewJob, Registry, StopReason, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::backends::both;
use crate::util::{retry_at_once, wait_for};

/// How an attempt ended: its fencing token and its stop reason.
type Ended = (i64, Option<StopReason>);

both! {
fn a_job_reclaimed_by_its_own_pool_is_handed_back_at_shutdown(db) {
    let q = db.open(|o| o.catalog(retry_at_once("slow")));
    let id = q.enqueue(NewJob::new("slow", json!({}))).unwrap().id;
    let ends: Arc<Mutex<Vec<Ended>>> = Arc::default();
    let seen = ends.clone();
    let mut reg = Registry::new();
    reg.register("slow", move |ctx: &jobq::JobContext, _: Value| {
        let until = Instant::now() + Duration::from_secs(20);
        while !ctx.is_cancelled() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        seen.lock().unwrap().push((ctx.fencing_token(), ctx.stop_reason()));
        Err(JobError::Cancelled)
    });
    let cfg = WorkerConfig {
        workers: 2,
        poll_interval: Duration::from_millis(50),
        worker_id: "own-pool".into(),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    wait_for("the first attempt runs", Duration::from_secs(10), || {
        q.get(id).unwrap().started_at.is_some()
    });
    let first = q.get(id).unwrap().lease_token;
    assert_eq!(q.recover_worker("own-pool", true).unwrap(), 1);
    wait_for("the same pool claims it again", Duration::from_secs(10), || {
        let j = q.get(id).unwrap();
        j.status == JobStatus::InProgress && j.lease_token > first
    });
    wait_for("the earlier attempt is told to stop", Duration::from_secs(10), || {
        !ends.lock().unwrap().is_empty()
    });
    assert_eq!(
        ends.lock().unwrap()[0],
        (first, Some(StopReason::LeaseLost)),
        "only the earlier attempt ended, told its lease was lost"
    );
    // Past the grace the running attempt is handed back.
    pool.shutdown(Duration::from_millis(300));
    let j = q.get(id).unwrap();
    assert_eq!(j.status, JobStatus::Pending, "handed back, not left in progress");
    assert_eq!(j.locked_by, None);
    assert_eq!(j.attempts, 1, "the handed-back attempt is not counted");
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert_eq!(ends[1].1, Some(StopReason::Shutdown), "{ends:?}");
}
}
