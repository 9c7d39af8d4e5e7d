//! `jobq retry` and `jobq cancel`: of jobs named by id, or of every job
//! matching a filter (in short batches, with a confirmation above
//! [`CONFIRM_ABOVE`] jobs).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use jobq::duration::parse_duration;
use jobq::{BulkAction, Job, JobFilter, JobStatus};

use crate::cli::ids::resolve;
use crate::cli::table::{emit, emit_json, printable};
use crate::cli::{CliError, CliResult, Context};

/// A change of more jobs than this asks first (or needs `--yes`).
pub const CONFIRM_ABOVE: u64 = 100;

/// The jobs `jobq retry` and `jobq cancel` change: ids, or a filter.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The jobs' ids, or the start of each: at least 8 hex digits that no
    /// other job's id starts with (or give a filter instead).
    #[arg(value_name = "ID")]
    ids: Vec<String>,
    /// Every job in this status (retry: failed or cancelled; cancel: pending or in_progress).
    #[arg(long, conflicts_with = "ids")]
    status: Option<JobStatus>,
    /// Every job of this type.
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "ids", value_parser = crate::cli::work::parse_job_type)]
    job_type: Option<String>,
    /// Every job of this queue.
    #[arg(long, conflicts_with = "ids", value_parser = crate::cli::work::parse_queue)]
    queue: Option<String>,
    /// Every job of this owner.
    #[arg(long, conflicts_with = "ids")]
    owner: Option<String>,
    /// Only jobs enqueued longer ago than this: 30s, 5m, 1h, 7d.
    #[arg(long, value_parser = parse_duration, value_name = "AGE", conflicts_with = "ids")]
    older_than: Option<Duration>,
    /// Change more than 100 jobs without asking.
    #[arg(long, short = 'y', conflicts_with = "ids")]
    yes: bool,
    /// Only print how many jobs the filter would change.
    #[arg(long, conflicts_with = "ids")]
    dry_run: bool,
    /// Print JSON: each job after the change, or {"count": n} for a filter.
    #[arg(long)]
    json: bool,
}

impl ChangeArgs {
    /// The filter, when one was given.
    fn filter(&self) -> Option<JobFilter> {
        let f = JobFilter {
            status: self.status,
            job_type: self.job_type.clone(),
            queue: self.queue.clone(),
            owner: self.owner.clone(),
            ..JobFilter::default()
        };
        (f != JobFilter::default() || self.older_than.is_some()).then_some(f)
    }
}

/// Runs `jobq retry`: failed or cancelled jobs become pending, due now.
pub fn retry(ctx: &Context, args: ChangeArgs) -> CliResult {
    run(ctx, args, BulkAction::Retry)
}

/// Runs `jobq cancel`: pending jobs end cancelled; running ones are asked to stop.
pub fn cancel(ctx: &Context, args: ChangeArgs) -> CliResult {
    run(ctx, args, BulkAction::Cancel)
}

fn run(ctx: &Context, args: ChangeArgs, action: BulkAction) -> CliResult {
    match (args.filter(), args.ids.is_empty()) {
        (Some(filter), _) => matching(ctx, &args, action, &filter),
        (None, false) => by_id(ctx, &args, action),
        (None, true) => Err(CliError::Usage(format!(
            "{}: name job ids, or a filter (--status, --type, --queue, --owner, --older-than)",
            verb(action)
        ))),
    }
}

/// Changes each named job in turn. One that cannot be changed (unknown id,
/// wrong status) does not stop the others: each such error is printed, and
/// the exit code is the first error's; with several ids, the last line says
/// how many were not changed.
fn by_id(ctx: &Context, args: &ChangeArgs, action: BulkAction) -> CliResult {
    let queue = ctx.open_existing()?;
    let several = args.ids.len() > 1;
    let (mut first, mut failed) = (None::<CliError>, 0);
    for text in &args.ids {
        let changed = resolve(&queue, text).and_then(|id| {
            Ok(match action {
                BulkAction::Retry => queue.retry(id)?,
                BulkAction::Cancel => queue.cancel(id)?,
            })
        });
        match changed {
            Ok(job) => report(&job, args.json)?,
            Err(e) => {
                failed += 1;
                if several {
                    eprintln!("jobq: {text}: {e}");
                }
                first.get_or_insert(e);
            }
        }
    }
    match first {
        None => Ok(()),
        Some(e) if !several => Err(e),
        Some(e) => Err(e.with_message(format!(
            "{failed} of {} jobs not {}",
            args.ids.len(),
            done(action)
        ))),
    }
}

fn report(job: &Job, json: bool) -> CliResult {
    match (json, job.status) {
        (true, _) => emit_json(job),
        (false, JobStatus::InProgress) => {
            emit(&format!("job {} is running: cancel requested", job.id))
        }
        (false, status) => emit(&format!("job {} is {status}", job.id)),
    }
}

fn matching(ctx: &Context, args: &ChangeArgs, action: BulkAction, f: &JobFilter) -> CliResult {
    check_status(action, f.status)?;
    let queue = ctx.open_existing()?;
    let by = queue.now().minus(args.older_than.unwrap_or(Duration::ZERO));
    let n = queue.count_matching(action, f, by)?;
    if args.dry_run {
        return match args.json {
            true => emit_json(&serde_json::json!({ "count": n })),
            false => emit(&format!("would {} {}", verb(action), jobs(n))),
        };
    }
    if n > CONFIRM_ABOVE && !args.yes {
        confirm(action, n, f, args.older_than)?;
    }
    let changed = queue.change_matching(action, f, by)?;
    if args.json {
        return emit_json(&serde_json::json!({ "count": changed }));
    }
    let mut text = format!("{} {}", done(action), jobs(changed));
    // Matched when counted but not moved: say why, so that the count does not
    // seem to contradict a dry run's.
    let left = n.saturating_sub(changed);
    if left > 0 {
        let why = match action {
            BulkAction::Retry => {
                "changed meanwhile, or a retry would make a second live holder of a unique key"
            }
            BulkAction::Cancel => "changed meanwhile",
        };
        let were = if left == 1 { "it was" } else { "they were" };
        text.push_str(&format!("; {} left as {were} ({why})", jobs(left)));
    }
    emit(&text)
}

/// "1 job", "2 jobs".
fn jobs(n: u64) -> String {
    match n {
        1 => "1 job".into(),
        n => format!("{n} jobs"),
    }
}

/// A status no job of `action` can be in is refused (it would change nothing).
fn check_status(action: BulkAction, status: Option<JobStatus>) -> CliResult {
    match action.refuses(status) {
        None => Ok(()),
        Some(why) => Err(CliError::Usage(why)),
    }
}

/// Asks on the terminal before changing `n` jobs; refuses without one.
fn confirm(action: BulkAction, n: u64, f: &JobFilter, age: Option<Duration>) -> CliResult {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to {} {n} jobs without confirmation (more than {CONFIRM_ABOVE}, and \
             standard input is not a terminal to ask on): pass --yes",
            verb(action)
        )));
    }
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "{} {n} jobs ({})? [y/N] ",
        verb(action),
        describe(f, age)
    )
    .and_then(|()| err.flush())
    .map_err(|e| CliError::io("asking for confirmation", e))?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::io("reading the answer", e))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Runtime("not confirmed: no job changed".into())),
    }
}

/// The filter in words, for the question.
fn describe(f: &JobFilter, age: Option<Duration>) -> String {
    let mut parts = Vec::new();
    let fields = [
        ("status", f.status.map(|s| s.to_string())),
        ("type", f.job_type.clone()),
        ("queue", f.queue.clone()),
        ("owner", f.owner.clone()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            parts.push(format!("{name} {}", printable(&v)));
        }
    }
    if let Some(age) = age {
        parts.push(format!(
            "enqueued over {} ago",
            jobq::duration::format_duration(age)
        ));
    }
    parts.join(", ")
}

fn verb(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "retry",
        BulkAction::Cancel => "cancel",
    }
}

fn done(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "retried",
        BulkAction::Cancel => "cancelled",
    }
}
