//! Workload 9: concurrent enqueues under FULL (group commit). 8 threads calling
//! `Queue::enqueue`, and 8 keep-alive HTTP clients posting jobs to a server in
//! process, beside the raw one-INSERT-per-transaction loop (one thread, an
//! fsync per job), run alternately on fresh files.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use jobq::{Durability, NewJob, Queue};
use serde_json::Value;

use crate::args::Args;
use crate::http::{enqueue_request, latencies, start_server};
use crate::report::{median, percentile, Row};
use crate::util::{open_queue, per_second, Scratch};
use crate::{raw, BenchResult};

/// Threads or clients enqueueing at once.
const CLIENTS: usize = 8;

/// `CLIENTS` threads each enqueue `n / CLIENTS` jobs, one per call: jobs per
/// second, and every call's latency in ms (sorted).
fn threads(path: &Path, n: usize) -> BenchResult<(f64, Vec<f64>)> {
    let queue = Arc::new(open_queue(path, Durability::Full)?);
    let per = (n / CLIENTS).max(1);
    let started = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let q: Arc<Queue> = queue.clone();
            std::thread::spawn(move || -> BenchResult<Vec<f64>> {
                let mut out = Vec::with_capacity(per);
                for _ in 0..per {
                    let t = Instant::now();
                    q.enqueue(NewJob::new("noop", Value::Null))?;
                    out.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "an enqueuer panicked")??);
    }
    let rate = per_second(all.len(), started.elapsed());
    all.sort_by(f64::total_cmp);
    Ok((rate, all))
}

/// `CLIENTS` keep-alive clients post `n / CLIENTS` jobs each to a server on a
/// FULL queue: requests per second and latencies in ms (sorted).
fn http(path: &Path, n: usize) -> BenchResult<(f64, Vec<f64>)> {
    let (server, token) = start_server(path, Durability::Full)?;
    let per = (n / CLIENTS).max(1);
    let (got, rate) = latencies(server.addr(), CLIENTS, per, &enqueue_request(&token), 201)?;
    server.shutdown();
    Ok((rate, got))
}

/// The rate row against raw (target 2x) and its p50/p99 latency rows.
fn rows(name: &str, runs: &[(f64, Vec<f64>)], raw: &[f64]) -> Vec<Row> {
    let rates = runs.iter().map(|r| r.0).collect();
    let mut out = vec![Row::new(format!("{name} rate"), "jobs/s", rates)
        .raw(median(raw))
        .min_ratio(2.0)];
    for (p, label) in [(50.0, "p50"), (99.0, "p99")] {
        let each = runs.iter().map(|r| percentile(&r.1, p)).collect();
        out.push(Row::new(format!("{name} {label}"), "ms", each).lower());
    }
    out
}

/// Both workloads, each paired with the raw loop run after it on a fresh file.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    type Workload = fn(&Path, usize) -> BenchResult<(f64, Vec<f64>)>;
    let cases: [(&str, Workload); 2] = [
        ("enqueue from 8 threads, FULL", threads),
        (
            "http POST /api/v1/jobs from 8 keep-alive clients, FULL",
            http,
        ),
    ];
    let n = args.group_jobs;
    let mut out = Vec::new();
    for (name, workload) in cases {
        if !args.wants(name) {
            continue;
        }
        let (mut jobq, mut base) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let p = scratch.file("group");
            jobq.push(workload(&p, n)?);
            Scratch::remove(&p);
            let p = scratch.file("group-raw");
            // A quarter of the jobs: one fsync each makes it the slow side.
            base.push(raw::insert_one(&p, Durability::Full, (n / 4).max(1))?);
            Scratch::remove(&p);
        }
        out.extend(rows(name, &jobq, &base));
    }
    Ok(out)
}
