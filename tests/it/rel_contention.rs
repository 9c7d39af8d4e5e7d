//! Reliability: 4 worker processes with 4 workers each on one file, one process
//! enqueuing and one cancelling and retrying at random. No busy error reaches a
//! caller or fails a job, and no job is ever run under two live leases at once.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobq::{Error, JobFilter, JobStatus, NewJob, Queue, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::util::wait_for;

const JOBS: usize = 1500;

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Child: a pool of 4 workers; each run is logged as `id token start end`.
pub fn child_pool(db: &Path) {
    let q = Queue::open(db).unwrap();
    let log_path = format!("{}.runs.{}", db.display(), std::process::id());
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let l = log.clone();
    let mut reg = Registry::new();
    reg.register("c", move |ctx: &jobq::JobContext, _: Value| {
        let start = nanos();
        std::thread::sleep(Duration::from_millis(1));
        let line = format!("{} {} {start} {}\n", ctx.id(), ctx.fencing_token(), nanos());
        l.lock().unwrap().push_str(&line);
        Ok(json!(null))
    });
    let cfg = WorkerConfig {
        workers: 4,
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q, reg, cfg).unwrap();
    let stop = format!("{}.stop", db.display());
    while !Path::new(&stop).exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    pool.shutdown(Duration::from_secs(10));
    std::fs::write(log_path, log.lock().unwrap().as_bytes()).unwrap();
}

/// Child: enqueues the jobs, one at a time and in small batches.
pub fn child_enqueuer(db: &Path) {
    let q = Queue::open(db).unwrap();
    let mut n = 0;
    while n < JOBS {
        if n % 3 == 0 {
            let batch = (0..10).map(|i| NewJob::new("c", json!(n + i))).collect();
            q.enqueue_many(batch).unwrap();
            n += 10;
        } else {
            q.enqueue(NewJob::new("c", json!(n))).unwrap();
            n += 1;
        }
    }
}

/// Child: cancels and retries jobs at random until the stop-chaos file appears.
pub fn child_chaos(db: &Path) {
    let q = Queue::open(db).unwrap();
    let stop = format!("{}.stop-chaos", db.display());
    let mut i: u64 = 0;
    while !Path::new(&stop).exists() {
        i += 1;
        let page = q.list(&JobFilter::default(), 50, None).unwrap();
        for (k, job) in page.jobs.iter().enumerate() {
            if !(k as u64 + i).is_multiple_of(7) {
                continue;
            }
            let r = match job.status {
                JobStatus::Cancelled | JobStatus::Failed => q.retry(job.id).map(|_| ()),
                _ => q.cancel(job.id).map(|_| ()),
            };
            match r {
                Ok(()) | Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("chaos got an error: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

type Run = (u64, u128, u128);

fn read_runs(dir: &Path) -> HashMap<String, Vec<Run>> {
    let mut runs: HashMap<String, Vec<Run>> = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if !p.to_string_lossy().contains(".runs.") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let run = (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            runs.entry(f[0].to_string()).or_default().push(run);
        }
    }
    runs
}

#[test]
fn four_worker_processes_an_enqueuer_and_chaos_share_one_file_safely() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("contention.db");
    let q = Queue::open(&db).unwrap();
    let spawn = |role: &str| crate::child::spawn_child(role, &db, &[]);
    let pools: Vec<_> = (0..4).map(|_| spawn("pool")).collect();
    let mut enqueuer = spawn("enqueuer");
    let mut chaos = spawn("chaos");
    assert!(
        enqueuer.wait().unwrap().success(),
        "the enqueuer saw an error"
    );
    wait_for("most jobs finished", Duration::from_secs(120), || {
        let s = q.stats().unwrap();
        s.total >= JOBS as u64 && s.by_status.completed + s.by_status.cancelled >= s.total * 9 / 10
    });
    std::fs::write(dir.path().join("contention.db.stop-chaos"), b"").unwrap();
    assert!(chaos.wait().unwrap().success(), "cancel/retry saw an error");
    wait_for("every job settled", Duration::from_secs(120), || {
        let s = q.stats().unwrap();
        s.by_status.pending + s.by_status.in_progress == 0
    });
    std::fs::write(dir.path().join("contention.db.stop"), b"").unwrap();
    for mut p in pools {
        assert!(p.wait().unwrap().success(), "a worker process failed");
    }
    let s = q.stats().unwrap();
    assert_eq!(s.by_status.failed, 0, "no job failed");
    assert_eq!(s.by_status.completed + s.by_status.cancelled, s.total);
    let runs = read_runs(dir.path());
    let total_runs: usize = runs.values().map(Vec::len).sum();
    assert!(
        total_runs as u64 >= s.by_status.completed,
        "{s:?} runs={total_runs}"
    );
    let page = q
        .list(
            &JobFilter {
                status: Some(JobStatus::Completed),
                ..JobFilter::default()
            },
            500,
            None,
        )
        .unwrap();
    for job in &page.jobs {
        assert!(
            runs.contains_key(&job.id.to_string()),
            "completed job {} never ran",
            job.id
        );
    }
    for (id, mut list) in runs {
        list.sort_by_key(|r| r.1);
        for w in list.windows(2) {
            assert!(
                w[0].2 <= w[1].1,
                "job {id} ran under two leases at once: {w:?}"
            );
            assert!(w[0].0 < w[1].0, "job {id}: fencing tokens must grow: {w:?}");
        }
    }
    let busy = q.list(&JobFilter::default(), 500, None).unwrap();
    assert!(busy
        .jobs
        .iter()
        .all(|j| !j.error_message.as_deref().unwrap_or("").contains("busy")));
}
