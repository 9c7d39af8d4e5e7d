//! The admin bulk endpoints: retry or cancel every job matching a filter, in
//! short batches, answering how many changed.

use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use crate::http::auth;
use crate::http::common::require_json;
use crate::http::context::Ctx;
use crate::http::error_responses::{AdminOnly, Transport, Unauthorized};
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{JobFilter, JobStatus};

/// Which jobs: every given field must match; an empty object matches every
/// job. Unknown fields are refused (422), so a typo cannot widen the change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkFilter {
    /// Only jobs in this status.
    status: Option<JobStatus>,
    /// Only jobs of this queue.
    queue: Option<String>,
    /// Only jobs of this type.
    job_type: Option<String>,
    /// Only jobs on this kind of entity.
    entity_type: Option<String>,
    /// Only jobs on this entity id.
    entity_id: Option<String>,
    /// Only jobs of this owner.
    owner: Option<String>,
}

/// What a bulk change did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkCount {
    /// How many jobs were changed.
    #[schema(minimum = 0)]
    count: u64,
}

/// The bulk endpoints' own error answers.
#[derive(IntoResponses)]
#[allow(dead_code)] // Describes answers only; `ApiError` makes them.
pub(crate) enum BulkErrors {
    /// The body is not sent as application/json
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// A field that is not a filter, or a bad value (an unknown status)
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// Retry every failed or cancelled job matching a filter (admin)
///
/// As the single-job retry for each matching job, 500 per transaction; a job
/// whose retry would make a second live holder of its unique key is skipped;
/// jobs enqueued meanwhile are left alone.
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/retry",
    operation_id = "retryMatchingJobs",
    security(("bearerAuth" = [])),
    request_body(content = BulkFilter, content_type = "application/json"),
    responses(
        (status = 200, description = "How many jobs were retried", body = BulkCount),
        BulkErrors, Transport, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn retry(ctx: &Ctx, req: &Request) -> RouteResult {
    let filter = filter(ctx, req)?;
    answer(ctx.queue.retry_matching(&filter)?)
}

/// Cancel every pending or running job matching a filter (admin)
///
/// As the single-job cancel for each matching job (a running one gets a
/// cancel request), 500 per transaction; jobs enqueued meanwhile are left
/// alone.
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/cancel",
    operation_id = "cancelMatchingJobs",
    security(("bearerAuth" = [])),
    request_body(content = BulkFilter, content_type = "application/json"),
    responses(
        (status = 200, description = "How many jobs were cancelled or asked to stop", body = BulkCount),
        BulkErrors, Transport, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn cancel(ctx: &Ctx, req: &Request) -> RouteResult {
    let filter = filter(ctx, req)?;
    answer(ctx.queue.cancel_matching(&filter)?)
}

/// The admin check, then the body's filter.
fn filter(ctx: &Ctx, req: &Request) -> Result<JobFilter, ApiError> {
    auth::admin(ctx, req)?;
    require_json(req)?;
    let f: BulkFilter = serde_json::from_slice(&req.body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", e.to_string())
        } else {
            ApiError::unprocessable(e.to_string())
        }
    })?;
    Ok(JobFilter {
        status: f.status,
        queue: f.queue,
        job_type: f.job_type,
        entity_type: f.entity_type,
        entity_id: f.entity_id,
        owner: f.owner,
    })
}

fn answer(count: u64) -> RouteResult {
    Response::json(200, &BulkCount { count })
}
