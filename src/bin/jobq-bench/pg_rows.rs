//! The PostgreSQL rows (`--db postgres://...` or `--db postgres`): enqueue one
//! per call, drains with 1-8 workers, with a prefetch buffer, and with 2 and 4
//! processes, and
//! enqueue-to-start from another process woken by LISTEN/NOTIFY, each beside
//! the raw baseline of `pg_raw` on the same server. Every run starts from an
//! empty `jobq` schema (dropped and created again).

use std::path::Path;

use jobq::{Durability, NewJob, WorkerConfig};
use serde_json::Value;

use crate::args::Args;
use crate::pool::{drain_config, drain_with, noop_registry, PerThread};
use crate::report::{median, Row};
use crate::util::{mode_name, open_queue, rate};
use crate::{child, pg_raw, BenchResult};

/// `Queue::enqueue`, one job per call, on a fresh schema: jobs per second.
fn jobq_one(url: &str, d: Durability, n: usize) -> BenchResult<f64> {
    pg_raw::reset(url)?;
    let queue = open_queue(Path::new(url), d)?;
    Ok(rate(n, || {
        for _ in 0..n {
            queue.enqueue(NewJob::new("noop", Value::Null))?;
        }
        Ok::<(), jobq::Error>(())
    })?)
}

/// Enqueue one per call, synchronous_commit on (FULL) and off (NORMAL), jobq
/// and raw alternately.
fn enqueue(args: &Args, url: &str, rows: &mut Vec<Row>) -> BenchResult<()> {
    for (d, n) in [
        (Durability::Full, args.enqueue_full),
        (Durability::Normal, args.enqueue_normal),
    ] {
        let name = format!("pg enqueue one per call, {}", mode_name(d));
        if !args.wants(&name) {
            continue;
        }
        let (mut j, mut r) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            j.push(jobq_one(url, d, n)?);
            r.push(pg_raw::insert_one(url, d, n)?);
        }
        rows.push(Row::new(name, "jobs/s", j).raw(median(&r)).min_ratio(0.8));
    }
    Ok(())
}

/// A pool configured by `config` drains a fresh backlog of `n`: jobs per second.
fn drain_threads(url: &str, d: Durability, config: WorkerConfig, n: usize) -> BenchResult<f64> {
    pg_raw::backlog(url, n)?;
    let queue = open_queue(Path::new(url), d)?;
    let registry = noop_registry(&PerThread::default());
    Ok(drain_with(&queue, registry, config, n)?.0)
}

/// `procs` processes of 4 workers (NORMAL) drain a fresh backlog of `n`.
fn drain_procs(url: &str, procs: usize, n: usize) -> BenchResult<f64> {
    pg_raw::backlog(url, n)?;
    child::drain_in_processes(Path::new(url), procs, 4, n)
}

/// Runs `f` `--drain-runs` times, alternating with the raw drain; returns
/// (jobq runs, raw runs).
fn paired_drain(
    args: &Args,
    url: &str,
    d: Durability,
    mut f: impl FnMut() -> BenchResult<f64>,
) -> BenchResult<(Vec<f64>, Vec<f64>)> {
    let (mut j, mut r) = (Vec::new(), Vec::new());
    for _ in 0..args.drain_runs {
        j.push(f()?);
        r.push(pg_raw::claim_batch_noop(url, d, args.drain)?);
    }
    Ok((j, r))
}

/// Drains with `--drain-workers` threads (NORMAL; FULL with 4), then with 2
/// and 4 processes; the 4-worker rows carry the target.
fn drain(args: &Args, url: &str, rows: &mut Vec<Row>) -> BenchResult<()> {
    let n = args.drain;
    let runs: Vec<(Durability, usize)> = args
        .drain_workers
        .iter()
        .map(|&w| (Durability::Normal, w))
        .chain([(Durability::Full, 4)])
        .collect();
    for (d, w) in runs {
        let name = format!("pg drain {n} no-op, {w} workers, {}", mode_name(d));
        if !args.wants(&name) {
            continue;
        }
        let (j, r) = paired_drain(args, url, d, || drain_threads(url, d, drain_config(w), n))?;
        let row = Row::new(name, "jobs/s", j.clone()).raw(median(&r));
        rows.push(if w == 4 { row.min_ratio(0.7) } else { row });
        if w == 4 {
            let bound: Vec<f64> = (0..args.drain_runs)
                .map(|_| pg_raw::rounds_loop(url, d, n, 4))
                .collect::<BenchResult<_>>()?;
            let name = format!(
                "  same, raw bound of the rule: complete 4 + claim 4 per tx, {}",
                mode_name(d)
            );
            rows.push(Row::new(name, "jobs/s", j).raw(median(&bound)));
        }
    }
    prefetch(args, url, rows)?;
    for procs in [2, 4] {
        let name = format!("pg drain {n} no-op, {procs} processes x 4 workers, NORMAL");
        if !args.wants(&name) {
            continue;
        }
        let (j, r) = paired_drain(args, url, Durability::Normal, || drain_procs(url, procs, n))?;
        rows.push(Row::new(name, "jobs/s", j).raw(median(&r)));
    }
    Ok(())
}

/// The prefetch buffer of the prefetch rows.
const PREFETCH: usize = 100;

/// 4 workers with a prefetch buffer of 100 (NORMAL and FULL) beside the raw
/// claim(100) + one completion statement loop, alternately.
fn prefetch(args: &Args, url: &str, rows: &mut Vec<Row>) -> BenchResult<()> {
    let n = args.drain;
    for d in [Durability::Normal, Durability::Full] {
        let name = format!(
            "pg drain {n} no-op, 4 workers, prefetch {PREFETCH}, {}",
            mode_name(d)
        );
        if !args.wants(&name) {
            continue;
        }
        let config = || drain_config(4).prefetch(PREFETCH);
        let (j, r) = paired_drain(args, url, d, || drain_threads(url, d, config(), n))?;
        rows.push(Row::new(name, "jobs/s", j).raw(median(&r)).min_ratio(0.7));
    }
    Ok(())
}

/// Every PostgreSQL workload on the server at `url`.
pub fn run(args: &Args, url: &str) -> BenchResult<Vec<Row>> {
    let mut rows = Vec::new();
    let started = std::time::Instant::now();
    enqueue(args, url, &mut rows)?;
    drain(args, url, &mut rows)?;
    eprintln!(
        "jobq-bench: pg enqueue and drain done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    rows.extend(crate::pg_latency::run(args, url)?);
    eprintln!(
        "jobq-bench: pg latency done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(rows)
}
