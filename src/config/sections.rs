//! `[workers]`, `[server]` and `[prune]`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use jobq::duration;
use jobq::Durability;

/// `[workers]`: the worker pool of `jobq work` and `jobq serve`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Worker threads (jobs running at once), 1 to [`jobq::MAX_WORKERS`].
    /// Default 4.
    #[serde(deserialize_with = "worker_count")]
    pub count: usize,
    /// Lease taken at claim and renewed by heartbeats (every third of it).
    /// Default 5 min (`"5m"`); at least 1 s, so that a heartbeat reaches the
    /// database before the lease runs out on a busy machine.
    #[serde(deserialize_with = "lease")]
    pub lease: Duration,
    /// How often to look for jobs enqueued by other processes. Default 1 s.
    #[serde(deserialize_with = "positive")]
    pub poll_interval: Duration,
    /// How often expired leases (of crashed workers) are recovered, besides
    /// once at start. Default 30 s.
    #[serde(deserialize_with = "positive")]
    pub recovery_interval: Duration,
    /// `"full"` (an acknowledged write survives power loss) or `"normal"` (survives
    /// a process crash; faster). Default `"full"`.
    #[serde(deserialize_with = "durability")]
    pub durability: Durability,
    /// After a job's timeout, how long its handler may still take before its slot
    /// is released. Default: the pool's default (5 s).
    #[serde(deserialize_with = "duration::deserialize_option")]
    pub timeout_grace: Option<Duration>,
    /// At SIGTERM/SIGINT, how long running jobs may take to finish before they are
    /// handed back to pending. Default 30 s.
    #[serde(deserialize_with = "duration::deserialize")]
    pub shutdown_grace: Duration,
    /// Jobs the pool may hold claimed but not yet started, beside its running
    /// ones (`jobq::WorkerConfig::prefetch`). Default 0: never more jobs
    /// claimed than idle workers. At most [`jobq::MAX_PREFETCH`].
    #[serde(deserialize_with = "prefetch")]
    pub prefetch: usize,
    /// With `prefetch`: how long the pool may hold reserved jobs while none
    /// of its workers starts a job; then they are handed back for other pools
    /// (`jobq::WorkerConfig::prefetch_ttl`). Default 5 s.
    #[serde(deserialize_with = "positive")]
    pub prefetch_ttl: Duration,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            count: 4,
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            recovery_interval: jobq::WorkerConfig::default().recovery_interval,
            durability: Durability::Full,
            timeout_grace: None,
            shutdown_grace: Duration::from_secs(30),
            prefetch: 0,
            prefetch_ttl: jobq::PREFETCH_TTL,
        }
    }
}

/// `[server]`: the HTTP API of `jobq serve`. Parsed and checked here; used by the
/// HTTP server.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on: `IP:PORT` or `HOST:PORT` (resolved when read;
    /// the first IPv4 address, else the first). Default `127.0.0.1:8080`.
    #[serde(deserialize_with = "listen_addr")]
    pub addr: SocketAddr,
    /// Shared secret of the cron endpoint (run due jobs); none disables it.
    /// Never printed (the `Debug` form hides it).
    #[serde(deserialize_with = "non_empty_secret")]
    pub cron_secret: Option<String>,
    /// A bearer token that may read `/metrics` (admin tokens may too); none:
    /// only admin tokens. Never printed (the `Debug` form hides it).
    #[serde(deserialize_with = "non_empty_secret")]
    pub metrics_token: Option<String>,
    /// The largest request body accepted, in bytes. Default 2 MiB.
    #[serde(deserialize_with = "at_least_one")]
    pub max_body_bytes: usize,
    /// Requests answered at once (each open connection has its own thread;
    /// this caps how many of them run an endpoint at the same time). Default 4.
    #[serde(deserialize_with = "at_least_one")]
    pub threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cron_secret: None,
            metrics_token: None,
            max_body_bytes: 2 << 20,
            threads: 4,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field(
                "cron_secret",
                &self.cron_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("threads", &self.threads)
            .finish()
    }
}

/// `[queues.NAME]`: a named queue's limits, written to the database when
/// `jobq work` or `jobq serve` starts (so they hold for every process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// The most jobs of the queue in progress at once across every process, at
    /// least 1. Default: unlimited.
    #[serde(deserialize_with = "concurrency")]
    pub concurrency: Option<u32>,
    /// The most starts per sliding period across every process, `"100/1m"`.
    /// Default: unlimited.
    #[serde(deserialize_with = "rate_limit")]
    pub rate_limit: Option<jobq::RateLimit>,
}

fn concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = i64::deserialize(d)?;
    match u32::try_from(n) {
        Ok(n) if (1..=jobq::MAX_CONCURRENCY).contains(&n) => Ok(Some(n)),
        _ => Err(serde::de::Error::custom(format!(
            "must be from 1 to {} (got {n}); leave it out for unlimited",
            jobq::MAX_CONCURRENCY
        ))),
    }
}

fn rate_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<jobq::RateLimit>, D::Error> {
    let text = String::deserialize(d)?;
    let limit: jobq::RateLimit = text.parse().map_err(serde::de::Error::custom)?;
    Ok(Some(limit))
}

/// `[database]`: how the database file is created, and how PostgreSQL is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Permission bits of a database file jobq creates (and of its `-wal` and
    /// `-shm`), in octal text: `"0600"` (the default: owner only) or e.g.
    /// `"0640"`. An existing file's mode is left alone. SQLite only.
    #[serde(deserialize_with = "octal_mode")]
    pub file_mode: u32,
    /// PostgreSQL only: LISTEN/NOTIFY wake-ups between processes (default
    /// true); false polls only (behind PgBouncer in transaction mode).
    pub notify: bool,
    /// PostgreSQL only: connections per process (default 4, at least 2).
    #[serde(deserialize_with = "at_least_two")]
    pub pool_size: u32,
    /// The largest payload a job may have, in bytes of serialized JSON
    /// (default 1 MiB, [`jobq::DEFAULT_MAX_PAYLOAD_BYTES`]): checked when a
    /// job is enqueued by this process (CLI, HTTP, schedules).
    #[serde(deserialize_with = "at_least_one")]
    pub max_payload_bytes: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            file_mode: 0o600,
            notify: true,
            pool_size: 4,
            max_payload_bytes: jobq::DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

fn octal_mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let text = String::deserialize(d)?;
    let digits = text.strip_prefix("0o").unwrap_or(&text);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => Ok(m),
        Ok(_) => Err(serde::de::Error::custom(
            "must let the owner read and write (0600 to 0777), e.g. \"0640\"",
        )),
        Err(_) => Err(serde::de::Error::custom(format!(
            "not an octal file mode: {:?} (e.g. \"0600\")",
            text.chars().take(16).collect::<String>()
        ))),
    }
}

/// `[prune]`: what the built-in `jobq.prune` job deletes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneConfig {
    /// Completed and cancelled jobs finished longer ago than this are deleted.
    /// Default 7 days (`"7d"`).
    #[serde(deserialize_with = "duration::deserialize")]
    pub retention: Duration,
    /// Failed jobs finished longer ago than this are deleted. Default 30 days.
    #[serde(deserialize_with = "duration::deserialize")]
    pub failed_retention: Duration,
    /// When the built-in `jobq.prune` schedule fires (cron, UTC). Default
    /// `"17 3 * * *"`: daily at 03:17 UTC.
    #[serde(deserialize_with = "prune_cron")]
    pub cron: String,
    /// False: no built-in prune schedule. Default true.
    pub enabled: bool,
}

/// The built-in prune schedule's default cron: daily at 03:17 UTC.
pub const PRUNE_CRON: &str = "17 3 * * *";

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            retention: Duration::from_secs(7 * 86_400),
            failed_retention: Duration::from_secs(30 * 86_400),
            cron: PRUNE_CRON.to_string(),
            enabled: true,
        }
    }
}

fn prune_cron<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    jobq::Schedule::new("jobq.prune", &text, "jobq.prune").map_err(serde::de::Error::custom)?;
    Ok(text)
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = duration::deserialize(d)?;
    if t.is_zero() {
        return Err(serde::de::Error::custom("must be more than 0"));
    }
    Ok(t)
}

fn lease<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = duration::deserialize(d)?;
    if t < Duration::from_secs(1) {
        return Err(serde::de::Error::custom(
            "must be at least 1s (heartbeats renew it every third of it; a shorter \
             lease expires under live jobs and runs them twice)",
        ));
    }
    Ok(t)
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n < 1 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

fn worker_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if !(1..=jobq::MAX_WORKERS).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "must be 1-{}",
            jobq::MAX_WORKERS
        )));
    }
    Ok(n)
}

fn prefetch<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n > jobq::MAX_PREFETCH {
        return Err(serde::de::Error::custom(format!(
            "must be 0-{}",
            jobq::MAX_PREFETCH
        )));
    }
    Ok(n)
}

fn at_least_two<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n < 2 {
        return Err(serde::de::Error::custom(
            "must be at least 2 (a pool's claims and its heartbeats each need a connection)",
        ));
    }
    Ok(n)
}

fn durability<'de, D: Deserializer<'de>>(d: D) -> Result<Durability, D::Error> {
    match String::deserialize(d)?.as_str() {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => Err(serde::de::Error::custom(format!(
            "unknown durability {other:?}: expected \"full\" or \"normal\""
        ))),
    }
}

fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    resolve_listen_addr(&s).map_err(serde::de::Error::custom)
}

/// An address to listen on from `IP:PORT` or `HOST:PORT` (e.g.
/// `localhost:8080`): the first IPv4 address the name resolves to, else the
/// first address.
///
/// # Errors
/// A message naming the text when it has no port or does not resolve.
pub fn resolve_listen_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = |why: String| {
        format!("{text:?}: {why} (expected IP:PORT or HOST:PORT, e.g. 127.0.0.1:8080)")
    };
    let all: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| bad("resolves to no address".into()))
}

fn non_empty_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(serde::de::Error::custom(
            "empty secret: remove the key to disable the endpoint",
        ));
    }
    Ok(Some(s))
}
