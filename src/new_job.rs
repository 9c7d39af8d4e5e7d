//! A request to enqueue a job, and the one set of rules for reading it from JSON.
//!
//! The request and its builder live here; reading it from JSON is in `json.rs`,
//! the `unique` field's JSON form (read and documented) in `unique_rule.rs`.

mod json;
mod unique_rule;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::unique::Unique;

pub(crate) use json::{malformed, whole, Fields};

/// The longest entity type, entity id or owner, in bytes.
pub const MAX_REF_BYTES: usize = 255;

/// Checks an entity type, entity id or owner (of a job or of a filter):
/// 1-[`MAX_REF_BYTES`] bytes without NUL (PostgreSQL's text cannot hold NUL,
/// and every backend takes the same values).
pub(crate) fn check_ref(field: &'static str, value: Option<&str>) -> Result<()> {
    match value {
        Some(s) if s.is_empty() || s.len() > MAX_REF_BYTES || s.contains('\0') => Err(invalid(
            field,
            format!("must be 1-{MAX_REF_BYTES} bytes, without NUL characters"),
        )),
        _ => Ok(()),
    }
}
/// Checks a job type: 1-64 characters of `[a-z0-9_.:-]`.
///
/// # Errors
/// [`Error::Invalid`] naming `job_type`.
pub fn validate_job_type(t: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c);
    if t.is_empty() || t.len() > 64 || !t.chars().all(ok_char) {
        return Err(invalid(
            "job_type",
            "must be 1-64 characters of [a-z0-9_.:-]".into(),
        ));
    }
    Ok(())
}

/// The largest `max_attempts` accepted: 2,147,483,647 (2^31 - 1), the
/// largest both backends store (PostgreSQL keeps it in an `integer`).
pub const MAX_ATTEMPTS: u32 = 2_147_483_647;

/// The longest `delay_s` accepted, in seconds (about 3,000 years).
pub const MAX_DELAY_S: u64 = 100_000_000_000;

// A snooze or retry waits at most as long as an enqueue may delay.
const _: () = assert!(crate::state::MAX_WAIT.as_secs() == MAX_DELAY_S);

/// A request to enqueue a job. Build with [`NewJob::new`] and the setters, or
/// read one from JSON with [`NewJob::from_json`] (the rules every front end
/// uses: the CLI's `--jsonl`, the HTTP API, and serde's `Deserialize`).
/// `Serialize` is for showing one (logs, debugging): it writes `null` for
/// fields left out, which the reader refuses, and leaves out
/// [`NewJob::not_unique`].
///
/// Its OpenAPI schema (the HTTP request body) is derived from these fields;
/// `openapi.rs` adds what the derive cannot say (`run_at` or `delay_s`, the
/// entity fields together).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(description = "A job to enqueue. Its owner is the token's user. \
    Optional fields other than payload may be omitted but not null. \
    Give run_at or delay_s, not both; entity_type and entity_id go together.")]
pub struct NewJob {
    /// The job type (1-64 characters of `[a-z0-9_.:-]`).
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub job_type: String,
    /// The queue (1-64 characters of `[a-z0-9_.:-]`); default: the type's
    /// declared queue, else `"default"`.
    #[schema(nullable = false, pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub queue: Option<String>,
    /// The payload; null when absent. At most 1 MiB serialized by default.
    #[schema(required = false)]
    pub payload: Value,
    /// Priority; default 0; higher runs first.
    #[schema(nullable = false, minimum = -2147483648, maximum = 2147483647)]
    pub priority: Option<i32>,
    /// Total runs allowed, at least 1; default: the job type's declared
    /// `max_attempts`, else 5.
    #[schema(nullable = false, minimum = 1, maximum = 2147483647, format = Int32)]
    pub max_attempts: Option<u32>,
    /// Run no earlier than this time (RFC 3339, before the year 10000). Not with `delay_s`.
    #[schema(nullable = false)]
    pub run_at: Option<Timestamp>,
    /// Run no earlier than this many seconds from now. Not with `run_at`.
    #[schema(nullable = false, maximum = 100000000000u64)]
    pub delay_s: Option<u64>,
    /// What kind of thing the job works on: 1-255 bytes of UTF-8, no NUL.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00]*$"
    )]
    pub entity_type: Option<String>,
    /// Which thing the job works on: 1-255 bytes of UTF-8, no NUL.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00]*$"
    )]
    pub entity_id: Option<String>,
    /// The user enqueuing the job. Not part of the HTTP request (the token decides).
    #[schema(ignore)]
    pub owner: Option<String>,
    /// A uniqueness rule: while a job with the same key holds it, enqueue returns
    /// that job instead of inserting. Default: the job type's rule, else none;
    /// `false` sets none over the type's rule (`not_unique()` in Rust).
    #[schema(nullable = false)]
    pub unique: Option<Unique>,
    /// True: no uniqueness rule, not even the type's (`"unique": false`).
    #[serde(skip)]
    pub(crate) not_unique: bool,
    /// Set by recurring schedules: the schedule's name and the fire time served.
    #[serde(skip)]
    pub(crate) scheduled: Option<(String, Timestamp)>,
}

impl NewJob {
    /// A job of `job_type` with `payload`, due now, priority 0, default max_attempts.
    pub fn new(job_type: impl Into<String>, payload: Value) -> NewJob {
        NewJob {
            job_type: job_type.into(),
            queue: None,
            payload,
            priority: None,
            max_attempts: None,
            run_at: None,
            delay_s: None,
            entity_type: None,
            entity_id: None,
            owner: None,
            unique: None,
            not_unique: false,
            scheduled: None,
        }
    }

    /// Sets the queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the priority (higher runs first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the total number of runs allowed (at least 1).
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Makes the job due at `at` (UTC).
    pub fn run_at(mut self, at: Timestamp) -> Self {
        self.run_at = Some(at);
        self.delay_s = None;
        self
    }

    /// Makes the job due `delay` from now, in whole seconds (`delay_s`): a
    /// sub-second part rounds up, so the job is never due before `delay` has
    /// passed (1.5 s gives 2 s; 1 ms gives 1 s).
    pub fn delay(mut self, delay: Duration) -> Self {
        let whole = delay.as_secs();
        self.delay_s = Some(if delay.subsec_nanos() > 0 {
            whole.saturating_add(1)
        } else {
            whole
        });
        self.run_at = None;
        self
    }

    /// Sets the entity reference (`entity_type`, `entity_id`).
    pub fn entity(mut self, entity_type: impl Into<String>, entity_id: impl Into<String>) -> Self {
        self.entity_type = Some(entity_type.into());
        self.entity_id = Some(entity_id.into());
        self
    }

    /// Sets a uniqueness rule.
    pub fn unique(mut self, rule: Unique) -> Self {
        self.unique = Some(rule);
        self.not_unique = false;
        self
    }

    /// Enqueues this job with no uniqueness rule, even when its type declares
    /// one (`"unique": false` in JSON, `--no-unique` on the CLI); undoes
    /// [`NewJob::unique`].
    pub fn not_unique(mut self) -> Self {
        self.unique = None;
        self.not_unique = true;
        self
    }

    /// Sets the owner (the user enqueuing the job).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::Invalid { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_rounds_up_to_whole_seconds() {
        let s = |d: Duration| NewJob::new("t", Value::Null).delay(d).delay_s;
        assert_eq!(s(Duration::ZERO), Some(0));
        assert_eq!(s(Duration::from_millis(1)), Some(1));
        assert_eq!(s(Duration::from_millis(1500)), Some(2));
        assert_eq!(s(Duration::from_secs(7)), Some(7));
        assert_eq!(s(Duration::MAX), Some(u64::MAX));
    }
}
