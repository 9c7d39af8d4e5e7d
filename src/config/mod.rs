//! `jobq.toml`: the workers, the declared job types and their handlers, the
//! server and the pruning policy. Every section refuses unknown keys; a bad file
//! is refused before anything starts with an error naming the file, the line and
//! the key. The declared types become the queue's [`jobq::Catalog`]
//! ([`Config::catalog`]).

mod error;
mod handler;
mod schedule;
mod sections;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer};

use jobq::QueueOptions;
use jobq::WorkerConfig;
use jobq::{Catalog, JobType, QueueSpec, Schedule};

pub use error::ConfigError;
pub use handler::{HandlerConfig, HandlerKind};
pub use schedule::ScheduleConfig;
pub use sections::{
    resolve_listen_addr, DatabaseConfig, PruneConfig, QueueConfig, ServerConfig, WorkersConfig,
};

/// The job type of the built-in audit cleanup, always declared.
pub const PRUNE_JOB_TYPE: &str = "jobq.prune";

/// The whole `jobq.toml`. Every section is optional; [`Config::default`] is what
/// an absent file means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[workers]`.
    #[serde(default)]
    pub workers: WorkersConfig,
    /// `[handlers.NAME]`: the declared job types, by name.
    #[serde(default, deserialize_with = "handler_map")]
    pub handlers: BTreeMap<String, HandlerConfig>,
    /// `[server]` (used by `jobq serve`).
    #[serde(default)]
    pub server: ServerConfig,
    /// `[prune]`: how long finished jobs are kept.
    #[serde(default)]
    pub prune: PruneConfig,
    /// `[database]`: how the database file is created.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// `[queues.NAME]`: named queues' limits, by name.
    #[serde(default, deserialize_with = "queue_map")]
    pub queues: BTreeMap<String, QueueConfig>,
    /// `[schedules.NAME]`: recurring schedules, by name.
    #[serde(default, deserialize_with = "schedule_map")]
    pub schedules: BTreeMap<String, ScheduleConfig>,
}

impl Config {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Invalid`]
    /// naming the file, line and key when it is not a valid config.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` only names the file in errors.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the file, line and key.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path.as_ref(), text, &e))?;
        for s in config.schedules.values() {
            let t = s.job_type.get_ref();
            if t != PRUNE_JOB_TYPE && !config.handlers.contains_key(t) {
                let declared = config.catalog_without_schedules().names().join(", ");
                let message = format!("job type {t:?} is not declared; declared types: {declared}");
                return Err(ConfigError::at(
                    path.as_ref(),
                    text,
                    s.job_type.span().start,
                    message,
                ));
            }
        }
        if let Some(s) = config.schedules.get(PRUNE_JOB_TYPE) {
            let clash = if s.job_type.get_ref() != PRUNE_JOB_TYPE {
                Some(format!(
                    "the schedule {PRUNE_JOB_TYPE:?} replaces the built-in prune schedule \
                     and runs job type {PRUNE_JOB_TYPE:?}; name this schedule otherwise"
                ))
            } else if !config.prune.enabled {
                Some(format!(
                    "[prune] enabled = false turns the built-in prune schedule off, and \
                     [schedules.{PRUNE_JOB_TYPE:?}] replaces it: keep one"
                ))
            } else if config.prune.cron != sections::PRUNE_CRON {
                Some(format!(
                    "[prune] cron and [schedules.{PRUNE_JOB_TYPE:?}] both set when the \
                     prune schedule fires: keep one"
                ))
            } else {
                None
            };
            if let Some(message) = clash {
                let at = s.job_type.span().start;
                return Err(ConfigError::at(path.as_ref(), text, at, message));
            }
        }
        Ok(config)
    }

    /// The catalogue of the declared job types: each `[handlers.NAME]` with its
    /// `priority`, `max_attempts`, `backoff` and `timeout`, and the built-in
    /// `jobq.prune`. Only declared types may be enqueued.
    pub fn catalog(&self) -> Catalog {
        let mut catalog = self.catalog_without_schedules();
        if self.prune.enabled && !self.schedules.contains_key(PRUNE_JOB_TYPE) {
            let prune = Schedule::new(PRUNE_JOB_TYPE, &self.prune.cron, PRUNE_JOB_TYPE)
                .expect("a parsed [prune] cron is valid");
            catalog
                .declare_schedule(prune)
                .expect("jobq.prune is declared");
        }
        for (name, s) in &self.schedules {
            let schedule = s.schedule(name).expect("a parsed schedule is valid");
            catalog
                .declare_schedule(schedule)
                .expect("a parsed schedule's type is declared");
        }
        catalog
    }

    fn catalog_without_schedules(&self) -> Catalog {
        let mut catalog = Catalog::declared_only();
        for (name, h) in &self.handlers {
            let mut job_type = JobType::new(name.clone());
            job_type.priority = h.priority;
            job_type.queue = h.queue.clone();
            job_type.max_attempts = h.max_attempts;
            job_type.backoff = h.backoff.clone();
            job_type.timeout = h.timeout;
            job_type.unique = h.unique.clone();
            // The config's own checks (name, >= 1, > 0) are the catalogue's.
            catalog
                .declare(job_type)
                .expect("a parsed config declares valid types");
        }
        catalog
            .declare(JobType::new(PRUNE_JOB_TYPE))
            .expect("the built-in prune type is valid");
        for (name, q) in &self.queues {
            let mut spec = QueueSpec::new(name.clone());
            spec.concurrency = q.concurrency;
            spec.rate_limit = q.rate_limit;
            catalog
                .declare_queue(spec)
                .expect("a parsed config declares valid queues");
        }
        catalog
    }

    /// Queue options for the database at `db` with this config's durability and
    /// catalogue.
    pub fn queue_options(&self, db: &Path) -> QueueOptions {
        QueueOptions::new(db)
            .durability(self.workers.durability)
            .catalog(self.catalog())
            .file_mode(self.database.file_mode)
            .notify(self.database.notify)
            .readers(self.database.pool_size)
            .max_payload_bytes(self.database.max_payload_bytes)
    }

    /// The worker pool settings of `[workers]` (other settings at their defaults).
    pub fn worker_config(&self) -> WorkerConfig {
        let defaults = WorkerConfig::default();
        WorkerConfig {
            workers: self.workers.count,
            lease: self.workers.lease,
            poll_interval: self.workers.poll_interval,
            recovery_interval: self.workers.recovery_interval,
            timeout_grace: self.workers.timeout_grace.unwrap_or(defaults.timeout_grace),
            prefetch: self.workers.prefetch,
            prefetch_ttl: self.workers.prefetch_ttl,
            ..defaults
        }
    }
}

/// A `[handlers.NAME]` key: a valid job type that is not reserved.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HandlerName(String);

impl<'de> Deserialize<'de> for HandlerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if jobq::validate_job_type(&name).is_err() {
            return Err(serde::de::Error::custom(format!(
                "invalid job type {name:?}: must be 1-64 characters of [a-z0-9_.:-]"
            )));
        }
        if name.starts_with("jobq.") {
            return Err(serde::de::Error::custom(format!(
                "job type {name:?} is reserved: types starting with `jobq.` are built in"
            )));
        }
        Ok(HandlerName(name))
    }
}

/// A `[queues.NAME]` key: a valid queue name.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct QueueName(String);

impl<'de> Deserialize<'de> for QueueName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        jobq::validate_queue_name(&name).map_err(serde::de::Error::custom)?;
        Ok(QueueName(name))
    }
}

fn queue_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, QueueConfig>, D::Error> {
    let raw = BTreeMap::<QueueName, QueueConfig>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A `[schedules.NAME]` key: a valid schedule name.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ScheduleName(String);

impl<'de> Deserialize<'de> for ScheduleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        jobq::validate_job_type(&name).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid schedule name {name:?}: must be 1-64 characters of [a-z0-9_.:-]"
            ))
        })?;
        Ok(ScheduleName(name))
    }
}

fn schedule_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, ScheduleConfig>, D::Error> {
    let raw = BTreeMap::<ScheduleName, ScheduleConfig>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

fn handler_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, HandlerConfig>, D::Error> {
    let raw = BTreeMap::<HandlerName, HandlerConfig>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}
