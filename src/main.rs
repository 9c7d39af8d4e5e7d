//! The `jobq` binary: a durable background-job queue in one SQLite file.
//! See `jobq --help` and README.md.

mod cli;
mod config;
mod handlers;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
