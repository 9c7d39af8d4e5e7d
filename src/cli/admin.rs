//! `jobq recover`, `jobq workers`, `jobq prune`.

use std::time::Duration;

use clap::Args;
use jobq::duration::parse_duration;
use jobq::JobStatus;

use crate::cli::error::CliError;
use crate::cli::table::{count, emit, emit_json};
use crate::cli::{CliResult, Context};

/// `jobq prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete jobs that finished longer ago than this: 30s, 5m, 1h, 7d, 2w
    /// [default: [prune] retention for completed and cancelled jobs,
    /// failed_retention for failed ones: 7d and 30d unless configured].
    #[arg(long, value_parser = parse_duration, value_name = "AGE")]
    older_than: Option<Duration>,
    /// The statuses to delete, comma-separated (final ones only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "completed,failed,cancelled"
    )]
    status: Vec<JobStatus>,
}

/// `jobq recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Hand back at once the jobs of this worker pool (its `locked_by`, e.g.
    /// host:1234:ab12cd), known to be dead; they keep their place in the run order.
    /// A name that no pool has (registered or holding a job) is exit 3.
    #[arg(long, value_name = "NAME", conflicts_with = "now")]
    worker: Option<String>,
    /// Hand back at once the jobs of every worker pool whose heartbeat is stale.
    #[arg(long)]
    now: bool,
    /// With --worker: even when its heartbeat is fresh.
    #[arg(long, requires = "worker")]
    force: bool,
}

/// Runs `jobq recover`: expired leases, or a dead worker's jobs at once.
pub fn recover(ctx: &Context, args: RecoverArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    let n = match (&args.worker, args.now) {
        (Some(w), _) => {
            // Read first: recovering a dead pool removes it from the list.
            let known = queue.workers()?.iter().any(|p| &p.id == w);
            let n = queue.recover_worker(w, args.force)?;
            // A name no pool has (a typo) must not pass as "nothing to do".
            if n == 0 && !known {
                return Err(CliError::NotFound(format!(
                    "no worker pool named '{w}' is registered or holds a job (see `jobq workers`)"
                )));
            }
            n
        }
        (None, true) => queue.recover_dead_workers()?,
        (None, false) => queue.recover_expired()?,
    };
    emit(&format!("recovered {}", count(n, "job")))
}

/// `jobq workers`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `jobq workers`.
pub fn workers(ctx: &Context, args: WorkersArgs) -> CliResult {
    let all = ctx.open_existing()?.workers()?;
    if args.json {
        return emit_json(&all);
    }
    let mut t = crate::cli::table::Table::new(&[
        "WORKER",
        "ALIVE",
        "RUNNING",
        "RESERVED",
        "TYPES",
        "QUEUES",
        "HEARTBEAT",
    ]);
    for w in &all {
        t.row(vec![
            w.id.clone(),
            if w.alive { "yes" } else { "no" }.into(),
            w.running.to_string(),
            w.reserved.to_string(),
            w.types.join(","),
            w.queues.as_ref().map_or("all".into(), |q| q.join(",")),
            crate::cli::table::time(Some(w.heartbeat_at)),
        ]);
    }
    emit(&t.render())
}

/// Runs `jobq prune`.
pub fn prune(ctx: &Context, args: PruneArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    let n = match args.older_than {
        Some(age) => queue.prune(age, &args.status)?,
        None => {
            // As the built-in jobq.prune job: each status its configured age.
            let (finished, failed) =
                crate::handlers::prune::prune_by_policy(&queue, &ctx.config.prune, &args.status)?;
            finished + failed
        }
    };
    emit(&format!("deleted {}", count(n, "job")))
}
