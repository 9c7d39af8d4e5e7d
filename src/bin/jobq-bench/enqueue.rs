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

/// A measurement on a fresh file: jobs per second.
type Measure<'a> = &'a mut dyn FnMut(&std::path::Path) -> BenchResult<f64>;

/// Runs each figure in turn, `runs` times each (so machine noise hits them
/// alike), each run on a fresh file. Returns each figure's runs.
fn alternated(
    args: &Args,
    scratch: &Scratch,
    figures: &mut [Measure<'_>],
) -> BenchResult<Vec<Vec<f64>>> {
    let mut out = vec![Vec::new(); figures.len()];
    for _ in 0..args.runs {
        for (f, runs) in figures.iter_mut().zip(&mut out) {
            let p = scratch.file("enqueue");
            runs.push(f(&p)?);
            Scratch::remove(&p);
        }
    }
    Ok(out)
}

/// Runs jobq's figure and raw's figure alternately. Returns (jobq runs, raw runs).
fn paired(
    args: &Args,
    scratch: &Scratch,
    mut jobq: impl FnMut(&std::path::Path) -> BenchResult<f64>,
    mut raw: impl FnMut(&std::path::Path) -> BenchResult<f64>,
) -> BenchResult<(Vec<f64>, Vec<f64>)> {
    let mut runs = alternated(args, scratch, &mut [&mut jobq, &mut raw])?;
    let b = runs.pop().unwrap_or_default();
    Ok((runs.pop().unwrap_or_default(), b))
}

/// Enqueue one per call under NORMAL: jobq, raw on jobq's schema and raw on
/// the lean table, alternated; a row against each baseline.
fn one_per_call_normal(args: &Args, scratch: &Scratch, rows: &mut Vec<Row>) -> BenchResult<()> {
    let (d, n) = (Durability::Normal, args.enqueue_normal);
    let runs = alternated(
        args,
        scratch,
        &mut [
            &mut |p| jobq_one(p, d, n),
            &mut |p| raw::insert_one(p, d, n),
            &mut |p| crate::lean::insert_one(p, d, n),
        ],
    )?;
    let name = "enqueue one per call, NORMAL";
    rows.push(
        Row::new(name, "jobs/s", runs[0].clone())
            .raw(median(&runs[1]))
            .min_ratio(0.8),
    );
    let name = "  same, raw on the lean table (integer key, claim index only), NORMAL";
    rows.push(Row::new(name, "jobs/s", runs[0].clone()).raw(median(&runs[2])));
    Ok(())
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
        if d == Durability::Normal {
            one_per_call_normal(args, scratch, &mut rows)?;
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
