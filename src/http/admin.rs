//! The admin endpoints: list with filters and keyset pagination, stats, manual
//! retry and cancel. Every one needs an admin token.

use crate::http::auth;
use crate::http::common::{list_page, parse_id, ListQuery};
use crate::http::context::Ctx;
use crate::http::error_responses::{
    AdminOnly, BadRequest, Conflict, NoQuery, NotFound, Transport, Unauthorized, WrongMethod,
};
use crate::http::errors::ErrorBody;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{Job, JobId, JobPage, Stats};

/// List jobs, newest first (admin)
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs",
    operation_id = "listJobs",
    security(("bearerAuth" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        BadRequest, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    list_page(ctx, req, None)
}

/// Counts by status and type (admin)
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs/stats",
    operation_id = "jobStats",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The stats", body = Stats),
        NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn stats(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    Response::json(200, &ctx.queue.stats()?)
}

/// Retry a failed or cancelled job (admin)
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/{id}/retry",
    operation_id = "retryJob",
    security(("bearerAuth" = [])),
    params(("id" = inline(JobId), Path, description = "the job id (UUID)")),
    responses(
        (status = 200, description = "The job, pending again", body = Job),
        (status = 409, body = ErrorBody,
            description = "The job's status does not allow this (error.status holds it), or another job holds its unique key"),
        NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly, NotFound,
    )
)]
pub(crate) fn retry(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.retry(parse_id(id)?)?;
    Response::json(200, &job)
}

/// Cancel a job, or request cancellation of a running one (admin)
#[utoipa::path(
    delete,
    path = "/api/v1/admin/jobs/{id}",
    operation_id = "cancelJob",
    security(("bearerAuth" = [])),
    params(("id" = inline(JobId), Path, description = "the job id (UUID)")),
    responses(
        (status = 200, description = "The job after the change", body = Job),
        NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly, NotFound, Conflict,
    )
)]
pub(crate) fn cancel(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.cancel(parse_id(id)?)?;
    Response::json(200, &job)
}
