//! Reading a job request from JSON: the rules every front end uses (the CLI's
//! `--jsonl`, the HTTP API, serde's `Deserialize`).

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

use super::unique_rule::unique_rule;
use super::{invalid, NewJob, MAX_DELAY_S};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

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
                    reason: malformed(text.as_ref(), &e),
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
                    let n = integer(&key, &value, 1, i64::from(crate::MAX_ATTEMPTS))?;
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
                "unique" => match value {
                    Value::Bool(false) => job = job.not_unique(),
                    value => job.unique = Some(unique_rule(value)?),
                },
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

/// A JSON object's entries in order, and the first key given twice (the HTTP
/// bulk filters read their bodies with it too).
pub(crate) struct Fields {
    pub entries: Vec<(String, Value)>,
    pub duplicate: Option<String>,
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
pub(super) fn integer(key: &str, value: &Value, min: i64, max: i64) -> Result<i64> {
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

/// The parser's message for `text`, with a hint when the text starts with a
/// UTF-8 byte order mark (which some editors write, and JSON does not allow).
pub(crate) fn malformed(text: &[u8], e: &serde_json::Error) -> String {
    if text.starts_with(b"\xEF\xBB\xBF") {
        format!(
            "{e} (the text starts with a byte order mark, U+FEFF: save it as UTF-8 without one)"
        )
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        NewJob::from_json(body).unwrap_err().to_string()
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let e = err("\u{feff}{\"job_type\": \"t\"}");
        assert!(
            e.starts_with("malformed JSON: ") && e.contains("byte order mark"),
            "{e}"
        );
        assert!(!err("x").contains("byte order mark"));
    }

    #[test]
    fn the_rules_name_the_field() {
        let table = [
            (r#"{"job_type":"a","priority":"high"}"#, "invalid priority: expected an integer from -2147483648 to 2147483647"),
            (r#"{"job_type":"a","priority":null}"#, "invalid priority: must not be null: omit it for the default"),
            (r#"{"job_type":"a","max_attempts":0}"#, "invalid max_attempts: expected an integer from 1 to 2147483647"),
            (r#"{"job_type":"a","max_attempts":2.5}"#, "invalid max_attempts: expected an integer from 1 to 2147483647"),
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
