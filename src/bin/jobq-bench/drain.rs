//! Workloads 3, 4 and 6: draining no-op jobs with 1-8 workers, with two
//! processes on one file, and against a long completed history.

use std::path::Path;
use std::time::Duration;

use jobq::{Durability, Queue};

use crate::args::Args;
use crate::child;
use crate::pool::{drain_config, drain_noop, drain_noop_with, Drained};
use crate::raw;
use crate::report::{median, Row};
use crate::util::{mode_name, open_queue, per_second, Scratch};
use crate::BenchResult;

/// Runs `f` on a fresh file `--drain-runs` times and removes the file after each.
fn on_fresh<T>(
    args: &Args,
    scratch: &Scratch,
    mut f: impl FnMut(&Path) -> BenchResult<T>,
) -> BenchResult<Vec<T>> {
    let mut out = Vec::new();
    for _ in 0..args.drain_runs {
        let p = scratch.file("drain");
        out.push(f(&p)?);
        Scratch::remove(&p);
    }
    Ok(out)
}

/// The raw claim(100) + one-completion-transaction figure, median of the runs.
fn raw_batch(args: &Args, scratch: &Scratch, d: Durability) -> BenchResult<f64> {
    let runs = on_fresh(args, scratch, |p| raw::claim_batch_noop(p, d, args.drain))?;
    Ok(median(&runs))
}

/// `Queue::claim(1)` then `Queue::complete`, one job at a time: jobs per second.
fn api_one_loop(path: &Path, d: Durability, n: usize) -> BenchResult<f64> {
    crate::pool::backlog(path, n, 0)?;
    let queue: Queue = open_queue(path, d)?;
    let started = std::time::Instant::now();
    let mut done = 0;
    let lease = Duration::from_secs(300);
    while let Some(job) = queue.claim("bench", None, 1, lease)?.pop() {
        queue.complete(job.id, job.lease_token, &serde_json::Value::Null)?;
        done += 1;
    }
    Ok(per_second(done, started.elapsed()))
}

/// The one-job-at-a-time loops: the Queue API against raw SQL.
fn one_at_a_time(args: &Args, scratch: &Scratch, d: Durability) -> BenchResult<Row> {
    let n = match d {
        Durability::Full => args.claim_one_full,
        Durability::Normal => args.drain / 5,
    };
    let jobq = on_fresh(args, scratch, |p| api_one_loop(p, d, n))?;
    let raw = on_fresh(args, scratch, |p| raw::claim_one_loop(p, d, n))?;
    let name = format!("claim(1)+complete loop, {}", mode_name(d));
    Ok(Row::new(name, "jobs/s", jobq)
        .raw(median(&raw))
        .min_ratio(0.8))
}

/// Drains with 1, 2, 4 and 8 workers; the fairness of the 4-worker drains.
fn by_workers(
    args: &Args,
    scratch: &Scratch,
    d: Durability,
    rows: &mut Vec<Row>,
) -> BenchResult<()> {
    let raw = raw_batch(args, scratch, d)?;
    let counts: &[usize] = match d {
        Durability::Normal => &args.drain_workers,
        Durability::Full => &[4],
    };
    let mut by_count = Vec::new();
    for &w in counts {
        let runs: Vec<Drained> = on_fresh(args, scratch, |p| drain_noop(p, d, w, args.drain, 0))?;
        let rates = rates_of(&runs);
        let name = format!("drain {} no-op, {w} workers, {}", args.drain, mode_name(d));
        let row = Row::new(name, "jobs/s", rates).raw(raw);
        by_count.push((w, row.jobq));
        rows.push(if w == 4 { row.min_ratio(0.8) } else { row });
        if w == 4 {
            let bound = on_fresh(args, scratch, |p| raw::rounds_loop(p, d, args.drain, 4))?;
            let name = format!(
                "  same, raw bound of the rule: complete 4 + claim 4 per tx, {}",
                mode_name(d)
            );
            rows.push(Row::new(name, "jobs/s", rates_of(&runs)).raw(median(&bound)));
            let fair: Vec<f64> = runs.iter().map(|r| r.fairness(4)).collect();
            let name = format!(
                "fairness, 4 workers, least share / fair share, {}",
                mode_name(d)
            );
            rows.push(Row::new(name, "x", fair).at_least(0.5));
        }
    }
    let one = by_count.iter().find(|(w, _)| *w == 1).map(|x| x.1);
    let eight = by_count.iter().find(|(w, _)| *w == 8).map(|x| x.1);
    if let (Some(one), Some(eight)) = (one, eight) {
        let name = format!("8 workers / 1 worker throughput, {}", mode_name(d));
        rows.push(Row::new(name, "x", vec![eight / one]).at_least(1.0));
    }
    Ok(())
}

fn rates_of(runs: &[Drained]) -> Vec<f64> {
    runs.iter().map(|r| r.rate).collect()
}

/// The prefetch buffer of this row.
const PREFETCH: usize = 100;

/// 4 workers with a prefetch buffer of 100 against the raw claim(100) + one
/// completion transaction loop.
fn prefetch(args: &Args, scratch: &Scratch, d: Durability) -> BenchResult<Row> {
    let raw = raw_batch(args, scratch, d)?;
    let config = || drain_config(4).prefetch(PREFETCH);
    let runs = on_fresh(args, scratch, |p| {
        drain_noop_with(p, d, config(), args.drain, 0)
    })?;
    let name = format!(
        "drain {} no-op, 4 workers, prefetch {PREFETCH}, {}",
        args.drain,
        mode_name(d)
    );
    Ok(Row::new(name, "jobs/s", rates_of(&runs))
        .raw(raw)
        .min_ratio(0.8))
}

/// Two processes of 4 workers drain one file (NORMAL).
fn two_processes(args: &Args, scratch: &Scratch) -> BenchResult<Row> {
    let runs = on_fresh(args, scratch, |p| {
        crate::pool::backlog(p, args.drain, 0)?;
        child::drain_in_processes(p, 2, 4, args.drain)
    })?;
    let raw = raw_batch(args, scratch, Durability::Normal)?;
    let name = format!(
        "drain {} no-op, 2 processes x 4 workers, NORMAL",
        args.drain
    );
    Ok(Row::new(name, "jobs/s", runs).raw(raw).min_ratio(0.8))
}

/// Drain with `args.history` completed jobs stored, against an empty table. The
/// row's raw column is the empty-table drain.
fn history(args: &Args, scratch: &Scratch) -> BenchResult<Row> {
    let d = Durability::Normal;
    let n = args.drain;
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..args.drain_runs {
        let p = scratch.file("history");
        with.push(drain_noop(&p, d, 4, n, args.history)?.rate);
        Scratch::remove(&p);
        let p = scratch.file("empty");
        without.push(drain_noop(&p, d, 4, n, 0)?.rate);
        Scratch::remove(&p);
    }
    let name = format!(
        "drain {n}, 4 workers, {} completed in history vs empty, NORMAL",
        args.history
    );
    Ok(Row::new(name, "jobs/s", with)
        .raw(median(&without))
        .min_ratio(0.8))
}

/// Every drain workload.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    for d in [Durability::Normal, Durability::Full] {
        if args.wants(&format!("claim(1)+complete loop, {}", mode_name(d))) {
            rows.push(one_at_a_time(args, scratch, d)?);
        }
        if args.wants(&format!("drain workers {}", mode_name(d))) {
            by_workers(args, scratch, d, &mut rows)?;
        }
        if args.wants(&format!("drain prefetch {}", mode_name(d))) {
            rows.push(prefetch(args, scratch, d)?);
        }
    }
    if args.wants("drain 2 processes") {
        rows.push(two_processes(args, scratch)?);
    }
    if args.wants("drain history") {
        rows.push(history(args, scratch)?);
    }
    Ok(rows)
}
