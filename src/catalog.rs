//! The job types a queue accepts and their defaults: one [`Catalog`], built once
//! (from `jobq.toml` by the binary, or in Rust) and handed to [`crate::Queue`] at
//! open. `Queue::enqueue*` refuses types it does not declare and fills their
//! defaults; failing and recovering use their backoff (stored on each job at
//! enqueue, so every process applies the same schedule).
//!
//! ```
//! use std::time::Duration;
//! use jobq::{Backoff, Catalog, JobType};
//!
//! let mut catalog = Catalog::declared_only();
//! catalog.declare(
//!     JobType::new("send_email")
//!         .max_attempts(3)
//!         .backoff(Backoff::new(vec![Duration::from_secs(10), Duration::from_secs(60)]).unwrap())
//!         .timeout(Duration::from_secs(30)),
//! ).unwrap();
//! assert!(catalog.check("send_email").is_ok());
//! assert!(catalog.check("resize").is_err());
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::new_job::NewJob;
use crate::queues::{QueueSpec, DEFAULT_QUEUE};
use crate::retry::Backoff;
use crate::schedule::Schedule;
use crate::unique::Unique;

/// One declared job type and the defaults of its jobs. Build with
/// [`JobType::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobType {
    name: String,
    /// The queue of jobs that do not set their own. Default: `"default"`.
    pub queue: Option<String>,
    /// Priority of jobs that do not set their own. Default: 0.
    pub priority: Option<i32>,
    /// `max_attempts` of jobs that do not set their own (at least 1). Default:
    /// the queue's default (5).
    pub max_attempts: Option<u32>,
    /// The retry schedule, stored on each job of this type at enqueue. Default:
    /// [`Backoff::default`].
    pub backoff: Option<Backoff>,
    /// The uniqueness rule of jobs that do not set their own. Default: none.
    pub unique: Option<Unique>,
    /// The longest an attempt may run: past it the handler's context reports
    /// [`crate::StopReason::TimedOut`], and after the pool's `timeout_grace` the
    /// attempt fails, retryable, "timed out after N s". Default: none.
    pub timeout: Option<Duration>,
}

impl JobType {
    /// A job type named `name` with no defaults of its own. The name is checked
    /// when the type is declared ([`Catalog::declare`]).
    pub fn new(name: impl Into<String>) -> JobType {
        JobType {
            name: name.into(),
            queue: None,
            priority: None,
            max_attempts: None,
            backoff: None,
            unique: None,
            timeout: None,
        }
    }

    /// The type's name (the `job_type` of its jobs).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the default queue (checked at declare).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the default priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the default `max_attempts` (checked at declare: 1 to
    /// [`crate::MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Sets the retry schedule.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Sets the default uniqueness rule.
    pub fn unique(mut self, rule: Unique) -> Self {
        self.unique = Some(rule);
        self
    }

    /// Sets the timeout (checked at declare: more than 0).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn validate(&self) -> Result<()> {
        crate::new_job::validate_job_type(&self.name)?;
        if let Some(q) = &self.queue {
            crate::queues::validate_queue_name(q)?;
        }
        if let Some(u) = &self.unique {
            u.validate()?;
        }
        if self
            .max_attempts
            .is_some_and(|n| !(1..=crate::MAX_ATTEMPTS).contains(&n))
        {
            return Err(invalid(
                "max_attempts",
                format!("{}: must be from 1 to {}", self.name, crate::MAX_ATTEMPTS),
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(invalid(
                "timeout",
                format!("{}: must be more than 0", self.name),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::Invalid { field, reason }
}

/// The job types a queue accepts. [`Catalog::any_type`] (what
/// [`crate::Queue::open`] uses) accepts every valid type name with the library
/// defaults; [`Catalog::declared_only`] accepts only the declared types. In
/// both, a declared type's defaults apply to its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    types: BTreeMap<String, JobType>,
    queues: BTreeMap<String, QueueSpec>,
    schedules: BTreeMap<String, Schedule>,
    declared_only: bool,
}

impl Default for Catalog {
    /// The same as [`Catalog::any_type`].
    fn default() -> Self {
        Catalog::any_type()
    }
}

impl Catalog {
    /// Accepts any valid job type; declared types get their own defaults.
    pub fn any_type() -> Catalog {
        Catalog {
            types: BTreeMap::new(),
            queues: BTreeMap::new(),
            schedules: BTreeMap::new(),
            declared_only: false,
        }
    }

    /// Accepts only the job types declared with [`Catalog::declare`].
    pub fn declared_only() -> Catalog {
        Catalog {
            types: BTreeMap::new(),
            queues: BTreeMap::new(),
            schedules: BTreeMap::new(),
            declared_only: true,
        }
    }

    /// Declares `job_type` (replacing an earlier declaration of the same name).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a name that is not 1-64 characters of
    /// `[a-z0-9_.:-]`, a `max_attempts` of 0 or more than
    /// [`crate::MAX_ATTEMPTS`], or a zero timeout.
    pub fn declare(&mut self, job_type: JobType) -> Result<&mut Self> {
        job_type.validate()?;
        self.types.insert(job_type.name.clone(), job_type);
        Ok(self)
    }

    /// Declares a queue with its limits (replacing an earlier declaration). The
    /// limits are written to the database when a worker pool starts.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad queue name or a concurrency of 0 or more
    /// than [`crate::MAX_CONCURRENCY`].
    pub fn declare_queue(&mut self, queue: QueueSpec) -> Result<&mut Self> {
        queue.validate()?;
        self.queues.insert(queue.name().to_string(), queue);
        Ok(self)
    }

    /// Declares a recurring schedule (replacing one of the same name). Worker
    /// pools on this catalogue fire it.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `job_type` when its type may not be enqueued
    /// (see [`Catalog::check`]), or `queue` for a bad queue name.
    pub fn declare_schedule(&mut self, schedule: Schedule) -> Result<&mut Self> {
        self.check(&schedule.job_type)?;
        if let Some(q) = &schedule.queue {
            crate::queues::validate_queue_name(q)?;
        }
        self.schedules.insert(schedule.name().to_string(), schedule);
        Ok(self)
    }

    /// The declared schedules, sorted by name.
    pub fn schedules(&self) -> impl Iterator<Item = &Schedule> {
        self.schedules.values()
    }

    /// The schedule `name`, if declared.
    pub fn schedule(&self, name: &str) -> Option<&Schedule> {
        self.schedules.get(name)
    }

    /// The declared queues, sorted by name.
    pub fn queues(&self) -> impl Iterator<Item = &QueueSpec> {
        self.queues.values()
    }

    /// Every queue this catalogue knows: `default`, the declared ones and the
    /// job types' default queues, sorted.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: std::collections::BTreeSet<String> = self.queues.keys().cloned().collect();
        names.insert(DEFAULT_QUEUE.to_string());
        names.extend(self.types.values().filter_map(|t| t.queue.clone()));
        names.into_iter().collect()
    }

    /// True when only declared types are accepted.
    pub fn is_declared_only(&self) -> bool {
        self.declared_only
    }

    /// The declaration of `name`, if declared.
    pub fn get(&self, name: &str) -> Option<&JobType> {
        self.types.get(name)
    }

    /// The declared types, sorted by name.
    pub fn types(&self) -> impl Iterator<Item = &JobType> {
        self.types.values()
    }

    /// The declared type names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.types.keys().cloned().collect()
    }

    /// Checks that jobs of `name` may be enqueued; returns its declaration, if any.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `job_type` for an invalid name, or (declared only)
    /// an undeclared one, listing the declared types.
    pub fn check(&self, name: &str) -> Result<Option<&JobType>> {
        crate::new_job::validate_job_type(name)?;
        match self.types.get(name) {
            Some(t) => Ok(Some(t)),
            None if !self.declared_only => Ok(None),
            None => Err(invalid("job_type", self.undeclared(name))),
        }
    }

    fn undeclared(&self, name: &str) -> String {
        let shown: String = name.chars().take(64).collect();
        if self.types.is_empty() {
            return format!("{shown:?} is not declared; no job types are declared");
        }
        format!(
            "{shown:?} is not declared; declared types: {}",
            self.names().join(", ")
        )
    }

    /// Fills the declared type's `queue`, `priority`, `max_attempts` and
    /// uniqueness rule into `job` where it left them out (the rule not when the
    /// job asked for none: [`NewJob::not_unique`]).
    pub fn apply_defaults(&self, job: &mut NewJob) {
        if let Some(t) = self.types.get(&job.job_type) {
            job.queue = job.queue.take().or_else(|| t.queue.clone());
            job.priority = job.priority.or(t.priority);
            job.max_attempts = job.max_attempts.or(t.max_attempts);
            if !job.not_unique {
                job.unique = job.unique.take().or_else(|| t.unique.clone());
            }
        }
    }

    /// The backoff schedule of `name`: its declared one, else the default.
    pub fn backoff(&self, name: &str) -> Backoff {
        self.types
            .get(name)
            .and_then(|t| t.backoff.clone())
            .unwrap_or_default()
    }

    /// The timeout of `name`, if declared with one.
    pub fn timeout(&self, name: &str) -> Option<Duration> {
        self.types.get(name).and_then(|t| t.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_only_refuses_undeclared_types_naming_the_declared_ones() {
        let mut c = Catalog::declared_only();
        c.declare(JobType::new("b")).unwrap();
        c.declare(JobType::new("a").priority(3)).unwrap();
        let err = c.check("zzz").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid job_type: \"zzz\" is not declared; declared types: a, b"
        );
        assert_eq!(c.check("a").unwrap().unwrap().priority, Some(3));
        assert!(c.check("Bad Name").is_err());
        let open = Catalog::any_type();
        assert!(open.check("anything").unwrap().is_none());
        assert!(open.check("").is_err());
    }

    #[test]
    fn bad_declarations_are_refused() {
        let mut c = Catalog::any_type();
        assert!(c.declare(JobType::new("UPPER")).is_err());
        assert!(c.declare(JobType::new("a").max_attempts(0)).is_err());
        assert!(c
            .declare(JobType::new("a").timeout(Duration::ZERO))
            .is_err());
        assert!(c.types().next().is_none());
    }

    #[test]
    fn defaults_fill_only_what_the_job_left_out() {
        let mut c = Catalog::any_type();
        c.declare(JobType::new("t").priority(7).max_attempts(2))
            .unwrap();
        let mut set = NewJob::new("t", serde_json::Value::Null).priority(1);
        c.apply_defaults(&mut set);
        assert_eq!((set.priority, set.max_attempts), (Some(1), Some(2)));
        let mut other = NewJob::new("u", serde_json::Value::Null);
        c.apply_defaults(&mut other);
        assert_eq!((other.priority, other.max_attempts), (None, None));
    }
}
