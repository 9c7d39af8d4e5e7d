//! The admin endpoints of recurring schedules: list, run one now.

use crate::http::auth;
use crate::http::context::Ctx;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};

/// `GET /api/v1/admin/schedules`: `{"schedules": [...]}`.
pub(crate) fn list(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::admin(ctx, req)?;
    Response::json(
        200,
        &serde_json::json!({"schedules": ctx.queue.schedules()?}),
    )
}

/// `POST /api/v1/admin/schedules/{name}/run`: 201 with the job enqueued now.
pub(crate) fn run(ctx: &Ctx, req: &Request, name: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let out = ctx.queue.run_schedule(name)?;
    Response::json(if out.duplicate { 200 } else { 201 }, &out)
}
