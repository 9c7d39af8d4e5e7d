//! jobq-bench: measures jobq beside a raw rusqlite loop doing the least SQL for
//! the same work, on the same kind of file (WAL, the same pragmas and schema,
//! UUID v7 keys), and prints both and their ratio; some rows also beside the
//! same loop on the leanest table that holds the job.
//!
//! `cargo run --release --bin jobq-bench -- [--tiny] [--json] [--data FILE]`.
//! See BENCHMARKS.md for the workloads, the targets and the latest results.

#[path = "jobq-bench/args.rs"]
mod args;
#[path = "jobq-bench/child.rs"]
mod child;
#[path = "jobq-bench/cron.rs"]
mod cron;
#[path = "jobq-bench/dashboard.rs"]
mod dashboard;
#[path = "jobq-bench/drain.rs"]
mod drain;
#[path = "jobq-bench/enqueue.rs"]
mod enqueue;
#[path = "jobq-bench/group.rs"]
mod group;
#[path = "jobq-bench/http.rs"]
mod http;
#[path = "jobq-bench/latency.rs"]
mod latency;
#[path = "jobq-bench/lean.rs"]
mod lean;
#[path = "jobq-bench/machine.rs"]
mod machine;
#[path = "jobq-bench/mixed.rs"]
mod mixed;
#[path = "jobq-bench/pg_latency.rs"]
mod pg_latency;
#[path = "jobq-bench/pg_raw.rs"]
mod pg_raw;
#[path = "jobq-bench/pg_rows.rs"]
mod pg_rows;
#[path = "jobq-bench/pg_server.rs"]
mod pg_server;
#[path = "jobq-bench/pool.rs"]
mod pool;
#[path = "jobq-bench/queues.rs"]
mod queues;
#[path = "jobq-bench/raw.rs"]
mod raw;
#[path = "jobq-bench/report.rs"]
mod report;
#[path = "jobq-bench/util.rs"]
mod util;

use clap::Parser;

/// Every workload's error: the binary reports it and exits non-zero.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

type Workload = fn(&args::Args, &util::Scratch) -> BenchResult<Vec<report::Row>>;

fn main() {
    let args = args::Args::parse().shrink_if_tiny();
    let outcome = match args.child {
        Some(role) => child::main(&args, role),
        None => match args.db.as_deref() {
            Some(db) => run_postgres(&args, db),
            None => run(&args),
        },
    };
    if let Err(e) = outcome {
        eprintln!("jobq-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &args::Args) -> BenchResult<()> {
    let scratch = util::Scratch::new(args.dir.as_deref())?;
    let workloads: [(&str, Workload); 11] = [
        ("machine", machine::run),
        ("enqueue", enqueue::run),
        ("drain", drain::run),
        ("queues", queues::run),
        ("latency", latency::run),
        ("memory", child::rss),
        ("mixed", mixed::run),
        ("http", http::run),
        ("dashboard", dashboard::run),
        ("group commit", group::run),
        ("cron", cron::run),
    ];
    let mut rows = Vec::new();
    for (label, workload) in workloads {
        let started = std::time::Instant::now();
        let got = workload(args, &scratch)?;
        if !got.is_empty() {
            eprintln!(
                "jobq-bench: {label} done in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        rows.extend(got);
    }
    if args.json {
        report::print_json(&rows, settings(args));
    } else {
        report::print_table(&rows);
    }
    Ok(())
}

/// The PostgreSQL rows on the server `--db` names (see [`pg_server`]).
fn run_postgres(args: &args::Args, db: &str) -> BenchResult<()> {
    let server = pg_server::Server::from_arg(db)?;
    let shown = server.settings()?;
    let rows = pg_rows::run(args, &server.url)?;
    if args.json {
        let mut s = settings(args);
        s["postgres"] = serde_json::Value::Object(shown);
        s["postgres"]["throwaway_cluster"] = server.throwaway().into();
        report::print_json(&rows, s);
    } else {
        let line: Vec<String> = shown
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        println!("PostgreSQL: {}", line.join(", "));
        report::print_table(&rows);
    }
    Ok(())
}

fn settings(args: &args::Args) -> serde_json::Value {
    serde_json::json!({
        "tiny": args.tiny,
        "runs": args.runs,
        "data": args.data.is_some(),
        "enqueue_full": args.enqueue_full,
        "enqueue_normal": args.enqueue_normal,
        "enqueue_many": args.enqueue_many,
        "drain": args.drain,
        "latency_jobs": args.latency_jobs,
        "latency_rate": args.latency_rate,
        "poll_ms": args.poll_ms,
        "idle_secs": args.idle_secs,
        "history": args.history,
        "rss_pending": args.rss_pending,
        "mixed": args.mixed,
        "http_requests": args.http_requests,
        "dashboard_history": args.dashboard_history,
        "dashboard_pending": args.dashboard_pending,
        "group_jobs": args.group_jobs,
        "cron_jobs": args.cron_jobs,
    })
}
