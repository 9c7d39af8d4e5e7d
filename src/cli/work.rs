//! `jobq work`: a worker pool with the config's handlers, until SIGTERM/SIGINT
//! (graceful; a second signal forces exit) or, with `--drain`, until idle.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::handlers::{prune, registry_from_config};
use clap::Args;
use jobq::{Queue, WorkerPool};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::{CliError, CliResult, Context};

/// How often a long-running pool checks that a `jobq.prune` job is scheduled.
const PRUNE_CHECK_EVERY: Duration = Duration::from_secs(3600);
/// How often a draining pool looks for a signal.
const DRAIN_TICK: Duration = Duration::from_millis(100);

/// `jobq work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Worker threads (jobs running at once) [default: [workers] count, else 4].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// Stop once no job is due and none is running (jobs due later are left pending).
    #[arg(long)]
    drain: bool,
    /// Serve only these queues, comma-separated [default: every queue].
    #[arg(long, value_delimiter = ',', value_parser = parse_queue)]
    queues: Option<Vec<String>>,
}

/// A queue name from the command line.
pub(crate) fn parse_queue(text: &str) -> Result<String, String> {
    jobq::validate_queue_name(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// Runs `jobq work`.
pub fn run(ctx: &Context, args: WorkArgs) -> CliResult {
    run_pool(ctx, args.workers.map(usize::from), args.drain, args.queues)
}

/// Runs a pool with the config's handlers until a signal (graceful shutdown with
/// `[workers] shutdown_grace`) or, when `drain`, until nothing is due or running.
/// Outside drain mode it keeps one `jobq.prune` job scheduled daily.
///
/// # Errors
/// A runtime error when the database cannot be opened or the pool cannot start.
pub fn run_pool(
    ctx: &Context,
    workers: Option<usize>,
    drain: bool,
    queues: Option<Vec<String>>,
) -> CliResult {
    let queue = ctx.open()?;
    let registry = registry_from_config(&ctx.config, &queue);
    let mut config = ctx.config.worker_config();
    config.workers = workers.unwrap_or(config.workers);
    config.drain = drain;
    config.queues = queues;
    let signals = listen_for_signals()?;
    let pool = WorkerPool::start(queue.clone(), registry, config)?;
    if drain {
        wait_drained(&pool, &signals);
    } else {
        wait_for_signal(&queue, &signals);
    }
    pool.shutdown(ctx.config.workers.shutdown_grace);
    Ok(())
}

fn wait_drained(pool: &WorkerPool, signals: &Receiver<()>) {
    while !pool.wait(DRAIN_TICK) {
        if signals.try_recv().is_ok() {
            return;
        }
    }
    log::info!("drained: no job is due and none is running");
}

pub(crate) fn wait_for_signal(queue: &Queue, signals: &Receiver<()>) {
    loop {
        schedule_prune(queue);
        match signals.recv_timeout(PRUNE_CHECK_EVERY) {
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn schedule_prune(queue: &Queue) {
    match prune::ensure_scheduled(queue) {
        Ok(true) => log::info!("scheduled the daily jobq.prune job"),
        Ok(false) => {}
        Err(e) => log::warn!("could not schedule the daily jobq.prune job: {e}"),
    }
}

/// The first SIGTERM/SIGINT is sent on the channel; a second one exits at once
/// (running jobs go back to pending when their leases expire).
pub(crate) fn listen_for_signals() -> CliResult<Receiver<()>> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| CliError::io("installing signal handlers", e))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, signal) in signals.forever().enumerate() {
            if n == 0 {
                log::warn!("signal {signal}: finishing running jobs (signal again to force exit)");
                let _ = tx.send(());
            } else {
                eprintln!("jobq: second signal: exiting now; running jobs return to pending when their leases expire");
                std::process::exit(1);
            }
        }
    });
    Ok(rx)
}
