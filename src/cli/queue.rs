//! `jobq queue list|pause|resume|set`: named queues, their counts, limits and
//! pauses. Settings are stored in the database and hold for every process.

use std::time::Duration;

use clap::{Args, Subcommand};
use jobq::duration::parse_duration;
use jobq::{LimitsChange, QueueInfo, RateLimit};

use crate::cli::table::{emit, emit_json, time, Table};
use crate::cli::{CliError, CliResult, Context};

/// `jobq queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Every queue: pending, running, concurrency, rate limit, paused (and until when).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop claiming a queue's jobs in every process (running ones finish).
    Pause {
        /// The queue.
        name: String,
        /// Resume by itself after this long: 30s, 10m, 1h, 7d [default: until resumed].
        #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
        duration: Option<Duration>,
        /// Print the queue as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start claiming a paused queue's jobs again.
    Resume {
        /// The queue.
        name: String,
        /// Print the queue as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a queue's limits at run time, for every process.
    Set {
        /// The queue.
        name: String,
        /// Jobs in progress at once across every process, or `none` for unlimited.
        #[arg(long, value_parser = parse_concurrency, value_name = "N|none", allow_negative_numbers = true)]
        concurrency: Option<Limit<u32>>,
        /// Starts per sliding period, e.g. 100/1m, or `none` for unlimited.
        #[arg(long, value_parser = parse_rate, value_name = "COUNT/PERIOD|none")]
        rate_limit: Option<Limit<RateLimit>>,
        /// Print the queue as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A limit given on the command line: a value, or `none` (unlimited). A
/// newtype, not `Option<Option<T>>`, which clap reads as a flag whose value is
/// optional.
#[derive(Debug, Clone)]
pub struct Limit<T>(Option<T>);

fn parse_concurrency(text: &str) -> Result<Limit<u32>, String> {
    if text == "none" {
        return Ok(Limit(None));
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=jobq::MAX_CONCURRENCY).contains(&n) => Ok(Limit(Some(n))),
        _ => Err(format!(
            "{text:?}: expected a whole number from 1 to {}, or `none` for unlimited",
            jobq::MAX_CONCURRENCY
        )),
    }
}

fn parse_rate(text: &str) -> Result<Limit<RateLimit>, String> {
    if text == "none" {
        return Ok(Limit(None));
    }
    text.parse()
        .map(|r| Limit(Some(r)))
        .map_err(|e: jobq::Error| e.to_string())
}

/// Runs `jobq queue ...`.
pub fn run(ctx: &Context, args: QueueArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    match args.command {
        QueueCommand::List { json } => {
            let all = queue.queues()?;
            if json {
                return emit_json(&all);
            }
            emit(&render(&all))
        }
        QueueCommand::Pause {
            name,
            duration,
            json,
        } => show(&queue.pause_queue(&name, duration)?, json, "paused"),
        QueueCommand::Resume { name, json } => show(&queue.resume_queue(&name)?, json, "resumed"),
        QueueCommand::Set {
            name,
            concurrency,
            rate_limit,
            json,
        } => {
            if concurrency.is_none() && rate_limit.is_none() {
                return Err(CliError::Usage(
                    "give --concurrency or --rate-limit (or both)".into(),
                ));
            }
            let change = LimitsChange {
                concurrency: concurrency.map(|l| l.0),
                rate_limit: rate_limit.map(|l| l.0),
            };
            show(&queue.set_queue_limits(&name, change)?, json, "updated")
        }
    }
}

fn show(q: &QueueInfo, json: bool, what: &str) -> CliResult {
    if json {
        return emit_json(q);
    }
    emit(&format!(
        "queue {} {what}\n{}",
        q.name,
        render(std::slice::from_ref(q))
    ))
}

fn render(queues: &[QueueInfo]) -> String {
    let mut t = Table::new(&[
        "QUEUE",
        "PENDING",
        "RUNNING",
        "CONCURRENCY",
        "RATE LIMIT",
        "PAUSED",
    ]);
    for q in queues {
        let paused = match (q.paused, q.paused_until) {
            (false, _) => "no".to_string(),
            (true, None) => "yes".to_string(),
            (true, Some(until)) => format!("until {}", time(Some(until))),
        };
        t.row(vec![
            q.name.clone(),
            q.pending.to_string(),
            q.running.to_string(),
            q.concurrency.map_or("-".into(), |c| c.to_string()),
            q.rate_limit.map_or("-".into(), |r| r.to_string()),
            paused,
        ]);
    }
    t.render()
}
