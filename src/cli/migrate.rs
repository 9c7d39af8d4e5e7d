//! `jobq migrate`: copy a queue between databases (SQLite and PostgreSQL,
//! either way), with a progress bar, then print both sides' counts and digests.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use jobq::{Census, Location, MigrateOptions, MigrateStep, Migrated, Queue, QueueOptions};

use crate::cli::table::{emit, Table};
use crate::cli::{CliError, CliResult};

/// `jobq migrate` arguments.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database to copy from: a SQLite file's path or a PostgreSQL URL. It must exist.
    #[arg(long, value_name = "PATH_OR_URL")]
    pub from: PathBuf,
    /// The database to copy into: a SQLite file's path or a PostgreSQL URL.
    /// Created when missing; must hold no jobs, tokens, queue settings or schedules.
    #[arg(long, value_name = "PATH_OR_URL")]
    pub to: PathBuf,
    /// First hand every job with a live lease in the source back to pending (the
    /// attempt not counted) and forget live worker pools, instead of refusing.
    /// Only once the workers are stopped.
    #[arg(long)]
    pub release_leases: bool,
    /// Jobs per page read and per transaction written.
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

/// Runs `jobq migrate`.
///
/// # Errors
/// Usage (2) for a missing source file; conflict (4) for live leases or a
/// target that is not empty; runtime (1) for database errors and for a target
/// that does not match the source after the copy.
pub fn run(args: MigrateArgs) -> CliResult {
    let from = Location::parse(&args.from);
    let to = Location::parse(&args.to);
    if let Some(path) = from.sqlite_path().filter(|p| !p.exists()) {
        return Err(CliError::Usage(format!(
            "{}: no such database to migrate from",
            path.display()
        )));
    }
    if same_database(&from, &to) {
        return Err(CliError::Usage(
            "--from and --to are the same database: migrate into a new one".into(),
        ));
    }
    let source = Queue::open_with(QueueOptions::new(&args.from))?;
    if !args.release_leases {
        // Before the target is opened, which creates it: a refusal writes nothing.
        source.check_no_live_leases()?;
    }
    let target = Queue::open_with(QueueOptions::new(&args.to))?;
    let opts = MigrateOptions {
        batch: args.batch as usize,
        release_leases: args.release_leases,
    };
    let started = Instant::now();
    let mut report = Reporter::new();
    let done = source.migrate_into(&target, opts, &mut |s, n, t| report.step(s, n, t));
    report.finish();
    let done = done?;
    let took = started.elapsed();
    emit(&summary(&from, &to, &done, took))?;
    emit(&census_table(&done.source, &done.target))?;
    if !done.verified() {
        return Err(CliError::Runtime(
            "verification failed: the target does not hold the same rows as the source \
             (was the source changed during the copy?)"
                .into(),
        ));
    }
    emit("verified: same counts and same digests")
}

/// Whether both sides name one database: the same SQLite file (through any
/// path or link), or the same PostgreSQL URL.
fn same_database(from: &Location, to: &Location) -> bool {
    match (from.sqlite_path(), to.sqlite_path()) {
        (Some(a), Some(b)) => match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        (None, None) => from == to,
        _ => false,
    }
}

fn summary(from: &Location, to: &Location, m: &Migrated, took: Duration) -> String {
    let released = match m.released {
        0 => String::new(),
        n => format!(" ({n} job(s) handed back to pending first)"),
    };
    format!(
        "copied {} job(s) from {} to {} in {:.1} s{released}",
        m.copied,
        from.redacted(),
        to.redacted(),
        took.as_secs_f64()
    )
}

/// Both sides' counts and digests (shown: the digests' first 16 hex digits;
/// the whole digests are compared).
fn census_table(s: &Census, t: &Census) -> String {
    let mut table = Table::new(&["", "SOURCE", "TARGET"]).align_right(&[1, 2]);
    let rows: [(&str, u64, u64); 9] = [
        ("pending", s.jobs.pending, t.jobs.pending),
        ("in_progress", s.jobs.in_progress, t.jobs.in_progress),
        ("completed", s.jobs.completed, t.jobs.completed),
        ("failed", s.jobs.failed, t.jobs.failed),
        ("cancelled", s.jobs.cancelled, t.jobs.cancelled),
        ("jobs", s.total_jobs(), t.total_jobs()),
        ("tokens", s.tokens, t.tokens),
        ("queues", s.queues, t.queues),
        ("schedules", s.schedules, t.schedules),
    ];
    for (name, a, b) in rows {
        table.row(vec![name.into(), a.to_string(), b.to_string()]);
    }
    let short = |d: &str| d.get(..16).unwrap_or(d).to_string();
    table.row(vec![
        "jobs sha256".into(),
        short(&s.jobs_digest),
        short(&t.jobs_digest),
    ]);
    table.row(vec![
        "settings sha256".into(),
        short(&s.settings_digest),
        short(&t.settings_digest),
    ]);
    table.render()
}

fn step_name(step: MigrateStep) -> &'static str {
    match step {
        MigrateStep::Copy => "copying jobs",
        MigrateStep::VerifySource => "reading the source back",
        MigrateStep::VerifyTarget => "reading the target back",
    }
}

/// Progress on stderr: a bar on a terminal, else a line every 2 seconds and at
/// the end of each step (with the seconds since the step began).
struct Reporter {
    bar: Option<ProgressBar>,
    step: Option<MigrateStep>,
    step_started: Instant,
    last_line: Instant,
    last: (u64, u64),
}

impl Reporter {
    fn new() -> Reporter {
        Reporter {
            bar: None,
            step: None,
            step_started: Instant::now(),
            last_line: Instant::now(),
            last: (0, 0),
        }
    }

    fn step(&mut self, step: MigrateStep, done: u64, total: u64) {
        if self.step != Some(step) {
            self.finish();
            self.step = Some(step);
            self.step_started = Instant::now();
            self.bar = std::io::stderr()
                .is_terminal()
                .then(|| new_bar(step, total));
        }
        self.last = (done, total);
        match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => self.line(),
            None => {}
        }
    }

    fn line(&mut self) {
        if let Some(step) = self.step {
            let (done, total) = self.last;
            let secs = self.step_started.elapsed().as_secs_f64();
            eprintln!("{}: {done}/{total} ({secs:.1} s)", step_name(step));
            self.last_line = Instant::now();
        }
    }

    fn finish(&mut self) {
        match self.bar.take() {
            Some(bar) => bar.finish(),
            None => self.line(),
        }
    }
}

fn new_bar(step: MigrateStep, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = "{msg:24} {bar:40} {pos}/{len} jobs {per_sec} eta {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(step_name(step));
    bar
}
