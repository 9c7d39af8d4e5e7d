//! Operations endpoints: cron-driven processing, health, and the OpenAPI document.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::http::auth;
use crate::http::common::parse_limit;
use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};

/// Jobs one cron call runs when `limit` is not given.
pub(crate) const DEFAULT_CRON_LIMIT: usize = 50;
/// The most jobs one cron call may run.
pub(crate) const MAX_CRON_LIMIT: usize = 1000;

/// `GET|POST /api/v1/cron/jobs`: runs due jobs now, on this request thread.
pub(crate) fn cron(ctx: &Ctx, req: &Request) -> RouteResult {
    auth::cron(ctx, req)?;
    req.only_params(&["limit", "secret"])?;
    let limit = parse_limit(req.param("limit")?, DEFAULT_CRON_LIMIT, MAX_CRON_LIMIT)?;
    let summary = crate::run_due(&ctx.queue, &ctx.registry, limit, &ctx.worker)?;
    Response::json(200, &summary)
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
pub(crate) fn health(ctx: &Ctx, _req: &Request) -> RouteResult {
    match ctx.queue.ping() {
        Ok(()) => Response::json(200, &json!({"status": "ok"})),
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

/// The OpenAPI 3.1 document of this API.
pub fn openapi_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(include_str!("openapi.json")).unwrap_or_else(|e| {
            log::error!("the built-in OpenAPI document does not parse: {e}");
            Value::Null
        })
    })
}

/// `GET /api/v1/openapi.json`: the document, with the job types this server
/// accepts listed as the `job_type` enum.
pub(crate) fn openapi(ctx: &Ctx, _req: &Request) -> RouteResult {
    let mut doc = openapi_document().clone();
    if !ctx.job_types.is_empty() {
        let field = doc
            .pointer_mut("/components/schemas/NewJob/properties/job_type")
            .and_then(Value::as_object_mut);
        if let Some(field) = field {
            field.insert("enum".into(), json!(ctx.job_types));
        }
    }
    Response::json(200, &doc)
}
