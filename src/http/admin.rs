//! The admin endpoints: list with filters and keyset pagination, stats, manual
//! retry and cancel. Every one needs an admin token.

use crate::http::auth;
use crate::http::common::{bad_query, parse_id, parse_limit};
use crate::http::context::Ctx;
use crate::http::error_responses::{AdminOnly, Conflict, NotFound, Transport, Unauthorized};
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{Error, Job, JobFilter, JobId, JobPage, JobStatus, Stats, MAX_PAGE};

/// Jobs per page when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 50;

const LIST_PARAMS: &[&str] = &[
    "status",
    "job_type",
    "entity_type",
    "entity_id",
    "owner",
    "queue",
    "limit",
    "cursor",
];

/// The query of the list endpoint: its filters and page (read by name, see
/// [`LIST_PARAMS`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string, which is read by name
pub(crate) struct ListQuery {
    /// only jobs in this status
    status: Option<JobStatus>,
    /// only jobs of this type
    job_type: Option<String>,
    /// only jobs of this queue
    queue: Option<String>,
    /// only jobs on this kind of entity
    entity_type: Option<String>,
    /// only jobs on this entity id
    entity_id: Option<String>,
    /// only jobs of this user
    owner: Option<String>,
    /// jobs per page
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// next_cursor of the previous page
    #[param(
        pattern = r"^[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    cursor: Option<String>,
}

/// List jobs, newest first (admin)
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs",
    operation_id = "listJobs",
    security(("bearerAuth" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        Transport, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    req.only_params(LIST_PARAMS)?;
    let status = match req.param("status")? {
        Some(s) => Some(
            s.parse::<JobStatus>()
                .map_err(|e| bad_query(&e.to_string()))?,
        ),
        None => None,
    };
    let text =
        |name| -> Result<Option<String>, ApiError> { Ok(req.param(name)?.map(str::to_string)) };
    let filter = JobFilter {
        status,
        job_type: text("job_type")?,
        queue: text("queue")?,
        entity_type: text("entity_type")?,
        entity_id: text("entity_id")?,
        owner: text("owner")?,
    };
    let limit = parse_limit(req.param("limit")?, DEFAULT_PAGE, MAX_PAGE)?;
    let page = ctx
        .queue
        .list(&filter, limit, req.param("cursor")?)
        .map_err(|e| match e {
            Error::Invalid { .. } => bad_query(&e.to_string()),
            other => ApiError::from(other),
        })?;
    Response::json(200, &page)
}

/// Counts by status and type (admin)
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs/stats",
    operation_id = "jobStats",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The stats", body = Stats),
        Transport, Unauthorized, AdminOnly,
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
        Transport, Unauthorized, AdminOnly, NotFound, Conflict,
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
        Transport, Unauthorized, AdminOnly, NotFound, Conflict,
    )
)]
pub(crate) fn cancel(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.cancel(parse_id(id)?)?;
    Response::json(200, &job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::IntoParams;

    #[test]
    fn the_documented_query_is_the_one_read() {
        let mut documented: Vec<String> = ListQuery::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        documented.sort();
        let mut read = LIST_PARAMS.to_vec();
        read.sort();
        assert_eq!(documented, read);
    }
}
