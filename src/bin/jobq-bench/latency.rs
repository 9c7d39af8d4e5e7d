//! Workload 5: enqueue-to-start latency at a low rate with idle workers, in
//! process (woken by the enqueue) and from another process (woken by the WAL
//! watch; polling is the fallback), beside a raw commit-then-Condvar-wake-then-claim
//! loop; and the CPU an idle pool uses.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jobq::{Durability, JobContext, NewJob, Registry, WorkerConfig, WorkerPool};
use serde_json::Value;

use crate::args::Args;
use crate::report::{percentile, Row};
use crate::util::{mode_name, open_queue, unix_ns, Scratch};
use crate::{child, raw, BenchResult};

/// Start times by job id, in ns on some clock.
type Starts = Arc<Mutex<HashMap<String, u128>>>;

/// A registry whose no-op handler records when each job started (`clock` ns).
fn recording(starts: &Starts, clock: fn() -> u128) -> Registry {
    let starts = starts.clone();
    let mut registry = Registry::new();
    registry.register("noop", move |ctx: &JobContext, _: Value| {
        let at = clock();
        let mut map = starts.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(ctx.id().to_string(), at);
        Ok(Value::Null)
    });
    registry
}

/// Sorted latencies in ms: start minus enqueue, for every enqueued job.
fn latencies(enqueued: &[(String, u128)], starts: &Starts) -> BenchResult<Vec<f64>> {
    let map = starts.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(enqueued.len());
    for (id, at) in enqueued {
        let started = map.get(id).ok_or("a job never started")?;
        out.push(started.saturating_sub(*at) as f64 / 1e6);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn wait_for_starts(starts: &Starts, n: usize) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while starts.lock().unwrap_or_else(|p| p.into_inner()).len() < n {
        if Instant::now() > deadline {
            return Err("jobs did not start within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A monotonic ns clock shared by every thread of this process.
fn mono_ns() -> u128 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos()
}

/// jobq in one process: enqueue at `rate`, 4 idle workers woken by the enqueue.
fn jobq_in_process(path: &Path, d: Durability, n: usize, rate: u32) -> BenchResult<Vec<f64>> {
    let queue = open_queue(path, d)?;
    let starts = Starts::default();
    let config = WorkerConfig::default();
    let pool = WorkerPool::start(queue.clone(), recording(&starts, mono_ns), config)?;
    let gap = Duration::from_secs(1) / rate.max(1);
    let mut enqueued = Vec::with_capacity(n);
    for _ in 0..n {
        std::thread::sleep(gap);
        let job = queue.enqueue(NewJob::new("noop", Value::Null))?;
        enqueued.push((job.id.to_string(), mono_ns()));
    }
    wait_for_starts(&starts, n)?;
    pool.shutdown(Duration::from_secs(5));
    latencies(&enqueued, &starts)
}

/// Bumped by the raw enqueuer after each commit; the raw claimer waits on it.
type Commits = Arc<(Mutex<usize>, Condvar)>;

/// The raw claimer: waits for each commit, then claims until nothing is left,
/// recording when each claim committed.
fn raw_claimer(
    path: &Path,
    d: Durability,
    n: usize,
    commits: &Commits,
    starts: &Starts,
) -> BenchResult<()> {
    let mut conn = raw::open(path, d)?;
    let mut seen = 0;
    while seen < n {
        let (lock, cv) = &**commits;
        let g = lock.lock().unwrap_or_else(|p| p.into_inner());
        drop(
            cv.wait_while(g, |c| *c == seen)
                .unwrap_or_else(|p| p.into_inner()),
        );
        while let Some(job) = raw::claim(&mut conn, 1)?.pop() {
            let at = mono_ns();
            starts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(raw::id_text(&job.0), at);
            seen += 1;
        }
    }
    Ok(())
}

/// Raw: one thread commits an INSERT and signals a Condvar; another wakes and
/// claims it in one `BEGIN IMMEDIATE` transaction.
fn raw_in_process(path: &Path, d: Durability, n: usize, rate: u32) -> BenchResult<Vec<f64>> {
    let writer = raw::open(path, d)?;
    let commits = Commits::default();
    let starts = Starts::default();
    let claimer = {
        let (commits, starts, path) = (commits.clone(), starts.clone(), path.to_path_buf());
        std::thread::spawn(move || raw_claimer(&path, d, n, &commits, &starts))
    };
    let gap = Duration::from_secs(1) / rate.max(1);
    let mut enqueued = Vec::with_capacity(n);
    for _ in 0..n {
        std::thread::sleep(gap);
        let id = raw::insert(&writer, "pending", "null", raw::now_ms())?;
        enqueued.push((raw::id_text(&id), mono_ns()));
        let (lock, cv) = &*commits;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        cv.notify_one();
    }
    claimer.join().map_err(|_| "claimer panicked")??;
    latencies(&enqueued, &starts)
}

/// Enqueues per second from the other process: slow enough that the pool is
/// idle (waiting) at each one.
pub const CROSS_RATE: u32 = 20;

/// jobq across processes: a child enqueues (FULL), this process's pool (its
/// commits under `d`) is woken by its commits (or finds them by polling every
/// `--poll-ms`).
pub fn jobq_cross_process(path: &Path, args: &Args, d: Durability) -> BenchResult<Vec<f64>> {
    let queue = open_queue(path, d)?;
    let starts = Starts::default();
    let config = WorkerConfig {
        poll_interval: Duration::from_millis(args.poll_ms),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(queue, recording(&starts, unix_ns), config)?;
    let extra = [
        "--latency-jobs".to_string(),
        args.latency_jobs.min(100).to_string(),
        "--latency-rate".to_string(),
        CROSS_RATE.to_string(),
    ];
    let mut enqueuer = child::spawn("enqueue", path, &extra)?;
    let enqueued = child::read_enqueue_lines(&mut enqueuer)?;
    enqueuer.wait()?;
    wait_for_starts(&starts, enqueued.len())?;
    pool.shutdown(Duration::from_secs(5));
    latencies(&enqueued, &starts)
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`.
fn cpu_time() -> BenchResult<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').ok_or("bad /proc/self/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) of stat(5), counted after the ")".
    let ticks: u64 = fields.get(11).ok_or("no utime")?.parse::<u64>()?
        + fields.get(12).ok_or("no stime")?.parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// The share of one core an idle 4-worker pool (default settings: 1 s poll,
/// the WAL watch) uses over `secs` seconds, in percent.
fn idle_cpu(path: &Path, secs: u64) -> BenchResult<f64> {
    let queue = open_queue(path, Durability::Full)?;
    let starts = Starts::default();
    let pool = WorkerPool::start(queue, recording(&starts, mono_ns), WorkerConfig::default())?;
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, t0) = (cpu_time()?, Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let used = cpu_time()?.saturating_sub(cpu0);
    let share = used.as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    pool.shutdown(Duration::from_secs(5));
    Ok(share)
}

/// p50, p99 and max rows for `jobq` against `raw` (when given).
pub fn rows(name: &str, jobq: &[f64], raw: Option<&[f64]>, targets: [Option<f64>; 3]) -> Vec<Row> {
    let stats = [("p50", 50.0), ("p99", 99.0), ("max", 100.0)];
    stats
        .iter()
        .zip(targets)
        .map(|((label, p), target)| {
            let mut row =
                Row::new(format!("{name} {label}"), "ms", vec![percentile(jobq, *p)]).lower();
            if let Some(raw) = raw {
                row = row.raw(percentile(raw, *p));
            }
            match target {
                Some(t) => row.at_most(t),
                None => row,
            }
        })
        .collect()
}

/// Every latency workload.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    let mut out = Vec::new();
    let (n, rate) = (args.latency_jobs, args.latency_rate);
    for d in [Durability::Full, Durability::Normal] {
        let name = format!("enqueue-to-start, in-process, {}", mode_name(d));
        if !args.wants(&name) {
            continue;
        }
        let jobq = jobq_in_process(&scratch.file("latency"), d, n, rate)?;
        let raw = raw_in_process(&scratch.file("latency-raw"), d, n, rate)?;
        out.extend(rows(&name, &jobq, Some(&raw), [Some(0.5), Some(5.0), None]));
    }
    let name = format!("enqueue-to-start, other process, poll {} ms", args.poll_ms);
    if args.wants(&name) {
        let jobq = jobq_cross_process(&scratch.file("latency-cross"), args, Durability::Full)?;
        out.extend(rows(&name, &jobq, None, [Some(5.0), Some(50.0), None]));
    }
    let name = format!("idle pool CPU, 4 workers, over {} s", args.idle_secs);
    if args.wants(&name) {
        let share = idle_cpu(&scratch.file("idle"), args.idle_secs)?;
        out.push(
            Row::new(name, "% of a core", vec![share])
                .lower()
                .at_most(1.0),
        );
    }
    Ok(out)
}
