//! `jobq serve`: the worker pool and the HTTP API on one queue, until
//! SIGTERM/SIGINT (graceful: the API stops first, then running jobs finish).

use std::net::SocketAddr;

use crate::handlers::registry_from_config;
use clap::Args;
use jobq::http::HttpConfig;
use jobq::WorkerPool;

use crate::cli::{work, CliError, CliResult, Context};

/// The environment variable holding the cron endpoint's secret (wins over the config).
pub const CRON_SECRET_ENV: &str = "JOBQ_CRON_SECRET";
/// The environment variable holding the metrics token (wins over the config).
pub const METRICS_TOKEN_ENV: &str = "JOBQ_METRICS_TOKEN";

/// `jobq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API: IP:PORT or HOST:PORT, e.g. localhost:8080
    /// [default: [server] addr of the config, else 127.0.0.1:8080].
    #[arg(long, value_parser = crate::config::resolve_listen_addr)]
    pub addr: Option<SocketAddr>,
    /// Worker threads (jobs running at once) [default: [workers] count, else 4].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub workers: Option<u16>,
    /// Serve only these queues, comma-separated [default: every queue].
    #[arg(long, value_delimiter = ',', value_parser = work::parse_queue)]
    pub queues: Option<Vec<String>>,
}

/// Runs `jobq serve`.
///
/// # Errors
/// A runtime error when the address cannot be bound (checked first: a
/// refused address creates no database file), the database cannot be
/// opened, or the pool cannot start.
pub fn run(ctx: &Context, args: ServeArgs) -> CliResult {
    crate::cli::check::require_runnable(ctx)?;
    let http = http_config(ctx, args.addr);
    let listener = jobq::http::bind(&http.addr).map_err(|e| CliError::Runtime(e.to_string()))?;
    let queue = ctx.open()?;
    let registry = registry_from_config(&ctx.config, &queue);
    let mut worker = ctx.config.worker_config();
    worker.workers = args.workers.map_or(worker.workers, usize::from);
    worker.queues = args.queues;
    let signals = work::listen_for_signals()?;
    let api = jobq::http::start_on(listener, queue.clone(), registry.clone(), http)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let pool = match WorkerPool::start(queue.clone(), registry, worker) {
        Ok(pool) => pool,
        Err(e) => {
            api.shutdown();
            return Err(e.into());
        }
    };
    log::info!("serving http://{} with workers", api.addr());
    work::wait_for_signal(&signals);
    api.shutdown();
    pool.shutdown(ctx.config.workers.shutdown_grace);
    Ok(())
}

/// The HTTP settings: `--addr`, then `[server]`; the cron secret and the
/// metrics token from the environment, then `[server]`.
fn http_config(ctx: &Context, addr: Option<SocketAddr>) -> HttpConfig {
    let server = &ctx.config.server;
    let cron_secret = std::env::var(CRON_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| server.cron_secret.clone());
    let metrics_token = std::env::var(METRICS_TOKEN_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| server.metrics_token.clone());
    HttpConfig {
        addr: addr.unwrap_or(server.addr).to_string(),
        threads: server.threads,
        max_body_bytes: server.max_body_bytes,
        cron_secret,
        metrics_token,
        worker: ctx.config.worker_config(),
        ..HttpConfig::default()
    }
}
