//! The admin endpoints: list with filters and keyset pagination, stats, manual
//! retry and cancel. Every one needs an admin token.

use crate::http::auth;
use crate::http::common::{list_page, parse_id, require_json};
use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{JobFilter, JobStatus};

/// `GET /api/v1/admin/jobs`: `{jobs, next_cursor, total}`.
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    list_page(ctx, req, None)
}

/// `GET /api/v1/admin/jobs/stats`: the stats object.
pub(crate) fn stats(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    Response::json(200, &ctx.queue.stats()?)
}

/// `POST /api/v1/admin/jobs/{id}/retry`: the job, pending again.
pub(crate) fn retry(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.retry(parse_id(id)?)?;
    Response::json(200, &job)
}

/// `DELETE /api/v1/admin/jobs/{id}`: the job, cancelled (or with a cancel requested).
pub(crate) fn cancel(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.cancel(parse_id(id)?)?;
    Response::json(200, &job)
}

/// The body of the bulk endpoints: which jobs. Unknown fields are refused (a
/// typo must not widen a bulk change to every job).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkFilter {
    status: Option<JobStatus>,
    queue: Option<String>,
    job_type: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<String>,
    owner: Option<String>,
}

/// `POST /api/v1/admin/jobs/retry` and `/cancel`: the change applied to every
/// job matching the filter in the body, in short batches; `{"count": n}`.
pub(crate) fn bulk(ctx: &Ctx, req: &Request, action: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    require_json(req)?;
    let f: BulkFilter = serde_json::from_slice(&req.body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", e.to_string())
        } else {
            ApiError::unprocessable(e.to_string())
        }
    })?;
    let filter = JobFilter {
        status: f.status,
        queue: f.queue,
        job_type: f.job_type,
        entity_type: f.entity_type,
        entity_id: f.entity_id,
        owner: f.owner,
    };
    let count = match action {
        "retry" => ctx.queue.retry_matching(&filter)?,
        _ => ctx.queue.cancel_matching(&filter)?,
    };
    Response::json(200, &serde_json::json!({ "count": count }))
}
