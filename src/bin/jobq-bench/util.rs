//! Scratch files, opening queues, and reading the process's memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jobq::{Durability, Queue, QueueOptions};

/// A directory of database files, removed when dropped.
pub struct Scratch {
    dir: PathBuf,
    next: AtomicUsize,
}

impl Scratch {
    /// A new directory under `parent` (default: the system temp dir).
    pub fn new(parent: Option<&Path>) -> std::io::Result<Scratch> {
        let base = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = base.join(format!("jobq-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch {
            dir,
            next: AtomicUsize::new(0),
        })
    }

    /// A fresh file name for one workload (the file does not exist yet).
    pub fn file(&self, label: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{n:03}-{label}.db"))
    }

    /// Deletes a database file and its WAL and shared-memory files.
    pub fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::remove_file(PathBuf::from(p)).ok();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The durability's name as the tables print it.
pub fn mode_name(d: Durability) -> &'static str {
    match d {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    }
}

/// Opens a jobq queue on `path` with `durability`.
pub fn open_queue(path: &Path, durability: Durability) -> jobq::Result<Queue> {
    Queue::open_with(QueueOptions::new(path).durability(durability))
}

/// Runs `f` and returns how many of `n` items per second it managed.
pub fn rate<E>(n: usize, f: impl FnOnce() -> Result<(), E>) -> Result<f64, E> {
    let started = Instant::now();
    f()?;
    Ok(per_second(n, started.elapsed()))
}

/// `n` items over `elapsed`, per second.
pub fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Wall-clock time in ns since the Unix epoch (comparable across processes).
pub fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// This process's peak resident set size (VmHWM) in KiB, from /proc.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
