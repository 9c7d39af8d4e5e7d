//! Running jobq's worker pool over a backlog: the drain every throughput
//! workload shares, with jobs counted per worker thread.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use jobq::worker::PoolCounts;
use jobq::{Durability, HandlerResult, JobContext, Queue, Registry, WorkerConfig, WorkerPool};
use serde_json::Value;

use crate::raw;
use crate::util::{open_queue, per_second};
use crate::BenchResult;

/// The longest a drain may take before the benchmark gives up on it.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Jobs run per worker thread.
pub type PerThread = Arc<Mutex<HashMap<ThreadId, u64>>>;

/// A registry with a no-op handler for `noop` that counts jobs per thread.
pub fn noop_registry(per_thread: &PerThread) -> Registry {
    let counts = per_thread.clone();
    let mut registry = Registry::new();
    registry.register("noop", move |_: &JobContext, _: Value| -> HandlerResult {
        let id = std::thread::current().id();
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(id).or_default() += 1;
        Ok(Value::Null)
    });
    registry
}

/// A pool config for `workers` threads that stops once nothing is due.
pub fn drain_config(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        drain: true,
        ..WorkerConfig::default()
    }
}

/// What one drain did.
pub struct Drained {
    /// Jobs per second, from pool start to the last completion written.
    pub rate: f64,
    /// Jobs run by each worker thread.
    pub per_thread: Vec<u64>,
}

impl Drained {
    /// The least-served worker's share over its fair share (1.0: perfectly even).
    pub fn fairness(&self, workers: usize) -> f64 {
        let total: u64 = self.per_thread.iter().sum();
        if total == 0 || workers == 0 {
            return 0.0;
        }
        let mut shares = self.per_thread.clone();
        shares.resize(workers.max(shares.len()), 0);
        let least = shares.iter().copied().min().unwrap_or(0);
        least as f64 / (total as f64 / workers as f64)
    }
}

/// Drains `queue` with a pool of `registry` and `config`; checks that `expect`
/// jobs completed.
pub fn drain_with(
    queue: &Queue,
    registry: Registry,
    config: WorkerConfig,
    expect: usize,
) -> BenchResult<(f64, PoolCounts)> {
    let started = Instant::now();
    let pool = WorkerPool::start(queue.clone(), registry, config)?;
    if !pool.wait(DRAIN_LIMIT) {
        return Err("the drain did not finish in time".into());
    }
    let elapsed = started.elapsed();
    let counts = pool.shutdown(Duration::from_secs(5));
    let settled = counts.completed + counts.failed + counts.retried;
    if settled != expect as u64 {
        return Err(format!("drain settled {settled} jobs, expected {expect}").into());
    }
    Ok((per_second(expect, elapsed), counts))
}

/// Fills a fresh file with `n` pending no-op jobs and `history` completed ones.
pub fn backlog(path: &Path, n: usize, history: usize) -> BenchResult<()> {
    drop(open_queue(path, Durability::Normal)?);
    let mut conn = raw::open(path, Durability::Normal)?;
    raw::fill(&mut conn, history, 50_000, "completed")?;
    raw::backlog(&mut conn, n)
}

/// Drains a backlog of `n` no-op jobs (after `history` completed ones) with
/// `workers` threads under `durability`.
pub fn drain_noop(
    path: &Path,
    durability: Durability,
    workers: usize,
    n: usize,
    history: usize,
) -> BenchResult<Drained> {
    drain_noop_with(path, durability, drain_config(workers), n, history)
}

/// As [`drain_noop`], with the pool's whole `config` (e.g. a prefetch buffer).
pub fn drain_noop_with(
    path: &Path,
    durability: Durability,
    config: WorkerConfig,
    n: usize,
    history: usize,
) -> BenchResult<Drained> {
    backlog(path, n, history)?;
    let queue = open_queue(path, durability)?;
    let per_thread = PerThread::default();
    let registry = noop_registry(&per_thread);
    let (rate, _) = drain_with(&queue, registry, config, n)?;
    let map = per_thread.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Drained {
        rate,
        per_thread: map.values().copied().collect(),
    })
}
