//! `jobq schedule list|run`: the recurring schedules of the config (and the
//! built-in `jobq.prune`), their next and last fire times, and a run by hand.

use clap::{Args, Subcommand};
use jobq::ScheduleInfo;

use crate::cli::table::{emit, emit_json, time, Table};
use crate::cli::{CliResult, Context};

/// `jobq schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// Every schedule: cron, time zone, next fire time (UTC and local), last fire
    /// time, last job and its status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue a schedule's job now (its fire time is now); prints the job id.
    Run {
        /// The schedule's name.
        name: String,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `jobq schedule ...`.
pub fn run(ctx: &Context, args: ScheduleArgs) -> CliResult {
    match args.command {
        ScheduleCommand::List { json } => {
            let all = ctx.open_existing()?.schedules()?;
            if json {
                return emit_json(&all);
            }
            emit(&render(&all))
        }
        ScheduleCommand::Run { name, json } => {
            let job = ctx.open()?.run_schedule(&name)?;
            if json {
                return emit_json(&job);
            }
            emit(&job.id.to_string())
        }
    }
}

fn render(all: &[ScheduleInfo]) -> String {
    let mut t = Table::new(&[
        "SCHEDULE",
        "CRON",
        "TIMEZONE",
        "JOB TYPE",
        "NEXT (UTC)",
        "NEXT (LOCAL)",
        "LAST",
        "LAST JOB",
    ]);
    for s in all {
        let last_job = match (&s.last_job_id, s.last_job_status) {
            (Some(id), Some(status)) => format!("{id} {status}"),
            (Some(id), None) => format!("{id} (pruned)"),
            (None, _) => "-".into(),
        };
        let next = if s.enabled {
            time(s.next_fire)
        } else {
            "disabled".into()
        };
        t.row(vec![
            s.name.clone(),
            s.cron.clone(),
            s.timezone.clone(),
            s.job_type.clone(),
            next,
            s.next_fire_local.clone().unwrap_or_else(|| "-".into()),
            time(s.last_fire),
            last_job,
        ]);
    }
    t.render()
}
