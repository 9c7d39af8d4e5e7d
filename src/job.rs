//! The job: its id, its status, its stored shape, and the request to create one.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::clock::Timestamp;
pub use crate::status::{JobStatus, ParseStatusError, StatusSet};

/// A job's id: a UUID v7 (time-ordered), shown in its hyphenated lower-case
/// text form, e.g. `0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01` (JSON, HTTP, CLI).
/// jobq's SQLite schema stores its 16 bytes; its `ToSql` gives the text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A new time-ordered id (UUID v7, monotonic within this process).
    pub fn new() -> JobId {
        JobId(Uuid::now_v7())
    }

    /// A new id whose UUID v7 time is `created_at` (Unix ms; before 1970 is
    /// taken as 0, beyond the 48 bits a UUID v7 holds as their maximum). jobq
    /// makes every job's id this way from its `created_at`, so the id alone
    /// orders jobs by creation (SQLite's listing is the primary key's order).
    /// Ids made in this process for one millisecond increase in the order
    /// they were made, also when ids for other times are made between them
    /// (the 74 bits after the time are one counter per process, RFC 9562's
    /// monotonic random method).
    pub fn at(created_at: Timestamp) -> JobId {
        JobId(crate::job_id::v7_at(created_at.0))
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The id of this UUID.
    pub fn from_uuid(uuid: Uuid) -> JobId {
        JobId(uuid)
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The text was not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a job id (a UUID is expected): {0:?}")]
pub struct ParseJobIdError(String);

impl FromStr for JobId {
    type Err = ParseJobIdError;

    /// Parses a UUID in any of its usual text forms.
    ///
    /// # Errors
    /// [`ParseJobIdError`] when the text is not a UUID (the text is kept, cut to 64 chars).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(JobId)
            .map_err(|_| ParseJobIdError(s.chars().take(64).collect()))
    }
}

/// In the OpenAPI document: a string of format `uuid`.
impl utoipa::PartialSchema for JobId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uuid".into())))
            .description(Some("UUID v7 (time-ordered)"))
            .into()
    }
}

impl utoipa::ToSchema for JobId {}

impl ToSql for JobId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for JobId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        text.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A job as stored. Its JSON form (serde) is the contract shared by the CLI's
/// `--json` and the HTTP API: times are RFC 3339 UTC with milliseconds.
// The OpenAPI schema is derived from the fields: every field serde always
// writes is `required` (nullable ones included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// The job type: 1-64 characters of `[a-z0-9_.:-]`; selects the handler.
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub job_type: String,
    /// The job's queue: 1-64 characters of `[a-z0-9_.:-]`; default `"default"`.
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub queue: String,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// Higher runs first. Default 0.
    pub priority: i32,
    /// The handler's input: any JSON value.
    pub payload: Value,
    /// What the handler returned, once completed.
    #[schema(required = true)]
    pub result: Option<Value>,
    /// Runs started so far (reset to 0 by a manual retry).
    #[schema(format = Int64)] // a u32: more than int32 holds
    pub attempts: u32,
    /// Total runs allowed, at least 1. Default 5.
    #[schema(minimum = 1, format = Int64)]
    pub max_attempts: u32,
    /// Times the handler asked to run later without using an attempt (snooze).
    #[serde(default)]
    #[schema(required = true)]
    pub snoozes: u32,
    /// When the job is next due (for a pending job).
    pub next_retry: Timestamp,
    /// The last error text, at most 4 KiB.
    #[schema(required = true)]
    pub error_message: Option<String>,
    /// The last failure and the history of failed attempts (see README, "Errors").
    #[schema(value_type = Option<Object>, required = true)]
    pub error_context: Option<Value>,
    /// What kind of thing the job works on, e.g. `document`.
    #[schema(required = true)]
    pub entity_type: Option<String>,
    /// Which thing the job works on.
    #[schema(required = true)]
    pub entity_id: Option<String>,
    /// The user who enqueued the job.
    #[schema(required = true)]
    pub owner: Option<String>,
    /// When the job was enqueued.
    pub created_at: Timestamp,
    /// When the row last changed.
    pub updated_at: Timestamp,
    /// When the latest attempt started.
    #[schema(required = true)]
    pub started_at: Option<Timestamp>,
    /// When the job reached `completed`, `failed` or `cancelled`.
    #[schema(required = true)]
    pub completed_at: Option<Timestamp>,
    /// The worker holding the lease, while `in_progress`.
    #[schema(required = true)]
    pub locked_by: Option<String>,
    /// When the lease runs out, while `in_progress`.
    #[schema(required = true)]
    pub lease_expires_at: Option<Timestamp>,
    /// True once a cancel was requested for a running job.
    #[serde(default)]
    #[schema(required = true)]
    pub cancel_requested: bool,
    /// The unique key the job holds, if it was enqueued with a uniqueness rule:
    /// `{"key": hex SHA-256, "states": [...]}`; null otherwise.
    #[serde(default)]
    #[schema(required = true)]
    pub unique: Option<HeldKey>,
    /// The recurring schedule that enqueued the job; null otherwise.
    #[serde(default)]
    #[schema(required = true, pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub schedule: Option<String>,
    /// The schedule's fire time the job serves (UTC); null when not scheduled.
    #[serde(default)]
    #[schema(required = true)]
    pub fire_time: Option<Timestamp>,
    /// The latest progress report of a running handler:
    /// `{"fraction": 0.0-1.0, "message": text, "at": time}`, or null.
    #[serde(default)]
    #[schema(value_type = Option<Object>, required = true)]
    pub progress: Option<Value>,
    /// The fencing token of the latest attempt: grows by one at every claim and is
    /// never reset. Not part of the JSON.
    #[serde(skip)]
    pub lease_token: i64,
    /// The retry schedule stored with the job at enqueue (its type's, from the
    /// queue's [`crate::Catalog`]); `None`: the default. Not part of the JSON.
    #[serde(skip)]
    pub backoff: Option<crate::Backoff>,
    /// Stored values that do not fit their column (written by hand, by another
    /// tool, or by a newer version), each as `"<column> <problem>"`, e.g.
    /// `"payload is not valid JSON (...)"`. Such a value is shown as its stored
    /// text; a job that cannot run because of one ends `failed` at its claim.
    /// Empty (and left out of the JSON) for every job jobq wrote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_time_ordered_text() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
        assert!("not-a-uuid".parse::<JobId>().is_err());
    }
}

/// The unique key a job holds: its SHA-256 (hex in JSON) and the statuses in
/// which it holds it (the rule is `Unique`'s: see "Unique jobs" in the README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldKey {
    /// The key's SHA-256, as 64 lower-case hex digits in JSON.
    #[serde(with = "hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub key: Vec<u8>,
    /// While the job is in one of these, no other job with the key is inserted.
    #[schema(value_type = Vec<JobStatus>)]
    pub states: StatusSet,
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}
