//! Handlers: what runs a job. A [`Registry`] maps job types to handlers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::failure::Failure;
use crate::retry::ErrorClass;
use crate::worker::JobContext;

/// How a handler reports a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// A later attempt may succeed: retry on the backoff schedule.
    Retryable(String),
    /// No attempt can succeed: the job ends `failed` now.
    Permanent(String),
    /// Retry after exactly `delay` (instead of the schedule), while attempts remain.
    RetryAfter {
        /// How long to wait before the next attempt.
        delay: Duration,
        /// The error text.
        message: String,
    },
    /// The handler stopped because [`JobContext::is_cancelled`] said so, or
    /// cancels the job itself: the job ends `cancelled`, never retried. (Past the
    /// type's timeout it is recorded as a retryable "timed out after N s" instead.)
    Cancelled,
    /// Plain text: [`crate::classify`] decides retryable or permanent.
    Message(String),
    /// Not a failure: run the job again after this delay without using an
    /// attempt (e.g. an upstream said "not yet"). A job may snooze
    /// [`crate::state::MAX_SNOOZES`] times; the next snooze ends it `failed`.
    Snooze(Duration),
}

impl JobError {
    /// The failure the store records for this error (text cleaned and classified).
    pub fn to_failure(&self) -> Failure {
        match self {
            JobError::Retryable(m) => Failure::new(m, ErrorClass::Retryable),
            JobError::Permanent(m) => Failure::new(m, ErrorClass::Permanent),
            JobError::RetryAfter { delay, message } => Failure {
                retry_after: Some(*delay),
                ..Failure::new(message, ErrorClass::Retryable)
            },
            JobError::Cancelled => Failure {
                cancelled: true,
                ..Failure::new("cancelled", ErrorClass::Permanent)
            },
            JobError::Message(m) => Failure::classified(m),
            // The pool snoozes instead; as a failure it is a retry after the delay.
            JobError::Snooze(delay) => Failure {
                retry_after: Some(*delay),
                ..Failure::new("snoozed", ErrorClass::Retryable)
            },
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retryable(m) | JobError::Permanent(m) | JobError::Message(m) => {
                f.write_str(m)
            }
            JobError::RetryAfter { delay, message } => {
                write!(f, "{message} (retry after {} ms)", delay.as_millis())
            }
            JobError::Cancelled => f.write_str("cancelled"),
            JobError::Snooze(d) => write!(f, "snoozed for {} ms", d.as_millis()),
        }
    }
}

impl std::error::Error for JobError {}

impl From<String> for JobError {
    fn from(m: String) -> Self {
        JobError::Message(m)
    }
}

impl From<&str> for JobError {
    fn from(m: &str) -> Self {
        JobError::Message(m.to_string())
    }
}

/// What a handler returns: the job's result, or why the attempt failed.
pub type HandlerResult = Result<Value, JobError>;

/// Runs jobs of one type. Implemented for every
/// `Fn(&JobContext, Value) -> HandlerResult + Send + Sync`.
pub trait Handler: Send + Sync {
    /// Runs one attempt on `payload`. Called on a worker thread; may block.
    fn run(&self, ctx: &JobContext, payload: Value) -> HandlerResult;
}

impl<F> Handler for F
where
    F: Fn(&JobContext, Value) -> HandlerResult + Send + Sync,
{
    fn run(&self, ctx: &JobContext, payload: Value) -> HandlerResult {
        self(ctx, payload)
    }
}

/// Maps job types to handlers. A pool claims only the types registered here.
/// Per-type settings (timeout, retries, priority) are the queue's
/// [`crate::Catalog`], not the registry's.
#[derive(Clone, Default)]
pub struct Registry {
    map: BTreeMap<String, Arc<dyn Handler>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.types())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `handler` for `job_type` (replacing any).
    pub fn register(&mut self, job_type: &str, handler: impl Handler + 'static) -> &mut Self {
        self.map.insert(job_type.to_string(), Arc::new(handler));
        self
    }

    /// The handler of `job_type`.
    pub fn get(&self, job_type: &str) -> Option<&Arc<dyn Handler>> {
        self.map.get(job_type)
    }

    /// The registered job types, sorted.
    pub fn types(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}
