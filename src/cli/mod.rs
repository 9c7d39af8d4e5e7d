//! The command line: clap definitions, the shared context, and dispatch.

mod admin;
mod change;
mod check;
mod docs;
mod enqueue;
mod error;
mod follow;
mod ids;
mod inspect;
mod migrate;
mod present;
mod queue;
mod schedule;
pub mod serve;
mod table;
mod token;
mod watch;
mod work;

use std::path::{Path, PathBuf};

use crate::config::Config;
use clap::{ArgAction, Parser, Subcommand};
use jobq::{Queue, QueueOptions};

pub use error::{CliError, CliResult};

/// The environment variables that stand for flags: `JOBQ_DB` (`--db`) and
/// `JOBQ_CONFIG` (`--config`). Set to nothing, each counts as unset.
pub const ENV_FLAGS: [&str; 2] = ["JOBQ_DB", "JOBQ_CONFIG"];

/// jobq: a durable background-job queue in one SQLite file.
///
/// Jobs are declared in jobq.toml ([handlers.NAME] with a command or a URL),
/// enqueued with `jobq enqueue`, and run by `jobq work` or `jobq serve`.
/// A job id may be given as a unique prefix of at least 8 hex digits.
/// Exit codes: 0 ok, 1 runtime error, 2 usage (and an ambiguous id prefix),
/// 3 not found, 4 conflict.
#[derive(Debug, Parser)]
#[command(name = "jobq", version, propagate_version = true)]
pub struct Cli {
    /// The queue's database: a SQLite file's path (or sqlite:PATH), or a
    /// PostgreSQL URL (postgres://user:pass@host:5432/dbname).
    #[arg(
        long,
        global = true,
        env = ENV_FLAGS[0],
        default_value = "./jobq.db",
        value_name = "PATH_OR_URL",
        hide_env_values = true
    )]
    pub db: PathBuf,
    /// The config file [default: ./jobq.toml when it exists, else built-in defaults].
    #[arg(
        long,
        global = true,
        env = ENV_FLAGS[1],
        value_name = "PATH",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,
    /// More log lines on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enqueue one job (prints its id) or many from a JSONL file (prints the count).
    Enqueue(enqueue::EnqueueArgs),
    /// Show one job.
    Show(inspect::ShowArgs),
    /// List jobs, newest first, a page at a time.
    List(inspect::ListArgs),
    /// Counts by status and by job type.
    Stats(inspect::StatsArgs),
    /// Retry failed or cancelled jobs now, with their attempts reset: by id, or
    /// every job matching a filter (asks first above 100 jobs; --yes).
    Retry(change::ChangeArgs),
    /// Cancel pending jobs, or ask running ones to stop: by id, or every job
    /// matching a filter (asks first above 100 jobs; --yes).
    Cancel(change::ChangeArgs),
    /// Recover running jobs whose lease expired (their worker died), or at once
    /// those of a worker known to be dead.
    Recover(admin::RecoverArgs),
    /// Check the config and that every handler can run, without starting.
    Check,
    /// Worker pools on this database: what they serve, their heartbeat, their jobs.
    Workers(admin::WorkersArgs),
    /// Delete finished jobs older than a given age.
    Prune(admin::PruneArgs),
    /// Run workers with the config's handlers until SIGTERM/SIGINT (or, with --drain, until idle).
    Work(work::WorkArgs),
    /// Run workers and the HTTP API.
    Serve(serve::ServeArgs),
    /// Create, list and revoke the HTTP API's tokens.
    Token(token::TokenArgs),
    /// Named queues: list them, pause and resume them, change their limits.
    Queue(queue::QueueArgs),
    /// Recurring schedules: list them with their next and last runs, run one now.
    Schedule(schedule::ScheduleArgs),
    /// Copy every job, token, queue setting and schedule state into another
    /// database (SQLite or PostgreSQL, either way), then verify counts and digests.
    Migrate(migrate::MigrateArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish, powershell.
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write every page with --out-dir.
    Man(docs::ManArgs),
}

impl Command {
    /// The log level when neither -v nor RUST_LOG says: info for the long-running
    /// commands, warn for the others.
    fn default_log_level(&self) -> &'static str {
        match self {
            Command::Work(_) | Command::Serve(_) => "info",
            _ => "warn",
        }
    }
}

/// Sets up env_logger on stderr: `-v` flags win, then RUST_LOG, then the command's default.
pub fn init_logging(cli: &Cli) {
    let levels = ["warn", "info", "debug", "trace"];
    let filter = match cli.verbose {
        0 => std::env::var("RUST_LOG").unwrap_or_else(|_| cli.command.default_log_level().into()),
        n => levels[usize::from(n).min(3)].to_string(),
    };
    env_logger::Builder::new()
        .parse_filters(&filter)
        .format_timestamp_millis()
        .init();
}

/// What every command may need: the database path and the loaded config.
pub struct Context {
    /// The database file.
    pub db: PathBuf,
    /// The config (the defaults when there is no file).
    pub config: Config,
}

impl Context {
    /// Loads the config: the given path (which must exist), else `./jobq.toml` when
    /// it exists, else the defaults.
    ///
    /// # Errors
    /// A usage error naming the file, line and key of a bad config.
    fn load(cli: &Cli) -> CliResult<Context> {
        let default = Path::new("jobq.toml");
        let config = match &cli.config {
            Some(path) => Config::load(path)?,
            None if default.exists() => Config::load(default)?,
            None => Config::default(),
        };
        Ok(Context {
            db: cli.db.clone(),
            config,
        })
    }

    /// The queue options of this database and config.
    pub fn queue_options(&self) -> QueueOptions {
        self.config.queue_options(&self.db)
    }

    /// Opens the queue with the config's catalogue of job types.
    ///
    /// # Errors
    /// A runtime error when the file cannot be opened or is not a jobq database.
    pub fn open(&self) -> CliResult<Queue> {
        Ok(Queue::open_with(self.queue_options())?)
    }

    /// Opens the queue of a database that must already exist: commands that only
    /// read or change existing jobs never create an empty database by mistake.
    ///
    /// # Errors
    /// A runtime error when there is no SQLite file at the path, or as [`Context::open`].
    pub fn open_existing(&self) -> CliResult<Queue> {
        if let jobq::Location::Sqlite(path) = jobq::Location::parse(&self.db) {
            if !path.exists() {
                return Err(CliError::Runtime(format!(
                    "{}: no such database (enqueue, work and serve create one)",
                    path.display()
                )));
            }
        }
        self.open()
    }
}

/// Runs the command.
///
/// # Errors
/// The command's error, with its exit code.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Completions(args) => return docs::completions(args),
        Command::Man(args) => return docs::man(args),
        Command::Migrate(args) => return migrate::run(args),
        _ => {}
    }
    let ctx = Context::load(&cli)?;
    match cli.command {
        Command::Enqueue(args) => enqueue::run(&ctx, args),
        Command::Show(args) => inspect::show(&ctx, args),
        Command::List(args) => inspect::list(&ctx, args),
        Command::Stats(args) => inspect::stats(&ctx, args),
        Command::Retry(args) => change::retry(&ctx, args),
        Command::Cancel(args) => change::cancel(&ctx, args),
        Command::Recover(args) => admin::recover(&ctx, args),
        Command::Check => check::run(&ctx),
        Command::Workers(args) => admin::workers(&ctx, args),
        Command::Prune(args) => admin::prune(&ctx, args),
        Command::Work(args) => work::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Token(args) => token::run(&ctx, args),
        Command::Queue(args) => queue::run(&ctx, args),
        Command::Schedule(args) => schedule::run(&ctx, args),
        // Answered above: they need no config (or name their databases themselves).
        Command::Completions(_) | Command::Man(_) | Command::Migrate(_) => Ok(()),
    }
}
