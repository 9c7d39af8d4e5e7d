//! Workload 10: the cron processing endpoint's work (`jobq::run_due`, what
//! `POST /api/v1/cron/jobs` runs) on a backlog of due no-op jobs, beside the
//! raw bound of one job at a time (one transaction per job, completing the
//! previous and claiming the next) and the raw claim(1) + completion loop (two
//! transactions per job, as `run_due` wrote them before it used rounds).

use std::path::Path;

use jobq::{Durability, WorkerConfig};

use crate::args::Args;
use crate::pool::{backlog, noop_registry, PerThread};
use crate::report::{median, Row};
use crate::util::{mode_name, open_queue, rate, Scratch};
use crate::{raw, BenchResult};

/// `run_due` of all `n` due jobs in one call: jobs per second.
fn jobq_run_due(path: &Path, d: Durability, n: usize) -> BenchResult<f64> {
    backlog(path, n, 0)?;
    let queue = open_queue(path, d)?;
    let registry = noop_registry(&PerThread::default());
    let config = WorkerConfig::default();
    let mut completed = 0;
    let per_s = rate(n, || {
        completed = jobq::run_due(&queue, &registry, n, &config)?.completed;
        Ok::<(), jobq::Error>(())
    })?;
    if completed != n as u64 {
        return Err(format!("run_due completed {completed} of {n} jobs").into());
    }
    Ok(per_s)
}

/// FULL and NORMAL, jobq and the two raw loops alternately on fresh files.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    let n = args.cron_jobs;
    let mut out = Vec::new();
    for d in [Durability::Full, Durability::Normal] {
        let name = format!("cron run_due {n} no-op, {}", mode_name(d));
        if !args.wants(&name) {
            continue;
        }
        let (mut jobq, mut rounds, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let p = scratch.file("cron");
            jobq.push(jobq_run_due(&p, d, n)?);
            Scratch::remove(&p);
            let p = scratch.file("cron-rounds");
            rounds.push(raw::rounds_loop(&p, d, n, 1)?);
            Scratch::remove(&p);
            let p = scratch.file("cron-pairs");
            pairs.push(raw::claim_one_loop(&p, d, n)?);
            Scratch::remove(&p);
        }
        out.push(
            Row::new(
                format!("{name}: vs raw one tx per job"),
                "jobs/s",
                jobq.clone(),
            )
            .raw(median(&rounds))
            .min_ratio(0.8),
        );
        out.push(
            Row::new(
                format!("{name}: vs raw claim(1) + complete, 2 tx per job"),
                "jobs/s",
                jobq,
            )
            .raw(median(&pairs)),
        );
    }
    Ok(out)
}
