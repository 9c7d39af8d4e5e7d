//! `jobq enqueue`: one job from flags, or many from a JSONL file in one transaction.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use jobq::duration::parse_duration;
use jobq::{NewJob, Queue, Timestamp};
use serde_json::Value;

use crate::cli::table::{emit, emit_json};
use crate::cli::{error, CliError, CliResult, Context};

/// Lines from which a progress bar is shown (on a terminal only).
const PROGRESS_FROM_LINES: u64 = 1000;

/// `jobq enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job type (declared in the config as [handlers.TYPE], or jobq.prune).
    #[arg(required_unless_present = "jsonl", conflicts_with = "jsonl")]
    job_type: Option<String>,
    /// The payload, as JSON text [default: null].
    #[arg(long, value_name = "JSON", conflicts_with = "payload_file")]
    payload: Option<String>,
    /// Read the payload JSON from this file (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    payload_file: Option<PathBuf>,
    /// The queue [default: the type's, else "default"].
    #[arg(long)]
    queue: Option<String>,
    /// Priority: higher runs first [default: the type's, else 0].
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i32>,
    /// Total runs allowed, at least 1 [default: the type's, else 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(jobq::MAX_ATTEMPTS)))]
    max_attempts: Option<u32>,
    /// Run no earlier than this from now: 250ms, 30s, 5m, 1h, 7d, "1h 30m".
    #[arg(long, value_parser = parse_duration, conflicts_with = "run_at")]
    delay: Option<Duration>,
    /// Run no earlier than this time (RFC 3339, e.g. 2026-01-31T09:00:00Z).
    #[arg(long, value_parser = parse_run_at)]
    run_at: Option<Timestamp>,
    /// What the job works on, as TYPE:ID (e.g. document:42).
    #[arg(long, value_name = "TYPE:ID", value_parser = parse_entity)]
    entity: Option<(String, String)>,
    /// The user enqueuing the job.
    #[arg(long)]
    owner: Option<String>,
    /// Enqueue one job per line of FILE (`-` for stdin), each a JSON object like
    /// {"job_type": "echo", "payload": {...}, "priority": 1}; all or none.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "payload", "payload_file", "queue", "priority", "max_attempts", "delay", "run_at", "entity", "owner",
        "unique", "unique_key", "unique_period", "unique_states", "no_unique"
    ])]
    jsonl: Option<String>,
    /// Unique: while a job with the same key is pending or running (or in the
    /// --unique-states), print that job's id instead of enqueueing. The key is
    /// the job type and the payload with its keys sorted, unless --unique-key.
    #[arg(long)]
    unique: bool,
    /// The unique key (scoped to the job type) [implies --unique].
    #[arg(long, value_name = "KEY")]
    unique_key: Option<String>,
    /// The key holds within fixed time buckets of this length: 1h, 1d [implies --unique].
    #[arg(long, value_parser = parse_period, value_name = "DURATION")]
    unique_period: Option<Duration>,
    /// Statuses that also hold the key besides pending and in_progress, e.g.
    /// completed,failed [implies --unique].
    #[arg(long, value_delimiter = ',', value_name = "STATUSES")]
    unique_states: Option<Vec<jobq::JobStatus>>,
    /// No uniqueness rule for this job, not even its type's (`unique` in jobq.toml).
    #[arg(long, conflicts_with_all = ["unique", "unique_key", "unique_period", "unique_states"])]
    no_unique: bool,
    /// Print the new job as JSON instead of its id.
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
}

fn parse_run_at(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text)
}

fn parse_entity(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok((t.into(), id.into())),
        _ => Err("expected TYPE:ID, e.g. document:42".into()),
    }
}

/// Runs `jobq enqueue`.
pub fn run(ctx: &Context, args: EnqueueArgs) -> CliResult {
    match &args.jsonl {
        Some(source) => enqueue_jsonl(ctx, source),
        None => enqueue_one(ctx, args),
    }
}

fn enqueue_one(ctx: &Context, args: EnqueueArgs) -> CliResult {
    let unique = unique_rule(&args);
    let job_type = args.job_type.unwrap_or_default();
    // Checked before the database is opened, so a typo creates no file.
    ctx.config.catalog().check(&job_type)?;
    let payload = read_payload(args.payload, args.payload_file)?;
    let queue = ctx.open()?;
    let mut job = NewJob::new(job_type, payload);
    job.unique = unique;
    if args.no_unique {
        job = job.not_unique();
    }
    job.queue = args.queue;
    job.priority = args.priority;
    job.max_attempts = args.max_attempts;
    job.owner = args.owner;
    if let Some((t, id)) = args.entity {
        job = job.entity(t, id);
    }
    if let Some(at) = args.run_at {
        job = job.run_at(at);
    }
    if let Some(d) = args.delay {
        if d.as_secs() > jobq::MAX_DELAY_S {
            return Err(CliError::Usage(format!(
                "invalid --delay: at most {} s (about 3,000 years)",
                jobq::MAX_DELAY_S
            )));
        }
        job = job.run_at(queue.now().plus(d));
    }
    let stored = queue.enqueue(job)?;
    if stored.duplicate {
        eprintln!(
            "jobq: duplicate: job {} ({}) holds this unique key; nothing was enqueued",
            stored.id, stored.status
        );
    }
    if args.json {
        emit_json(&stored)
    } else {
        emit(&stored.id.to_string())
    }
}

/// `--unique-period`: whole seconds, more than 0, at most
/// [`jobq::MAX_DELAY_S`] (as the JSON's `period_s`).
fn parse_period(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) if d.subsec_nanos() != 0 => Err("must be whole seconds".into()),
        Ok(d) if d.as_secs() > jobq::MAX_DELAY_S => Err(format!(
            "at most {} s (about 3,000 years)",
            jobq::MAX_DELAY_S
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// The uniqueness rule the flags ask for, if any.
fn unique_rule(args: &EnqueueArgs) -> Option<jobq::Unique> {
    let any = args.unique
        || args.unique_key.is_some()
        || args.unique_period.is_some()
        || args.unique_states.is_some();
    any.then(|| {
        let u = jobq::Unique {
            key: args.unique_key.clone(),
            period: args.unique_period,
            ..jobq::Unique::default()
        };
        u.also_in(args.unique_states.as_deref().unwrap_or_default())
    })
}

fn read_payload(text: Option<String>, file: Option<PathBuf>) -> CliResult<Value> {
    let (text, source) = match (text, file) {
        (Some(t), _) => (t, "--payload".to_string()),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .map_err(|e| CliError::input("--payload-file", "standard input", e))?;
            (t, "standard input".to_string())
        }
        (None, Some(f)) => {
            let t = std::fs::read_to_string(&f)
                .map_err(|e| CliError::input("--payload-file", f.display(), e))?;
            (t, f.display().to_string())
        }
        (None, None) => return Ok(Value::Null),
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{source}: the payload is not valid JSON: {e}")))
}

fn enqueue_jsonl(ctx: &Context, source: &str) -> CliResult {
    let lines = read_lines(source)?;
    let bar = progress_bar(lines.len() as u64);
    let mut jobs = Vec::with_capacity(lines.len());
    let queue = ctx.open()?;
    for (number, line) in &lines {
        let job = parse_line(&queue, line).map_err(|m| {
            CliError::Usage(format!(
                "{source}: line {number}: {m} (nothing was enqueued)"
            ))
        })?;
        jobs.push(job);
        bar.inc(1);
    }
    bar.set_message("writing");
    let outcomes = queue.enqueue_batch(jobs)?;
    bar.finish_and_clear();
    let duplicates = outcomes.iter().filter(|o| o.duplicate).count();
    if duplicates > 0 {
        let lines = crate::cli::table::count(duplicates, "line");
        let were = if duplicates == 1 {
            "was a duplicate"
        } else {
            "were duplicates"
        };
        eprintln!("jobq: {lines} {were} of jobs holding their unique keys");
    }
    emit(&(outcomes.len() - duplicates).to_string())
}

/// The non-blank lines of the file (or stdin for `-`), with their numbers from 1.
fn read_lines(source: &str) -> CliResult<Vec<(usize, String)>> {
    let reader: Box<dyn Read> = if source == "-" {
        Box::new(std::io::stdin())
    } else {
        let f = std::fs::File::open(source).map_err(|e| CliError::input("--jsonl", source, e))?;
        if f.metadata().is_ok_and(|m| m.is_dir()) {
            let e = std::io::Error::from(std::io::ErrorKind::IsADirectory);
            return Err(CliError::input("--jsonl", source, e));
        }
        Box::new(f)
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| {
            let at = format!("{source}: line {}", i + 1);
            if e.kind() == std::io::ErrorKind::InvalidData {
                CliError::Usage(format!("{at}: {} (nothing was enqueued)", error::NOT_UTF8))
            } else {
                CliError::io(at, e)
            }
        })?;
        if !line.trim().is_empty() {
            out.push((i + 1, line));
        }
    }
    Ok(out)
}

/// One JSONL line as a job, by [`NewJob::from_json`]'s rules, checked as
/// `enqueue` would check it.
fn parse_line(queue: &Queue, line: &str) -> Result<NewJob, jobq::Error> {
    let job = NewJob::from_json(line)?;
    queue.check(&job)?;
    Ok(job)
}

fn progress_bar(len: u64) -> ProgressBar {
    if len < PROGRESS_FROM_LINES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} lines {msg}") {
        bar.set_style(style);
    }
    bar
}
