//! The admin endpoints of named queues: list, pause, resume, change limits.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::http::auth;
use crate::http::common::require_json;
use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{LimitsChange, RateLimit};

/// `GET /api/v1/admin/queues`: `{"queues": [...]}`.
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    Response::json(200, &serde_json::json!({"queues": ctx.queue.queues()?}))
}

/// `POST /api/v1/admin/queues/{name}/pause`, optional body `{"for_s": 600}`.
pub(crate) fn pause(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let mut fields = object(req)?;
    let duration = match fields.remove("for_s") {
        None => None,
        Some(v) => Some(seconds(&v)?),
    };
    only_known(&fields)?;
    Response::json(200, &ctx.queue.pause_queue(name, duration)?)
}

/// `POST /api/v1/admin/queues/{name}/resume`.
pub(crate) fn resume(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    only_known(&object(req)?)?;
    Response::json(200, &ctx.queue.resume_queue(name)?)
}

/// `PATCH /api/v1/admin/queues/{name}` with `{"concurrency": N | null,
/// "rate_limit": "100/1m" | null}`: a field left out is unchanged, null removes
/// the limit.
pub(crate) fn set(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let mut fields = object(req)?;
    let change = LimitsChange {
        concurrency: fields.remove("concurrency").map(concurrency).transpose()?,
        rate_limit: fields.remove("rate_limit").map(rate_limit).transpose()?,
    };
    only_known(&fields)?;
    Response::json(200, &ctx.queue.set_queue_limits(name, change)?)
}

/// The body as a JSON object; an empty body is an empty object.
fn object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    require_json(req)?;
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::unprocessable(
            "invalid body: expected a JSON object",
        )),
    }
}

fn only_known(rest: &Map<String, Value>) -> Result<(), ApiError> {
    match rest.keys().next() {
        Some(k) => Err(ApiError::unprocessable(format!(
            "invalid field: unknown field {:?}",
            k.chars().take(64).collect::<String>()
        ))),
        None => Ok(()),
    }
}

fn seconds(v: &Value) -> Result<Duration, ApiError> {
    v.as_u64()
        .filter(|s| (1..=crate::MAX_DELAY_S).contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "invalid for_s: expected whole seconds from 1 to {}",
                crate::MAX_DELAY_S
            ))
        })
}

fn concurrency(v: Value) -> Result<Option<u32>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid concurrency: expected an integer of at least 1, or null for unlimited",
            )
        })
}

fn rate_limit(v: Value) -> Result<Option<RateLimit>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(ApiError::from),
        _ => Err(ApiError::unprocessable(
            "invalid rate_limit: expected a string like \"100/1m\", or null for unlimited",
        )),
    }
}
