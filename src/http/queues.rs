//! The admin endpoints of named queues: list, pause, resume, change limits.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::http::auth;
use crate::http::body::{object, only_known};
use crate::http::common::decoded_name;
use crate::http::context::Ctx;
use crate::http::error_responses::{AdminOnly, NoQuery, Transport, Unauthorized, WrongMethod};
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{LimitsChange, QueueInfo, RateLimit};

/// Every queue: `{"queues": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct QueueList {
    /// The queues, sorted by name.
    queues: Vec<QueueInfo>,
}

/// The body of `PATCH /api/v1/admin/queues/{name}` (read by hand, field by field).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the body, which is read by name
pub(crate) struct QueueLimits {
    /// null: unlimited; absent: unchanged
    #[schema(minimum = 1, maximum = 2147483647, format = Int32)]
    concurrency: Option<u32>,
    /// e.g. 100/1m; null: unlimited; absent: unchanged
    rate_limit: Option<RateLimit>,
}

/// The optional body of `POST /api/v1/admin/queues/{name}/pause`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the body, which is read by name
pub(crate) struct QueuePause {
    /// resume by itself after this many seconds; absent: until resumed
    #[schema(nullable = false, minimum = 1, maximum = 100000000000u64)]
    for_s: Option<u64>,
}

/// List every queue with its counts, limits and pause (admin)
#[utoipa::path(
    get,
    path = "/api/v1/admin/queues",
    operation_id = "listQueues",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The queues, sorted by name", body = QueueList),
        NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    let queues = ctx.queue.queues()?;
    Response::json(200, &QueueList { queues })
}

/// Pause a queue in every process; running jobs finish (admin)
#[utoipa::path(
    post,
    path = "/api/v1/admin/queues/{name}/pause",
    operation_id = "pauseQueue",
    security(("bearerAuth" = [])),
    params(("name" = String, Path, pattern = "^[a-z0-9_.:-]{1,64}$", description = "the queue's name")),
    request_body(content = Option<QueuePause>, content_type = "application/json"),
    responses(
        (status = 200, description = "The queue, paused", body = QueueInfo),
        QueueErrors, NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn pause(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let mut fields = object(req)?;
    let duration = match fields.remove("for_s") {
        None => None,
        Some(v) => Some(seconds(&v)?),
    };
    only_known(&fields)?;
    Response::json(200, &ctx.queue.pause_queue(&decoded(name)?, duration)?)
}

/// Resume a paused queue (admin)
#[utoipa::path(
    post,
    path = "/api/v1/admin/queues/{name}/resume",
    operation_id = "resumeQueue",
    security(("bearerAuth" = [])),
    params(("name" = String, Path, pattern = "^[a-z0-9_.:-]{1,64}$", description = "the queue's name")),
    responses(
        (status = 200, description = "The queue, resumed", body = QueueInfo),
        QueueErrors, NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn resume(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    only_known(&object(req)?)?;
    Response::json(200, &ctx.queue.resume_queue(&decoded(name)?)?)
}

/// Change a queue's limits for every process (admin)
///
/// A field left out is unchanged (so is everything, without a body); null
/// removes the limit.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/queues/{name}",
    operation_id = "setQueueLimits",
    security(("bearerAuth" = [])),
    params(("name" = String, Path, pattern = "^[a-z0-9_.:-]{1,64}$", description = "the queue's name")),
    request_body(content = Option<QueueLimits>, content_type = "application/json"),
    responses(
        (status = 200, description = "The queue after the change", body = QueueInfo),
        QueueErrors, NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn set(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let mut fields = object(req)?;
    let change = LimitsChange {
        concurrency: fields.remove("concurrency").map(concurrency).transpose()?,
        rate_limit: fields.remove("rate_limit").map(rate_limit).transpose()?,
    };
    only_known(&fields)?;
    Response::json(200, &ctx.queue.set_queue_limits(&decoded(name)?, change)?)
}

/// What the queue endpoints answer beside the shared sets.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes answers that `ApiError` makes
pub(crate) enum QueueErrors {
    /// No queue of this name is known
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The body is not sent as application/json
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// A body that is not a JSON object, a bad queue name or value (concurrency 0, a rate limit that does not parse, a non-positive for_s)
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// The `{name}` path segment, percent-decoded (clients send `:` as `%3A`).
fn decoded(name: &str) -> Result<String, ApiError> {
    decoded_name(name).ok_or_else(|| ApiError::unprocessable("invalid queue: not UTF-8"))
}

/// The body as a JSON object; an empty body is an empty object.
fn seconds(v: &Value) -> Result<Duration, ApiError> {
    whole_u64(v)
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
    whole_u64(&v)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=crate::MAX_CONCURRENCY).contains(n))
        .map(Some)
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "invalid concurrency: expected an integer from 1 to {}, or null for unlimited",
                crate::MAX_CONCURRENCY
            ))
        })
}

/// A whole number, written as an integer or as a float with no fraction (JSON
/// has one number type; the job request's rule).
fn whole_u64(v: &Value) -> Option<u64> {
    v.as_number()
        .and_then(crate::new_job::whole)
        .and_then(|n| u64::try_from(n).ok())
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
