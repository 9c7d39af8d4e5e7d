//! `jobq serve`: workers plus the HTTP API.

use std::net::SocketAddr;

use clap::Args;

use crate::cli::{work, CliResult, Context};

/// `jobq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API [default: [server] addr of the config, else 127.0.0.1:8080].
    #[arg(long)]
    pub addr: Option<SocketAddr>,
}

/// Runs `jobq serve`: for now the worker pool only, as `jobq work`.
///
/// # Errors
/// As [`work::run_pool`].
pub fn run(ctx: &Context, args: ServeArgs) -> CliResult {
    // HTTP server is wired by the http branch: it replaces this body.
    let addr = args.addr.unwrap_or(ctx.config.server.addr);
    log::warn!(
        "the HTTP API is not in this build yet; running workers only (API address would be {addr})"
    );
    work::run_pool(ctx, None, false)
}
