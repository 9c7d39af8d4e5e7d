//! jobq embedded in a Rust program: declare an application's job types (a
//! catalogue with their retry policies), register their handlers, enqueue five
//! jobs, run a worker pool until they are done, print the counts and exit.
//!
//! ```text
//! cargo run --example embedded               # runs the jobs, then exits
//! cargo run --example embedded -- --forever  # keeps serving until Ctrl-C
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{
    Backoff, Catalog, JobContext, JobError, JobType, NewJob, Queue, QueueOptions, Registry,
    WorkerConfig, WorkerPool,
};
use serde_json::{json, Value};

fn document_processing(ctx: &JobContext, payload: Value) -> jobq::HandlerResult {
    let pages = payload["pages"].as_u64().unwrap_or(1);
    for page in 1..=pages {
        if ctx.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(20));
        ctx.progress(
            page as f64 / pages as f64,
            &format!("page {page} of {pages}"),
        )
        .map_err(|e| JobError::Retryable(e.to_string()))?;
    }
    Ok(json!({"pages": pages}))
}

fn embedding_generation(_ctx: &JobContext, payload: Value) -> jobq::HandlerResult {
    let text = payload["text"]
        .as_str()
        .ok_or_else(|| JobError::Permanent("invalid payload: text is missing".into()))?;
    // A stand-in for a model call: a tiny deterministic "embedding".
    let sum: u32 = text.chars().map(u32::from).sum();
    Ok(json!({"dims": 3, "vector": [sum % 97, sum % 89, sum % 83]}))
}

fn bulk_import(ctx: &JobContext, payload: Value) -> jobq::HandlerResult {
    let rows = payload["rows"].as_u64().unwrap_or(0);
    if ctx.attempt() == 1 && rows > 500 {
        // The first try of a large import hits a (simulated) rate limit.
        return Err("upstream said: 429 Too Many Requests".into());
    }
    Ok(json!({"imported": rows}))
}

fn audit_cleanup(_ctx: &JobContext, payload: Value) -> jobq::HandlerResult {
    let days = payload["older_than_days"].as_u64().unwrap_or(30);
    Ok(json!({"checked_older_than_days": days}))
}

/// The job types this application declares; only these may be enqueued.
fn catalog() -> jobq::Result<Catalog> {
    let mut catalog = Catalog::declared_only();
    catalog
        .declare(JobType::new("document_processing").timeout(Duration::from_secs(300)))?
        .declare(JobType::new("embedding_generation").max_attempts(3))?
        .declare(JobType::new("audit_cleanup").priority(-1))?
        .declare(
            JobType::new("bulk_import")
                .timeout(Duration::from_secs(60))
                .backoff(Backoff::new(vec![Duration::from_secs(1)])?),
        )?;
    Ok(catalog)
}

fn registry() -> Registry {
    let mut reg = Registry::new();
    reg.register("document_processing", document_processing)
        .register("embedding_generation", embedding_generation)
        .register("audit_cleanup", audit_cleanup)
        .register("bulk_import", bulk_import);
    reg
}

fn enqueue_work(queue: &Queue) -> jobq::Result<()> {
    let jobs = vec![
        NewJob::new("document_processing", json!({"pages": 5})).entity("document", "doc-1"),
        NewJob::new("embedding_generation", json!({"text": "naïve café ☕"})).priority(5),
        NewJob::new("bulk_import", json!({"rows": 800})).owner("alice"),
        NewJob::new("bulk_import", json!({"rows": 50})).owner("bob"),
        NewJob::new("audit_cleanup", json!({"older_than_days": 90})),
    ];
    let ids = queue.enqueue_many(jobs)?;
    log::info!("enqueued {} jobs", ids.len());
    Ok(())
}

/// True once no job is pending or running (retries included).
fn all_done(queue: &Queue) -> jobq::Result<bool> {
    let s = queue.stats()?.by_status;
    Ok(s.pending + s.in_progress == 0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let forever = std::env::args().any(|a| a == "--forever");
    let dir = tempfile::tempdir()?;
    let options = QueueOptions::new(dir.path().join("embedded.db")).catalog(catalog()?);
    let queue = Queue::open_with(options)?;
    enqueue_work(&queue)?;
    if forever {
        log::info!("serving until Ctrl-C");
    } else {
        log::info!("running the jobs; exits when they are done (a bulk import retries after 1 s)");
    }

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;

    let config = WorkerConfig {
        workers: 4,
        poll_interval: Duration::from_millis(200),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(queue.clone(), registry(), config)?;
    while !stop.load(Ordering::Relaxed) && (forever || !all_done(&queue)?) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let counts = pool.shutdown(Duration::from_secs(10));
    log::info!("stopped: {counts}");
    log::info!("stats: {}", serde_json::to_string(&queue.stats()?)?);
    Ok(())
}
