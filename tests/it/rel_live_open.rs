//! A database in use by other processes always opens: workers checkpointing, an
//! enqueuer growing the file, and thousands of opens beside them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{Error, Queue};

use crate::util::{signal, wait_exit, Sandbox, TEST_CONFIG};

/// Opens done in this process while the others write.
const OPENS: usize = 1500;
/// `jobq stats --json` runs beside them.
const STATS_RUNS: usize = 100;
/// The enqueuer's batches at most (50 jobs of 20 KB each): on a slow machine the
/// opens and stats runs take long, and an unbounded enqueuer grew the file by
/// tens of GB before they finished.
const MAX_ENQUEUE_RUNS: usize = 40;

fn write_batch(sb: &Sandbox) -> std::path::PathBuf {
    let path = sb.path().join("batch.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    let filler = "x".repeat(20_000);
    for i in 0..50 {
        writeln!(
            f,
            r#"{{"job_type": "echo", "payload": {{"i": {i}, "fill": "{filler}"}}}}"#
        )
        .unwrap();
    }
    path
}

#[test]
fn a_live_database_is_never_refused_as_truncated() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    let batch = write_batch(&sb);
    let batch = batch.to_str().unwrap().to_string();
    sb.ok(&["enqueue", "--jsonl", &batch]);
    let mut worker = sb.spawn(&["work", "--workers", "2"], "work");
    let stop = Arc::new(AtomicBool::new(false));
    let enqueue_failures = Arc::new(AtomicUsize::new(0));
    let enqueuer = {
        let (stop, failures) = (stop.clone(), enqueue_failures.clone());
        let sb_db = sb.db();
        let dir = sb.path().to_path_buf();
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::SeqCst) && runs < MAX_ENQUEUE_RUNS {
                let out = std::process::Command::new(crate::util::jobq_bin())
                    .current_dir(&dir)
                    .args(["enqueue", "--jsonl", &batch])
                    .env("JOBQ_DB", &sb_db)
                    .env_remove("JOBQ_CONFIG")
                    .output()
                    .unwrap();
                if !out.status.success() {
                    eprintln!("enqueue failed: {}", String::from_utf8_lossy(&out.stderr));
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                runs += 1;
            }
            runs
        })
    };
    let stats = {
        let sb_db = sb.db();
        let dir = sb.path().to_path_buf();
        std::thread::spawn(move || {
            let mut failed = Vec::new();
            for _ in 0..STATS_RUNS {
                let out = std::process::Command::new(crate::util::jobq_bin())
                    .current_dir(&dir)
                    .args(["stats", "--json"])
                    .env("JOBQ_DB", &sb_db)
                    .env_remove("JOBQ_CONFIG")
                    .output()
                    .unwrap();
                if !out.status.success() {
                    failed.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            failed
        })
    };
    let mut refused = Vec::new();
    for _ in 0..OPENS {
        match Queue::open(sb.db()) {
            Ok(q) => drop(q),
            Err(e @ Error::NotADatabase { .. }) => refused.push(e.to_string()),
            Err(e) => panic!("unexpected open error on a live database: {e}"),
        }
    }
    let stats_failed = stats.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    let enqueue_runs = enqueuer.join().unwrap();
    signal(&worker, libc::SIGTERM);
    assert_eq!(wait_exit(&mut worker, Duration::from_secs(60)), 0);
    assert!(enqueue_runs > 0, "the enqueuer never ran");
    assert!(
        refused.is_empty(),
        "{} of {OPENS} opens refused: {:?}",
        refused.len(),
        refused.first()
    );
    assert!(
        stats_failed.is_empty(),
        "{} stats runs failed: {:?}",
        stats_failed.len(),
        stats_failed.first()
    );
    assert_eq!(
        enqueue_failures.load(Ordering::SeqCst),
        0,
        "some enqueues failed"
    );
    let q = Queue::open(sb.db()).unwrap();
    let echo = q.stats().unwrap().by_type["echo"].clone();
    let total = echo.pending + echo.in_progress + echo.completed + echo.failed + echo.cancelled;
    assert_eq!(
        total,
        50 * (enqueue_runs as u64 + 1),
        "every enqueued job is stored"
    );
}
