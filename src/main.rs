//! The `jobq` binary: a durable background-job queue in one SQLite file.
//! See `jobq --help` and README.md.

mod cli;
mod config;
mod handlers;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // An environment variable set to nothing (as a systemd EnvironmentFile or
    // `JOBQ_DB= jobq ...` leaves it) is unset, as JOBQ_CRON_SECRET and
    // JOBQ_METRICS_TOKEN are; clap would refuse it as a flag given no value.
    // No other thread runs yet.
    for name in cli::ENV_FLAGS {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobq: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
