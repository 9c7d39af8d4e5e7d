//! The admin endpoints: list with filters and keyset pagination, stats, manual
//! retry and cancel. Every one needs an admin token.

use crate::http::auth;
use crate::http::common::{list_page, parse_id};
use crate::http::context::Ctx;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};

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
