//! The admin endpoints of recurring schedules: list, run one now.

use serde::Serialize;

use crate::http::auth;
use crate::http::body::{object, only_known};
use crate::http::common::{decoded_name, DuplicateJob};
use crate::http::context::Ctx;
use crate::http::error_responses::{AdminOnly, NoQuery, Transport, Unauthorized, WrongMethod};
use crate::http::errors::ErrorBody;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{Error, Job, ScheduleInfo};

/// Every schedule: `{"schedules": [...]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ScheduleList {
    /// The schedules, sorted by name.
    schedules: Vec<ScheduleInfo>,
}

/// Every schedule with its next and last fire times (admin)
#[utoipa::path(
    get,
    path = "/api/v1/admin/schedules",
    operation_id = "listSchedules",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The schedules, sorted by name", body = ScheduleList),
        NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    let schedules = ctx.queue.schedules()?;
    Response::json(200, &ScheduleList { schedules })
}

/// Enqueue a schedule's job now (admin)
///
/// Its fire time is now, whatever the cron expression says.
#[utoipa::path(
    post,
    path = "/api/v1/admin/schedules/{name}/run",
    operation_id = "runSchedule",
    security(("bearerAuth" = [])),
    params(("name" = String, Path, pattern = "^[a-z0-9_.:-]{1,64}$", description = "the schedule's name")),
    responses(
        (status = 201, description = "The job enqueued now", body = Job),
        (status = 200, body = DuplicateJob,
            description = "A duplicate: a job for this very fire time exists already (nothing was inserted)"),
        (status = 404, body = ErrorBody, description = "No schedule of this name is declared"),
        (status = 415, body = ErrorBody, description = "A body not sent as application/json (the endpoint takes none)"),
        (status = 422, body = ErrorBody, description = "A body with fields (the endpoint takes none)"),
        NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn run(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    // It takes no body: one with fields is refused, not ignored.
    only_known(&object(req)?)?;
    // A name that is not UTF-8 names no schedule.
    let name = decoded_name(name).ok_or_else(|| Error::UnknownSchedule {
        name: name.chars().take(64).collect(),
    })?;
    let out = ctx.queue.run_schedule(&name)?;
    Response::json(if out.duplicate { 200 } else { 201 }, &out)
}
