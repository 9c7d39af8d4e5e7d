//! Command-line flags: sizes of every workload, and the hidden child modes.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Measures jobq beside a raw rusqlite loop doing the same work on the same
/// kind of file, and prints both and their ratio.
#[derive(Debug, Clone, Parser)]
#[command(name = "jobq-bench", version)]
pub struct Args {
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run every workload at a tiny size (a few seconds): for CI.
    #[arg(long)]
    pub tiny: bool,
    /// Runs of each cheap workload; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Only run workloads whose name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// Directory for the benchmark's database files (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// JSONL file of jobs for the mixed workload (fields job_type, payload,
    /// priority, max_attempts, entity_type, entity_id, owner). Default: synthetic.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Jobs enqueued one per call under synchronous=FULL.
    #[arg(long, default_value_t = 3_000)]
    pub enqueue_full: usize,
    /// Jobs enqueued one per call under synchronous=NORMAL.
    #[arg(long, default_value_t = 20_000)]
    pub enqueue_normal: usize,
    /// Jobs enqueued with enqueue_many, in batches of 1,000.
    #[arg(long, default_value_t = 100_000)]
    pub enqueue_many: usize,
    /// No-op jobs drained per drain workload.
    #[arg(long, default_value_t = 100_000)]
    pub drain: usize,
    /// Runs of each drain workload (they are not cheap); the median is reported.
    #[arg(long, default_value_t = 1)]
    pub drain_runs: usize,
    /// Worker counts of the NORMAL drains (FULL drains always use 4).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub drain_workers: Vec<usize>,
    /// Jobs claimed one at a time by the raw claim(1)+complete loop under FULL.
    #[arg(long, default_value_t = 3_000)]
    pub claim_one_full: usize,
    /// Jobs enqueued at a low rate for the latency workloads.
    #[arg(long, default_value_t = 400)]
    pub latency_jobs: usize,
    /// Enqueues per second in the latency workloads.
    #[arg(long, default_value_t = 200)]
    pub latency_rate: u32,
    /// Poll interval of the pool in the cross-process latency workload, in ms.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// Seconds over which the CPU use of an idle pool is measured.
    #[arg(long, default_value_t = 60)]
    pub idle_secs: u64,
    /// Completed jobs stored before the claim-cost-against-history drain.
    #[arg(long, default_value_t = 1_000_000)]
    pub history: usize,
    /// Pending jobs stored while the peak RSS of a worker process is measured.
    #[arg(long, default_value_t = 1_000_000)]
    pub rss_pending: usize,
    /// Jobs the worker process runs while its RSS is measured.
    #[arg(long, default_value_t = 20_000)]
    pub rss_run: usize,
    /// Jobs in the mixed workload (cycling through --data's records).
    #[arg(long, default_value_t = 5_000)]
    pub mixed: usize,
    /// Jobs enqueued by 8 threads, and by 8 HTTP clients, under FULL (group commit).
    #[arg(long, default_value_t = 8_000)]
    pub group_jobs: usize,
    /// Due no-op jobs run by one `run_due` call (the cron endpoint's work).
    #[arg(long, default_value_t = 1_000)]
    pub cron_jobs: usize,
    /// Requests per HTTP latency workload (split among its clients).
    #[arg(long, default_value_t = 4_000)]
    pub http_requests: usize,
    /// Finished jobs stored for the dashboard workload.
    #[arg(long, default_value_t = 1_000_000)]
    pub dashboard_history: usize,
    /// Pending jobs stored for the dashboard workload.
    #[arg(long, default_value_t = 10_000)]
    pub dashboard_pending: usize,
    /// Internal: run as a child process of the benchmark.
    #[arg(long, value_enum, hide = true)]
    pub child: Option<ChildRole>,
    /// Run the PostgreSQL rows (enqueue, drain, latency, each beside a raw
    /// baseline on the same server) instead of the SQLite ones: on the database
    /// at this postgres:// URL (its `jobq` schema is dropped and created again
    /// for every run: use a scratch database), or with `postgres` on a
    /// throwaway cluster of Debian's PostgreSQL packages.
    #[arg(long, value_name = "postgres://...|postgres")]
    pub db: Option<String>,
    /// Internal: the child's worker threads.
    #[arg(long, hide = true, default_value_t = 4)]
    pub workers: usize,
}

/// What a child process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChildRole {
    /// Drain the queue with a pool (synchronous=NORMAL), print one JSON line.
    Drain,
    /// Enqueue at a low rate, print "id unix_ns" after each enqueue returns.
    Enqueue,
    /// Run `--rss-run` jobs from a big backlog, print the peak RSS.
    Rss,
}

impl Args {
    /// Shrinks every size to a few seconds' worth of work.
    pub fn shrink_if_tiny(mut self) -> Args {
        if self.tiny {
            self.runs = 1;
            self.drain_runs = 1;
            self.enqueue_full = 50;
            self.enqueue_normal = 200;
            self.enqueue_many = 2_000;
            self.drain = 1_000;
            self.claim_one_full = 50;
            self.latency_jobs = 20;
            self.latency_rate = 100;
            self.poll_ms = 1000;
            self.idle_secs = 1;
            self.history = 5_000;
            self.rss_pending = 5_000;
            self.rss_run = 500;
            self.mixed = 200;
            self.http_requests = 80;
            self.dashboard_history = 5_000;
            self.dashboard_pending = 500;
            self.group_jobs = 80;
            self.cron_jobs = 50;
        }
        self.runs = self.runs.max(1);
        self.drain_runs = self.drain_runs.max(1);
        self
    }

    /// Whether the workload called `name` is selected by `--only`.
    pub fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}
