//! The OpenAPI 3.1 document of the API, generated (`utoipa`) from the Rust
//! types the endpoints send and accept and from the `#[utoipa::path]`
//! attribute on each endpoint, so it cannot drift from the code. Served at
//! `GET /api/v1/openapi.json`.
//!
//! - A new endpoint: put `#[utoipa::path(...)]` on its handler (method, path,
//!   `operation_id`, `security`, `params`, `request_body`, and `responses`: its
//!   own statuses plus the shared sets of `error_responses.rs`: `WrongMethod`
//!   always, and `NoQuery` when its path refuses any query parameter, else
//!   `BadRequest`), and name the handler in `paths(...)` below.
//! - A new field of a type the API sends or accepts (`Job`, `NewJob`, `Stats`,
//!   ...) appears by itself (`#[derive(utoipa::ToSchema)]`); a nullable field
//!   that is always written needs `#[schema(required = true)]`.
//! - [`finish`] adds the few JSON Schema keywords utoipa's model lacks.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::context::Ctx;
use crate::http::error_responses::{NoQuery, WrongMethod};
use crate::http::errors::ErrorBody;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::http::{admin, bulk, jobs, metrics, ops, progress, queues, schedules};
use crate::JobStatus;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jobq HTTP API",
        version = "1",
        description = "A durable background-job queue in one SQLite file. \
            Every error is {\"error\": {\"code\", \"message\"}}. \
            A method that a path does not list is answered 405 with an Allow header \
            naming the methods it has."
    ),
    paths(
        jobs::enqueue,
        jobs::list_own,
        jobs::get,
        jobs::cancel_own,
        progress::progress,
        ops::cron_get,
        ops::cron_post,
        admin::list,
        admin::stats,
        admin::retry,
        admin::cancel,
        bulk::retry,
        bulk::cancel,
        queues::list,
        queues::set,
        queues::pause,
        queues::resume,
        schedules::list,
        schedules::run,
        ops::health,
        metrics::metrics,
        serve,
    ),
    components(schemas(ErrorBody, JobStatus)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The ways to authenticate that operations name in `security(...)`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let bearer = |what: &str| {
            let http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer);
            SecurityScheme::Http(http.description(Some(what)).build())
        };
        let query = ApiKeyValue::with_description("secret", "the cron secret");
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearerAuth", bearer("a token from `jobq token create`"));
        components.add_security_scheme("cronSecret", bearer("the cron secret"));
        components.add_security_scheme(
            "cronSecretQuery",
            SecurityScheme::ApiKey(ApiKey::Query(query)),
        );
    }
}

/// The OpenAPI 3.1 document of this API (built once).
pub fn openapi_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
            log::error!("the OpenAPI document does not serialize: {e}");
            Value::Null
        });
        finish(&mut doc);
        doc
    })
}

/// This document
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = Object),
        NoQuery, WrongMethod,
    )
)]
pub(crate) fn serve(ctx: &Ctx, _req: &Request) -> RouteResult {
    let mut doc = openapi_document().clone();
    // The job types this server accepts, when only declared ones are.
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

/// Adds what utoipa's model cannot say:
/// - every object the API sends or accepts has exactly its listed fields
///   (`additionalProperties: false`; serde ignores none of the job request's);
/// - a new job gives `run_at` or `delay_s`, not both, and `entity_type` with
///   `entity_id`;
/// - every 401 carries `WWW-Authenticate` and every 405 `Allow` (the header
///   is `required`);
/// - an optional body (`Option<T>` in `request_body`) may be left out, but
///   not sent as `null`.
fn finish(doc: &mut Value) {
    if let Some(schemas) = object_at(doc, "/components/schemas") {
        for schema in schemas.values_mut().filter_map(Value::as_object_mut) {
            if schema.contains_key("properties") {
                schema
                    .entry("additionalProperties")
                    .or_insert(Value::Bool(false));
            }
        }
    }
    if let Some(new_job) = object_at(doc, "/components/schemas/NewJob") {
        new_job.insert("not".into(), json!({"required": ["run_at", "delay_s"]}));
        new_job.insert(
            "dependentRequired".into(),
            json!({"entity_type": ["entity_id"], "entity_id": ["entity_type"]}),
        );
    }
    for operation in operations(doc) {
        for header in [
            "/responses/401/headers/WWW-Authenticate",
            "/responses/405/headers/Allow",
        ] {
            if let Some(h) = object_at(operation, header) {
                h.insert("required".into(), Value::Bool(true));
            }
        }
        let body = operation.pointer_mut("/requestBody/content/application~1json/schema");
        if let Some(schema) = body {
            if let Some(not_null) = without_null(schema) {
                *schema = not_null;
            }
        }
    }
}

/// `X` of a schema `oneOf: [X, {"type": "null"}]`.
fn without_null(schema: &Value) -> Option<Value> {
    let [a, b] = schema["oneOf"].as_array()?.as_slice() else {
        return None;
    };
    let null = json!({"type": "null"});
    match (a == &null, b == &null) {
        (false, true) => Some(a.clone()),
        (true, false) => Some(b.clone()),
        _ => None,
    }
}

/// The JSON object at `pointer`, if there is one.
fn object_at<'a>(doc: &'a mut Value, pointer: &str) -> Option<&'a mut Map<String, Value>> {
    doc.pointer_mut(pointer).and_then(Value::as_object_mut)
}

/// Every operation of every path.
fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    let paths = object_at(doc, "/paths")
        .into_iter()
        .flat_map(|p| p.values_mut());
    paths
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
}
