//! Child processes: the benchmark re-runs itself with `--child ROLE` to drain,
//! enqueue or hold a big backlog in another process; and workload 7, the peak
//! RSS of a worker process while a big backlog is pending.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobq::{Durability, JobContext, NewJob, Registry, WorkerConfig, WorkerPool};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::args::{Args, ChildRole};
use crate::pool::{drain_config, noop_registry, PerThread, DRAIN_LIMIT};
use crate::report::Row;
use crate::util::{open_queue, peak_rss_kib, unix_ns, Scratch};
use crate::BenchResult;

/// What a draining child reports on its one line of stdout.
#[derive(Debug, Serialize, Deserialize)]
struct DrainReport {
    processed: u64,
    start_ns: u128,
    end_ns: u128,
}

/// Starts this program as a child in `role` on `db`, its stdout piped.
pub fn spawn(role: &str, db: &Path, extra: &[String]) -> BenchResult<Child> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(["--child", role, "--db"])
        .arg(db)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(child)
}

/// Drains `db` (holding `n` jobs) with `procs` processes of `workers` threads:
/// jobs per second from the first start to the last finish.
pub fn drain_in_processes(db: &Path, procs: usize, workers: usize, n: usize) -> BenchResult<f64> {
    let extra = vec!["--workers".to_string(), workers.to_string()];
    let children: Vec<Child> = (0..procs)
        .map(|_| spawn("drain", db, &extra))
        .collect::<BenchResult<_>>()?;
    let mut reports = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("drain child failed: {}", out.status).into());
        }
        reports.push(serde_json::from_slice::<DrainReport>(&out.stdout)?);
    }
    let processed: u64 = reports.iter().map(|r| r.processed).sum();
    if processed != n as u64 {
        return Err(format!("children drained {processed} jobs, expected {n}").into());
    }
    let start = reports.iter().map(|r| r.start_ns).min().unwrap_or(0);
    let end = reports.iter().map(|r| r.end_ns).max().unwrap_or(0);
    let secs = (end.saturating_sub(start)) as f64 / 1e9;
    Ok(n as f64 / secs.max(1e-9))
}

/// Reads the "id unix_ns" lines an enqueueing child prints.
pub fn read_enqueue_lines(child: &mut Child) -> BenchResult<Vec<(String, u128)>> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        let (id, ns) = line.split_once(' ').ok_or("bad line from child")?;
        lines.push((id.to_string(), ns.parse()?));
    }
    Ok(lines)
}

/// The child's entry point.
pub fn main(args: &Args, role: ChildRole) -> BenchResult<()> {
    let db = Path::new(args.db.as_deref().ok_or("--db is required with --child")?);
    match role {
        ChildRole::Drain => child_drain(db, args.workers),
        ChildRole::Enqueue => child_enqueue(db, args.latency_jobs, args.latency_rate),
        ChildRole::Rss => child_rss(db, args.workers, args.rss_run),
    }
}

fn child_drain(db: &Path, workers: usize) -> BenchResult<()> {
    let queue = open_queue(db, Durability::Normal)?;
    let registry = noop_registry(&PerThread::default());
    let start_ns = unix_ns();
    let pool = WorkerPool::start(queue, registry, drain_config(workers))?;
    if !pool.wait(DRAIN_LIMIT) {
        return Err("child drain did not finish in time".into());
    }
    let end_ns = unix_ns();
    let counts = pool.shutdown(Duration::from_secs(5));
    let report = DrainReport {
        processed: counts.completed,
        start_ns,
        end_ns,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn child_enqueue(db: &Path, n: usize, rate: u32) -> BenchResult<()> {
    let queue = open_queue(db, Durability::Full)?;
    let gap = Duration::from_secs(1) / rate.max(1);
    let mut out = std::io::stdout().lock();
    let mut next = Instant::now();
    for _ in 0..n {
        next += gap;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let job = queue.enqueue(NewJob::new("noop", Value::Null))?;
        let ns = unix_ns();
        writeln!(out, "{} {ns}", job.id)?;
        out.flush()?;
    }
    Ok(())
}

/// Runs `n` jobs of a big backlog with a pool of `workers` (FULL, the default),
/// then prints this process's peak RSS in KiB.
fn child_rss(db: &Path, workers: usize, n: usize) -> BenchResult<()> {
    let queue = open_queue(db, Durability::Full)?;
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let mut registry = Registry::new();
    registry.register("noop", move |_: &JobContext, _: Value| {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(Value::Null)
    });
    let config = WorkerConfig {
        workers,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(queue, registry, config)?;
    let deadline = Instant::now() + DRAIN_LIMIT;
    while ran.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    pool.shutdown(Duration::from_secs(5));
    println!("{}", peak_rss_kib().ok_or("no VmHWM in /proc/self/status")?);
    Ok(())
}

/// Fills a file with `--rss-pending` jobs, then a child process with 4 workers
/// runs `--rss-run` of them and reports its VmHWM.
pub fn rss(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("rss") {
        return Ok(Vec::new());
    }
    let path = scratch.file("rss");
    crate::pool::backlog(&path, args.rss_pending, 0)?;
    let extra = [
        "--workers".to_string(),
        "4".to_string(),
        "--rss-run".to_string(),
        args.rss_run.to_string(),
    ];
    let out = spawn("rss", &path, &extra)?.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("rss child failed: {}", out.status).into());
    }
    let kib: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Scratch::remove(&path);
    let name = format!(
        "peak RSS (VmHWM), worker process, 4 workers, {} pending",
        args.rss_pending
    );
    Ok(vec![Row::new(name, "MiB", vec![kib / 1024.0])
        .lower()
        .at_most(64.0)])
}
