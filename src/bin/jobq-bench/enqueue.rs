//! Workloads 1 and 2: enqueue one job per call, and `enqueue_many` in batches.

use jobq::{Durability, NewJob};
use serde_json::Value;

use crate::args::Args;
use crate::raw;
use crate::report::{median, Row};
use crate::util::{mode_name, open_queue, rate, Scratch};
use crate::BenchResult;

/// `Queue::enqueue`, one job per call: jobs per second.
fn jobq_one(path: &std::path::Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let queue = open_queue(path, durability)?;
    Ok(rate(n, || {
        for _ in 0..n {
            queue.enqueue(NewJob::new("noop", Value::Null))?;
        }
        Ok::<(), jobq::Error>(())
    })?)
}

/// `Queue::enqueue_many`, 1,000 jobs per call: jobs per second. Building the
/// `NewJob`s is part of the caller's work and is timed too.
fn jobq_many(path: &std::path::Path, durability: Durability, n: usize) -> BenchResult<f64> {
    let queue = open_queue(path, durability)?;
    Ok(rate(n, || {
        let mut left = n;
        while left > 0 {
            let take = left.min(1_000);
            let batch = (0..take)
                .map(|_| NewJob::new("noop", Value::Null))
                .collect();
            queue.enqueue_many(batch)?;
            left -= take;
        }
        Ok::<(), jobq::Error>(())
    })?)
}

/// Runs jobq's figure and raw's figure alternately, `runs` times each, each run
/// on a fresh file. Returns (jobq runs, raw runs).
fn paired(
    args: &Args,
    scratch: &Scratch,
    mut jobq: impl FnMut(&std::path::Path) -> BenchResult<f64>,
    mut raw: impl FnMut(&std::path::Path) -> BenchResult<f64>,
) -> BenchResult<(Vec<f64>, Vec<f64>)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let p = scratch.file("jobq");
        a.push(jobq(&p)?);
        Scratch::remove(&p);
        let p = scratch.file("raw");
        b.push(raw(&p)?);
        Scratch::remove(&p);
    }
    Ok((a, b))
}

/// Enqueue one per call in FULL and NORMAL, then `enqueue_many`.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    for (d, n) in [
        (Durability::Full, args.enqueue_full),
        (Durability::Normal, args.enqueue_normal),
    ] {
        let name = format!("enqueue one per call, {}", mode_name(d));
        if !args.wants(&name) {
            continue;
        }
        let (j, r) = paired(
            args,
            scratch,
            |p| jobq_one(p, d, n),
            |p| raw::insert_one(p, d, n),
        )?;
        rows.push(Row::new(name, "jobs/s", j).raw(median(&r)).min_ratio(0.8));
    }
    for d in [Durability::Normal, Durability::Full] {
        let name = format!("enqueue_many x1000, {}", mode_name(d));
        if !args.wants(&name) {
            continue;
        }
        let n = args.enqueue_many;
        let (j, r) = paired(
            args,
            scratch,
            |p| jobq_many(p, d, n),
            |p| raw::insert_batched(p, d, n),
        )?;
        rows.push(Row::new(name, "jobs/s", j).raw(median(&r)).min_ratio(0.7));
    }
    Ok(rows)
}
