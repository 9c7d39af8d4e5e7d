//! A request to enqueue a job, and the one set of rules for reading it from JSON.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobStatus, StatusSet};
use crate::unique::Unique;

/// The longest entity type, entity id or owner, in bytes.
pub const MAX_REF_BYTES: usize = 255;
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

/// The longest `delay_s` accepted, in seconds (about 3,000 years).
pub const MAX_DELAY_S: u64 = 100_000_000_000;

/// The fields of a job request, in the order the errors list them.
const FIELDS: [&str; 11] = [
    "job_type",
    "queue",
    "payload",
    "priority",
    "max_attempts",
    "run_at",
    "delay_s",
    "entity_type",
    "entity_id",
    "owner",
    "unique",
];

/// A request to enqueue a job. Build with [`NewJob::new`] and the setters, or
/// read one from JSON with [`NewJob::from_json`] (the rules every front end
/// uses: the CLI's `--jsonl`, the HTTP API, and serde's `Deserialize`).
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
    /// Total runs allowed, at least 1; default 5 (or the queue's per-type default).
    #[schema(nullable = false, minimum = 1, maximum = 4294967295u64, format = Int64)]
    pub max_attempts: Option<u32>,
    /// Run no earlier than this time (RFC 3339, before the year 10000). Not with `delay_s`.
    #[schema(nullable = false)]
    pub run_at: Option<Timestamp>,
    /// Run no earlier than this many seconds from now. Not with `run_at`.
    #[schema(nullable = false, maximum = 100000000000u64)]
    pub delay_s: Option<u64>,
    /// What kind of thing the job works on: 1-255 bytes of UTF-8.
    #[schema(nullable = false, min_length = 1, max_length = 255)]
    pub entity_type: Option<String>,
    /// Which thing the job works on: 1-255 bytes of UTF-8.
    #[schema(nullable = false, min_length = 1, max_length = 255)]
    pub entity_id: Option<String>,
    /// The user enqueuing the job. Not part of the HTTP request (the token decides).
    #[schema(ignore)]
    pub owner: Option<String>,
    /// A uniqueness rule: while a job with the same key holds it, enqueue returns
    /// that job instead of inserting. Default: the type's rule, else none.
    #[schema(nullable = false)]
    pub unique: Option<Unique>,
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

    /// Makes the job due `delay` from now (whole seconds; sub-second parts are dropped).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_s = Some(delay.as_secs());
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
        self
    }

    /// Sets the owner (the user enqueuing the job).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
}

impl NewJob {
    /// Reads a job request from JSON text: an object with `job_type` and
    /// optionally `queue`, `unique` (`true` or `{"key", "period_s", "states"}`),
    /// `payload` (any JSON; default null), `priority` (i32),
    /// `max_attempts` (at least 1), `run_at` (RFC 3339) or `delay_s` (whole
    /// seconds), `entity_type` and `entity_id`, and `owner`.
    ///
    /// - Integers may be written as whole floats (`3.0` is 3: JSON has one number
    ///   type); other floats, strings and out-of-range numbers are refused.
    /// - `null` is refused for every field but `payload` (omit the field for its
    ///   default); so are unknown fields and a field given twice.
    /// - The rest (job type format, `max_attempts >= 1`, references, payload size,
    ///   declared types) is checked at enqueue.
    ///
    /// ```
    /// let job = jobq::NewJob::from_json(br#"{"job_type": "send", "priority": 2.0}"#).unwrap();
    /// assert_eq!(job.priority, Some(2));
    /// let err = jobq::NewJob::from_json(br#"{"job_type": "send", "priority": "high"}"#);
    /// assert_eq!(
    ///     err.unwrap_err().to_string(),
    ///     "invalid priority: expected an integer from -2147483648 to 2147483647"
    /// );
    /// ```
    ///
    /// # Errors
    /// [`Error::MalformedJson`] when the text is not JSON; [`Error::Invalid`]
    /// naming the field when it is JSON but not a job request.
    pub fn from_json(text: impl AsRef<[u8]>) -> Result<NewJob> {
        let fields: Fields = serde_json::from_slice(text.as_ref()).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                invalid("body", e.to_string())
            } else {
                Error::MalformedJson {
                    reason: e.to_string(),
                }
            }
        })?;
        if let Some(dup) = fields.duplicate {
            return Err(invalid_field(&dup, "given more than once".into()));
        }
        NewJob::from_fields(fields.entries)
    }

    /// Reads a job request from a JSON value, by the rules of [`NewJob::from_json`]
    /// (a value cannot hold a field twice).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn from_value(value: Value) -> Result<NewJob> {
        match value {
            Value::Object(map) => NewJob::from_fields(map.into_iter().collect()),
            _ => Err(not_an_object()),
        }
    }

    fn from_fields(entries: Vec<(String, Value)>) -> Result<NewJob> {
        let mut job = NewJob::new(String::new(), Value::Null);
        let mut has_type = false;
        for (key, value) in entries {
            if value.is_null() && key != "payload" && FIELDS.contains(&key.as_str()) {
                return Err(invalid_field(
                    &key,
                    "must not be null: omit it for the default".into(),
                ));
            }
            match key.as_str() {
                "job_type" => {
                    job.job_type = string(&key, value)?;
                    has_type = true;
                }
                "payload" => job.payload = value,
                "queue" => job.queue = Some(string(&key, value)?),
                "priority" => {
                    let n = integer(&key, &value, i64::from(i32::MIN), i64::from(i32::MAX))?;
                    job.priority = Some(i32::try_from(n).unwrap_or_default());
                }
                "max_attempts" => {
                    let n = integer(&key, &value, 1, i64::from(u32::MAX))?;
                    job.max_attempts = Some(u32::try_from(n).unwrap_or(1));
                }
                "delay_s" => {
                    let n = integer(&key, &value, 0, MAX_DELAY_S as i64)?;
                    job.delay_s = Some(n.unsigned_abs());
                }
                "run_at" => job.run_at = Some(time(&key, value)?),
                "entity_type" => job.entity_type = Some(string(&key, value)?),
                "entity_id" => job.entity_id = Some(string(&key, value)?),
                "owner" => job.owner = Some(string(&key, value)?),
                "unique" => job.unique = Some(unique_rule(value)?),
                other => return Err(unknown_field(other)),
            }
        }
        if !has_type {
            return Err(invalid("job_type", "is required".into()));
        }
        Ok(job)
    }
}

impl<'de> Deserialize<'de> for NewJob {
    /// By the rules of [`NewJob::from_json`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let fields = Fields::deserialize(d)?;
        if let Some(dup) = fields.duplicate {
            return Err(serde::de::Error::custom(invalid_field(
                &dup,
                "given more than once".into(),
            )));
        }
        NewJob::from_fields(fields.entries).map_err(serde::de::Error::custom)
    }
}

/// A JSON object's entries in order, and the first key given twice.
struct Fields {
    entries: Vec<(String, Value)>,
    duplicate: Option<String>,
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a JSON object like {"job_type": "echo", "payload": {}}"#)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Fields, A::Error> {
                let mut fields = Fields {
                    entries: Vec::new(),
                    duplicate: None,
                };
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if fields.duplicate.is_none() && fields.entries.iter().any(|(e, _)| *e == k) {
                        fields.duplicate = Some(k.clone());
                    }
                    fields.entries.push((k, v));
                }
                Ok(fields)
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::Invalid { field, reason }
}

/// An error naming one of [`FIELDS`] (unknown names are reported as such).
fn invalid_field(key: &str, reason: String) -> Error {
    match FIELDS.iter().find(|f| **f == key) {
        Some(field) => invalid(field, reason),
        None => unknown_field(key),
    }
}

fn unknown_field(key: &str) -> Error {
    let shown: String = key.chars().take(64).collect();
    invalid(
        "field",
        format!("unknown field {shown:?}; expected {}", FIELDS.join(", ")),
    )
}

fn not_an_object() -> Error {
    invalid(
        "body",
        r#"expected a JSON object like {"job_type": "echo", "payload": {}}"#.into(),
    )
}

/// `"unique": true` (the defaults) or `{"key", "period_s", "states"}`.
fn unique_rule(value: Value) -> Result<Unique> {
    let map = match value {
        Value::Bool(true) => return Ok(Unique::default()),
        Value::Object(map) => map,
        _ => {
            return Err(invalid(
                "unique",
                r#"expected true or an object like {"key": "k", "period_s": 3600, "states": ["completed"]}"#.into(),
            ))
        }
    };
    let mut rule = Unique::default();
    for (k, v) in map {
        match k.as_str() {
            "key" => match v {
                Value::String(s) => rule.key = Some(s),
                _ => return Err(invalid("unique.key", "expected a string".into())),
            },
            "period_s" => {
                let n = integer("unique", &v, 1, MAX_DELAY_S as i64).map_err(|_| {
                    invalid(
                        "unique.period_s",
                        format!("expected whole seconds from 1 to {MAX_DELAY_S}"),
                    )
                })?;
                rule.period = Some(Duration::from_secs(n.unsigned_abs()));
            }
            "states" => rule.states = unique_states(v)?,
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(invalid(
                    "unique",
                    format!("unknown field {shown:?}; expected key, period_s, states"),
                ));
            }
        }
    }
    rule.validate()?;
    Ok(rule)
}

fn unique_states(v: Value) -> Result<StatusSet> {
    let bad = |what: String| invalid("unique.states", what);
    let Value::Array(items) = v else {
        return Err(bad(
            "expected a list of statuses like [\"completed\"]".into()
        ));
    };
    let mut statuses = Vec::new();
    for item in items {
        let text = item
            .as_str()
            .ok_or_else(|| bad("expected status names".into()))?;
        statuses.push(text.parse::<JobStatus>().map_err(|e| bad(e.to_string()))?);
    }
    Ok(StatusSet::live_and(&statuses))
}

/// In the OpenAPI document, the form a job request gives: `true` (the
/// defaults) or `{"key", "period_s", "states"}`, every field optional.
impl utoipa::PartialSchema for Unique {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Type,
        };
        use utoipa::openapi::Ref;
        let text = |what: &str| Some(what.to_string());
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(1024))
            .description(text(
                "the key, 1-1024 bytes (scoped to the job type); \
                default: the payload with its object keys sorted",
            ));
        let period = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_DELAY_S))
            .description(text(
                "the key holds within fixed time buckets of this many seconds",
            ));
        let states = ArrayBuilder::new()
            .items(Ref::from_schema_name("JobStatus"))
            .description(text(
                "statuses that also hold the key besides pending and in_progress",
            ));
        let rule = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("key", key)
            .property("period_s", period)
            .property("states", states)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let defaults = ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([true]));
        OneOfBuilder::new()
            .item(defaults)
            .item(rule)
            .description(text(
                "a uniqueness rule: while a job with the same key holds it, \
                the request answers that job (200, \"duplicate\": true) instead of inserting",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Unique {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <StatusSet as utoipa::ToSchema>::schemas(schemas);
    }
}

fn string(key: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(invalid_field(key, "expected a string".into())),
    }
}

fn time(key: &str, value: Value) -> Result<Timestamp> {
    let text = string(key, value)?;
    Timestamp::parse_rfc3339(&text).map_err(|_| {
        invalid_field(
            key,
            "expected an RFC 3339 time like 2026-01-31T09:00:00Z".into(),
        )
    })
}

/// A whole number in `min..=max`; a float with no fraction counts as one.
fn integer(key: &str, value: &Value, min: i64, max: i64) -> Result<i64> {
    let n = match value {
        Value::Number(n) => whole(n),
        _ => None,
    };
    n.filter(|n| (min..=max).contains(n))
        .ok_or_else(|| invalid_field(key, format!("expected an integer from {min} to {max}")))
}

/// A JSON number as a whole number: an integer, or a float with no fraction
/// (`3.0` is 3); `None` for fractions and for integers beyond i64.
pub(crate) fn whole(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return None; // beyond i64: out of every range here
    }
    let f = n.as_f64()?;
    // Exact up to 2^53; every range here fits.
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        NewJob::from_json(body).unwrap_err().to_string()
    }

    #[test]
    fn the_rules_name_the_field() {
        let table = [
            (r#"{"job_type":"a","priority":"high"}"#, "invalid priority: expected an integer from -2147483648 to 2147483647"),
            (r#"{"job_type":"a","priority":null}"#, "invalid priority: must not be null: omit it for the default"),
            (r#"{"job_type":"a","max_attempts":0}"#, "invalid max_attempts: expected an integer from 1 to 4294967295"),
            (r#"{"job_type":"a","max_attempts":2.5}"#, "invalid max_attempts: expected an integer from 1 to 4294967295"),
            (r#"{"job_type":"a","delay_s":-1}"#, "invalid delay_s: expected an integer from 0 to 100000000000"),
            (r#"{"job_type":"a","run_at":"soon"}"#, "invalid run_at: expected an RFC 3339 time like 2026-01-31T09:00:00Z"),
            (r#"{"job_type":"a","job_type":"b"}"#, "invalid job_type: given more than once"),
            (r#"{"job_type":7}"#, "invalid job_type: expected a string"),
            (r#"{"payload":{}}"#, "invalid job_type: is required"),
            (r#"[1]"#, "invalid body: invalid type: sequence, expected a JSON object like {\"job_type\": \"echo\", \"payload\": {}} at line 1 column 0"),
        ];
        for (body, want) in table {
            assert_eq!(err(body), want, "{body}");
        }
        assert!(err(r#"{"job_type":"a","colour":1}"#)
            .starts_with("invalid field: unknown field \"colour\""));
        assert!(matches!(
            NewJob::from_json("{"),
            Err(Error::MalformedJson { .. })
        ));
    }

    #[test]
    fn whole_floats_are_integers_and_payload_null_is_null() {
        let j = NewJob::from_json(
            r#"{"job_type":"a","max_attempts":3.0,"priority":-2e0,"payload":null}"#,
        )
        .unwrap();
        assert_eq!((j.max_attempts, j.priority), (Some(3), Some(-2)));
        assert_eq!(j.payload, Value::Null);
        let via_serde: NewJob = serde_json::from_str(r#"{"job_type":"a","delay_s":5}"#).unwrap();
        assert_eq!(via_serde.delay_s, Some(5));
        assert!(serde_json::from_str::<NewJob>(r#"{"job_type":"a","priority":null}"#).is_err());
    }
}
