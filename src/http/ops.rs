//! Operations endpoints: cron-driven processing and health. (The OpenAPI
//! document is served by `openapi.rs`.)

use serde::Serialize;

use crate::http::auth;
use crate::http::common::parse_limit;
use crate::http::context::Ctx;
use crate::http::error_responses::{BadRequest, NotFound, Transport, Unauthorized, WrongMethod};
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::RunSummary;

/// Jobs one cron call runs when `limit` is not given.
pub(crate) const DEFAULT_CRON_LIMIT: usize = 50;
/// The most jobs one cron call may run.
pub(crate) const MAX_CRON_LIMIT: usize = 1000;

/// The query of the cron endpoint (`secret` is a security scheme).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string, which is read by name
pub(crate) struct CronQuery {
    /// the most jobs to run
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<u32>,
}

/// Run due jobs now with the server's handlers
///
/// Needs the cron secret (env JOBQ_CRON_SECRET or the config) as a bearer token
/// or the secret query parameter; answers 404 when none is configured. Safe
/// while workers run and when calls overlap.
#[utoipa::path(
    get,
    path = "/api/v1/cron/jobs",
    operation_id = "runDueJobsGet",
    params(CronQuery),
    security(("cronSecret" = []), ("cronSecretQuery" = [])),
    responses(
        (status = 200, description = "What the call did", body = RunSummary),
        BadRequest, Transport, WrongMethod, Unauthorized, NotFound,
    )
)]
pub(crate) fn cron_get(ctx: &Ctx, req: &Request) -> RouteResult {
    cron(ctx, req)
}

/// Run due jobs now with the server's handlers
///
/// Needs the cron secret (env JOBQ_CRON_SECRET or the config) as a bearer token
/// or the secret query parameter; answers 404 when none is configured. Safe
/// while workers run and when calls overlap.
#[utoipa::path(
    post,
    path = "/api/v1/cron/jobs",
    operation_id = "runDueJobsPost",
    params(CronQuery),
    security(("cronSecret" = []), ("cronSecretQuery" = [])),
    responses(
        (status = 200, description = "What the call did", body = RunSummary),
        BadRequest, Transport, WrongMethod, Unauthorized, NotFound,
    )
)]
pub(crate) fn cron_post(ctx: &Ctx, req: &Request) -> RouteResult {
    cron(ctx, req)
}

/// `GET|POST /api/v1/cron/jobs`: runs due jobs now, on this request thread.
fn cron(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::cron(ctx, req)?;
    req.only_params(&["limit", "secret"])?;
    let limit = parse_limit(req.param("limit")?, DEFAULT_CRON_LIMIT, MAX_CRON_LIMIT)?;
    let summary =
        crate::run_due_until(&ctx.queue, &ctx.registry, limit, &ctx.worker, &ctx.stopping)?;
    Response::json(200, &summary)
}

/// The health answer: `{"status": "ok"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok` (a database that does not answer gets 503).
    status: HealthStatus,
}

/// The one value of the health answer's `status`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    /// The database answers.
    Ok,
}

/// Whether the database answers
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database is busy or unavailable, or too many connections are open", body = ErrorBody),
        WrongMethod,
    )
)]
pub(crate) fn health(ctx: &Ctx, _req: &Request) -> RouteResult {
    match ctx.queue.ping() {
        Ok(()) => Response::json(
            200,
            &Health {
                status: HealthStatus::Ok,
            },
        ),
        Err(e) => {
            log::warn!("health check failed: {e}");
            Err(ApiError::new(
                503,
                "unavailable",
                "the database does not answer",
            ))
        }
    }
}
