//! `GET /metrics`: the process's metrics as OpenMetrics text, for an admin
//! token or the metrics token. The gauges read from the database are read at
//! most once per [`GAUGE_MAX_AGE`], however often Prometheus scrapes.

use std::sync::Mutex;
use std::time::Duration;

use crate::http::auth;
use crate::http::context::Ctx;
use crate::http::error_responses::{AdminOnly, BadRequest, Transport, Unauthorized, WrongMethod};
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::metrics::CONTENT_TYPE;
use crate::token::secrets_match;
use crate::OverviewQuery;

/// How long the database gauges are reused: 2 s.
pub(crate) const GAUGE_MAX_AGE: Duration = Duration::from_secs(2);

/// One refresh at a time: concurrent scrapes wait for it and reuse it.
static REFRESHING: Mutex<()> = Mutex::new(());

/// Prometheus metrics (an admin token or the metrics token)
///
/// OpenMetrics text: settled attempts by queue, job type and outcome; run and
/// wait time histograms; jobs by queue and status; the oldest ready job's age;
/// running jobs; lease recoveries; paused queues; each schedule's latest fire
/// time; HTTP requests by route and status. Counters are per process; the
/// database gauges are cached for 2 s.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        BadRequest, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn metrics(ctx: &Ctx, req: &Request) -> RouteResult {
    allowed(ctx, req)?;
    let m = ctx.queue.metrics();
    if m.gauges_stale(GAUGE_MAX_AGE) {
        let _one = REFRESHING.lock().unwrap_or_else(|p| p.into_inner());
        if m.gauges_stale(GAUGE_MAX_AGE) {
            let o = ctx
                .queue
                .overview(&OverviewQuery::last_hour(ctx.queue.now(), 0))?;
            m.set_queues(&ctx.queue.queues()?);
            let states = ctx.queue.schedule_states()?;
            m.set_schedules(ctx.queue.catalog().schedules().filter_map(|s| {
                let at = states.get(s.name())?.last_fire_at?;
                Some((s.name(), at))
            }));
            m.set_gauges(&o);
        }
    }
    let body = m.encode().into_bytes();
    Ok(Response::new(200, CONTENT_TYPE, body).with_header("Cache-Control", "no-store"))
}

/// The metrics token, or else a live admin token.
fn allowed(ctx: &Ctx, req: &Request) -> Result<(), ApiError> {
    if let (Some(expected), Some(presented)) = (ctx.metrics_token.as_deref(), auth::bearer(req)) {
        if secrets_match(presented, expected) {
            return Ok(());
        }
    }
    auth::admin(ctx, req).map(drop)
}
