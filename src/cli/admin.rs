//! `jobq retry`, `jobq cancel`, `jobq recover`, `jobq prune`.

use std::time::Duration;

use clap::Args;
use jobq::duration::parse_duration;
use jobq::{Job, JobStatus};

use crate::cli::ids::{resolve, ID_HELP};
use crate::cli::table::{emit, emit_json};
use crate::cli::{CliResult, Context};

/// A command on one job.
#[derive(Debug, Args)]
pub struct IdArgs {
    #[arg(help = ID_HELP, value_name = "ID")]
    id: String,
    /// Print the job after the change as JSON.
    #[arg(long)]
    json: bool,
}

/// `jobq prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete jobs that finished longer ago than this: 30s, 5m, 1h, 7d.
    #[arg(long, value_parser = parse_duration, value_name = "AGE")]
    older_than: Duration,
    /// The statuses to delete, comma-separated (final ones only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "completed,failed,cancelled"
    )]
    status: Vec<JobStatus>,
}

fn report(job: &Job, json: bool) -> CliResult {
    if json {
        emit_json(job)
    } else {
        emit(&format!("job {} is {}", job.id, job.status))
    }
}

/// Runs `jobq retry`: a failed or cancelled job becomes pending, due now.
pub fn retry(ctx: &Context, args: IdArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    let job = queue.retry(resolve(&queue, &args.id)?)?;
    report(&job, args.json)
}

/// Runs `jobq cancel`: a pending job ends cancelled; a running one is asked to stop.
pub fn cancel(ctx: &Context, args: IdArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    let job = queue.cancel(resolve(&queue, &args.id)?)?;
    if job.status == JobStatus::InProgress && !args.json {
        return emit(&format!("job {} is running: cancel requested", job.id));
    }
    report(&job, args.json)
}

/// Runs `jobq recover`.
pub fn recover(ctx: &Context) -> CliResult {
    let n = ctx.open_existing()?.recover_expired()?;
    emit(&format!("recovered {n} jobs"))
}

/// Runs `jobq prune`.
pub fn prune(ctx: &Context, args: PruneArgs) -> CliResult {
    let n = ctx.open_existing()?.prune(args.older_than, &args.status)?;
    emit(&format!("deleted {n} jobs"))
}
