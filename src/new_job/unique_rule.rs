//! The `unique` field of a job request: how it is read from JSON, and its
//! OpenAPI schema.

use std::time::Duration;

use serde_json::Value;

use super::json::integer;
use super::{invalid, MAX_DELAY_S};
use crate::error::Result;
use crate::job::{JobStatus, StatusSet};
use crate::unique::Unique;

/// `"unique": true` (the defaults) or `{"key", "period_s", "states"}`
/// (`false`, no rule, is read by the caller).
pub(super) fn unique_rule(value: Value) -> Result<Unique> {
    let map = match value {
        Value::Bool(true) => return Ok(Unique::default()),
        Value::Object(map) => map,
        _ => {
            return Err(invalid(
                "unique",
                r#"expected true, false or an object like {"key": "k", "period_s": 3600, "states": ["completed"]}"#.into(),
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
/// defaults), `false` (no rule, not even the type's) or `{"key", "period_s",
/// "states"}`, every field optional.
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
            .description(text(
                "true: the default rule (the key is the payload); \
                false: no rule, not even the job type's",
            ));
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
