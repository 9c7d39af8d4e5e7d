//! jobq's HTTP API in a Rust program: a worker pool and the JSON API on one
//! queue file, with an admin token created at start.
//!
//! ```text
//! cargo run --example http_api -- jobq.db 127.0.0.1:8080
//! curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
//!      -d '{"job_type":"echo","payload":{"hello":"world"}}' localhost:8080/api/v1/jobs
//! ```
//! Only the declared job type is accepted (`echo`; others are a 422, as
//! `jobq serve` answers for types its config does not declare). Stops on
//! Ctrl-C or when stdin closes.

use std::io::Read;
use std::time::Duration;

use jobq::http::HttpConfig;
use jobq::{Catalog, JobContext, JobType, Queue, QueueOptions, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let db = args.next().unwrap_or_else(|| "jobq.db".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut catalog = Catalog::declared_only();
    catalog.declare(JobType::new("echo"))?;
    let queue = Queue::open_with(QueueOptions::new(&db).catalog(catalog))?;
    let mut registry = Registry::new();
    registry.register("echo", |_: &JobContext, payload: Value| {
        Ok(json!({ "echo": payload }))
    });
    let pool = WorkerPool::start(queue.clone(), registry.clone(), WorkerConfig::default())?;
    let config = HttpConfig {
        addr,
        cron_secret: std::env::var("JOBQ_CRON_SECRET").ok(),
        ..HttpConfig::default()
    };
    let server = jobq::http::start(queue.clone(), registry, config)?;
    let admin = queue.create_token("admin", true)?;
    println!("listening on http://{}", server.addr());
    println!("admin token: {}", admin.secret);
    println!("Ctrl-C or closing stdin (Ctrl-D) stops");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    server.shutdown();
    pool.shutdown(Duration::from_secs(10));
    Ok(())
}
