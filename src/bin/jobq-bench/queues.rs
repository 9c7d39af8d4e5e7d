//! Named queues: the 4-worker drain with the backlog split over 4 queues, with
//! and without a concurrency limit on one of them. The limit is read in every
//! claim's transaction; it must cost at most 10 % of throughput.

use std::path::Path;

use jobq::{Durability, LimitsChange};

use crate::args::Args;
use crate::pool::{drain_config, drain_with, noop_registry, PerThread};
use crate::report::{median, Row};
use crate::util::{open_queue, Scratch};
use crate::BenchResult;

/// The queues the backlog is split over.
const QUEUES: [&str; 4] = ["q0", "q1", "q2", "q3"];

/// Spreads the backlog's jobs over [`QUEUES`] in turn.
fn split_backlog(path: &Path, n: usize) -> BenchResult<()> {
    crate::pool::backlog(path, n, 0)?;
    let conn = rusqlite::Connection::open(path)?;
    conn.execute(
        "UPDATE jobs SET queue = 'q' || (unicode(substr(hex(id), 32)) % 4) \
         WHERE status = 'pending'",
        [],
    )?;
    Ok(())
}

/// One drain of `n` jobs over 4 queues with 4 workers; `limit` on `q0`.
fn drain_split(path: &Path, n: usize, limit: Option<u32>) -> BenchResult<f64> {
    split_backlog(path, n)?;
    let queue = open_queue(path, Durability::Normal)?;
    if let Some(c) = limit {
        let change = LimitsChange {
            concurrency: Some(Some(c)),
            rate_limit: None,
        };
        queue.set_queue_limits(QUEUES[0], change)?;
    }
    let registry = noop_registry(&PerThread::default());
    let (rate, _) = drain_with(&queue, registry, drain_config(4), n)?;
    Ok(rate)
}

/// The rows: unlimited, and limited against unlimited (at least 0.9x).
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("queues") {
        return Ok(Vec::new());
    }
    let mut free = Vec::new();
    let mut limited = Vec::new();
    for _ in 0..args.drain_runs {
        for (limit, out) in [(None, &mut free), (Some(2), &mut limited)] {
            let p = scratch.file("queues");
            out.push(drain_split(&p, args.drain, limit)?);
            Scratch::remove(&p);
        }
    }
    let n = args.drain;
    Ok(vec![
        Row::new(
            format!("drain {n} no-op over 4 queues, 4 workers, NORMAL"),
            "jobs/s",
            free.clone(),
        ),
        Row::new(
            "  same, q0 limited to 2 at once, vs unlimited, NORMAL".to_string(),
            "jobs/s",
            limited,
        )
        .raw(median(&free))
        .min_ratio(0.9),
    ])
}
