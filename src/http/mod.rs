//! The JSON HTTP API: token-authenticated job endpoints, cron-driven processing,
//! admin endpoints, health, and the OpenAPI document (see README, "HTTP API").
//!
//! One server, blocking threads only: an accept thread caps how many
//! connections are open, and each open connection has one thread that reads
//! whole requests under the size and time limits, answers them (at most
//! [`HttpConfig::threads`] at once), and keeps the connection alive per HTTP/1.1.
//! Endpoints call only the public [`crate::Queue`] API and [`crate::run_due`].
//!
//! Modules, each importing only from those below it:
//! - the server: `server` (accept, cap, shutdown) over `conn` (one connection)
//!   over `open` (the registry of connections, the permits) and `framing`,
//!   `chunked` (reading a request under the limits);
//! - the API: `routes` (the route table) over `openapi` (the OpenAPI document,
//!   generated from the endpoints) over the endpoints `jobs`, `admin`, `ops`
//!   over `auth`, `common` (shared helpers), `error_responses` (the documented
//!   error answers) and `context` (shared state);
//! - both over `request`, `response` and `errors`.
//!
//! `layers.rs` (a test) holds the table of layers and checks every import.
//!
//! This file joins the two: the server's handler is the route table.
//!
//! ```no_run
//! use jobq::http::{start, HttpConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = jobq::Queue::open("jobq.db")?;
//! let server = start(queue, jobq::Registry::new(), HttpConfig::default())?;
//! println!("listening on {}", server.addr());
//! server.shutdown();
//! # Ok(()) }
//! ```

mod admin;
mod auth;
mod body;
mod bulk;
mod chunked;
mod common;
mod conn;
mod context;
mod dashboard;
mod error_responses;
mod errors;
mod framing;
mod jobs;
#[cfg(test)]
mod layers;
mod metrics;
mod open;
mod openapi;
mod ops;
mod progress;
mod queues;
mod request;
mod response;
mod routes;
mod schedules;
mod server;
mod session;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::worker::{Registry, WorkerConfig};
use crate::Queue;

pub use openapi::openapi_document;

/// The default address: `127.0.0.1:8080`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The default body limit: 2 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 << 20;

/// Settings of the HTTP server. Every duration is a [`Duration`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where to listen; port 0 picks a free port. Default `127.0.0.1:8080`.
    pub addr: String,
    /// Requests answered at once; a whole request read while this many are
    /// being answered waits for one to finish. Reading requests and idle
    /// connections do not count (each open connection has its own thread).
    /// Default 8.
    pub threads: usize,
    /// The largest request body, in bytes; larger ones get 413. Default 2 MiB.
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers), in bytes; larger ones
    /// get 431. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Time a client has to send a whole request once it has started; slower
    /// ones get 408 and are disconnected. Default 10 s.
    pub read_timeout: Duration,
    /// How long an open connection may sit without starting a request before it
    /// is closed. Default 30 s.
    pub idle_timeout: Duration,
    /// Client connections open at once; more get 503 and are closed. Default 512.
    pub max_connections: usize,
    /// The secret of `/api/v1/cron/jobs`; the endpoint answers 404 when `None`.
    /// Default `None`.
    pub cron_secret: Option<String>,
    /// A bearer token that may read `/metrics` (admin tokens may too), so a
    /// Prometheus server needs no admin token. Default `None`.
    pub metrics_token: Option<String>,
    /// Leases and timeouts for jobs run by the cron endpoint. Default
    /// [`WorkerConfig::default`].
    pub worker: WorkerConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: DEFAULT_ADDR.to_string(),
            threads: 8,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: 16 * 1024,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 512,
            cron_secret: None,
            metrics_token: None,
            worker: WorkerConfig::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A server thread could not be started.
    #[error("cannot start the HTTP server: {0}")]
    Start(#[source] std::io::Error),
}

/// A running server. [`HttpServer::shutdown`] stops it; dropping it does too.
pub struct HttpServer {
    server: server::Server,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr())
            .finish()
    }
}

impl HttpServer {
    /// The address the server listens on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stops accepting, closes idle connections, and waits until the requests
    /// being answered are answered (with `Connection: close`) and their
    /// connections closed. A cron call in flight claims no further job: it
    /// answers once the job it runs has ended.
    pub fn shutdown(mut self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.server.shutdown();
    }
}

/// Starts the HTTP API on `config.addr`, serving `queue`; the cron endpoint runs
/// jobs with `registry`'s handlers. Returns once the address is bound.
///
/// # Errors
/// [`HttpError::Bind`] when the address cannot be bound; [`HttpError::Start`]
/// when a thread cannot be started.
pub fn start(
    queue: Queue,
    registry: Registry,
    config: HttpConfig,
) -> Result<HttpServer, HttpError> {
    let listener = bind(&config.addr)?;
    start_on(listener, queue, registry, config)
}

/// Binds `addr` (`host:port`; port 0 picks a free one) for [`start_on`]: a
/// program can learn that the address is refused before it opens anything
/// else (`jobq serve` binds before it opens, or creates, the database).
///
/// # Errors
/// [`HttpError::Bind`] when the address cannot be bound (in use, not local,
/// no permission).
pub fn bind(addr: &str) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).map_err(|source| HttpError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// As [`start`], on a listener already bound (by [`bind`]); `config.addr`
/// is not used.
///
/// # Errors
/// [`HttpError::Start`] when a thread cannot be started.
pub fn start_on(
    listener: TcpListener,
    queue: Queue,
    registry: Registry,
    config: HttpConfig,
) -> Result<HttpServer, HttpError> {
    // The OpenAPI document lists the accepted types when only declared ones are.
    let job_types = if queue.catalog().is_declared_only() {
        queue.catalog().names()
    } else {
        Vec::new()
    };
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ctx = context::Ctx {
        queue,
        registry,
        worker: config.worker.clone(),
        job_types,
        cron_secret: config.cron_secret.clone().filter(|s| !s.is_empty()),
        metrics_token: config.metrics_token.clone().filter(|s| !s.is_empty()),
        sessions: session::Sessions::default(),
        stopping: stopping.clone(),
    };
    let metrics = ctx.queue.metrics().clone();
    let shared = conn::Shared {
        limits: framing::Limits {
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            read_timeout: config.read_timeout,
            idle_timeout: config.idle_timeout,
        },
        handler: Box::new(move |req| routes::answer(&ctx, req)),
        refused: Box::new(move |status| metrics.request(routes::UNREAD, status)),
        open: open::Open::new(config.max_connections),
        permits: open::Permits::new(config.threads),
    };
    let server = server::Server::start(listener, shared).map_err(HttpError::Start)?;
    // Debug: `jobq serve` says it serves once its pool has started too (a
    // pool that cannot start, on a read-only file, stops the server again).
    log::debug!("HTTP API listening on {}", server.addr());
    Ok(HttpServer { server, stopping })
}
