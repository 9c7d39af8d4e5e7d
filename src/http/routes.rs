//! The route table: which path and method go to which handler, 404 for unknown
//! paths, 405 with `Allow` for a known path and the wrong method.

use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::http::{
    admin, bulk, dashboard, jobs, metrics, openapi, ops, progress, queues, schedules,
};

/// The paths the API answers; `{id}` segments are carried along.
enum Path<'a> {
    Jobs,
    Job(&'a str),
    JobProgress(&'a str),
    Cron,
    AdminJobs,
    AdminStats,
    AdminJob(&'a str),
    AdminRetry(&'a str),
    /// `POST /api/v1/admin/jobs/retry` or `/cancel`: every job matching a filter.
    AdminBulk(&'a str),
    AdminQueues,
    AdminQueue(&'a str),
    AdminQueuePause(&'a str),
    AdminQueueResume(&'a str),
    AdminSchedules,
    AdminScheduleRun(&'a str),
    Health,
    OpenApi,
    Metrics,
    /// Below `/dashboard`: the rest of the path.
    Dashboard(&'a str),
}

impl<'a> Path<'a> {
    fn parse(path: &'a str) -> Option<Path<'a>> {
        if path == "/healthz" {
            return Some(Path::Health);
        }
        if path == "/metrics" {
            return Some(Path::Metrics);
        }
        if let Some(rest) = path.strip_prefix("/dashboard") {
            if rest.is_empty() || rest.starts_with('/') {
                return Some(Path::Dashboard(rest));
            }
        }
        let rest = path.strip_prefix("/api/v1/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        let p = match segments.as_slice() {
            ["jobs"] => Path::Jobs,
            ["jobs", id] if !id.is_empty() => Path::Job(id),
            ["jobs", id, "progress"] if !id.is_empty() => Path::JobProgress(id),
            ["cron", "jobs"] => Path::Cron,
            ["openapi.json"] => Path::OpenApi,
            ["admin", "jobs"] => Path::AdminJobs,
            ["admin", "jobs", "stats"] => Path::AdminStats,
            ["admin", "jobs", action @ ("retry" | "cancel")] => Path::AdminBulk(action),
            ["admin", "jobs", id] if !id.is_empty() => Path::AdminJob(id),
            ["admin", "jobs", id, "retry"] if !id.is_empty() => Path::AdminRetry(id),
            ["admin", "queues"] => Path::AdminQueues,
            ["admin", "queues", q] if !q.is_empty() => Path::AdminQueue(q),
            ["admin", "queues", q, "pause"] if !q.is_empty() => Path::AdminQueuePause(q),
            ["admin", "queues", q, "resume"] if !q.is_empty() => Path::AdminQueueResume(q),
            ["admin", "schedules"] => Path::AdminSchedules,
            ["admin", "schedules", n, "run"] if !n.is_empty() => Path::AdminScheduleRun(n),
            _ => return None,
        };
        Some(p)
    }

    fn allow(&self) -> &'static [&'static str] {
        match self {
            Path::Jobs => &["GET", "POST"],
            Path::Job(_) => &["GET", "DELETE"],
            Path::JobProgress(_) => &["POST"],
            Path::Cron => &["GET", "POST"],
            Path::AdminJob(_) => &["DELETE"],
            Path::AdminRetry(_) | Path::AdminBulk(_) => &["POST"],
            Path::AdminQueue(_) => &["PATCH"],
            Path::AdminQueuePause(_) | Path::AdminQueueResume(_) => &["POST"],
            Path::AdminScheduleRun(_) => &["POST"],
            _ => &["GET"],
        }
    }

    /// Whether the endpoint reads query parameters (and names the ones it
    /// takes itself): the lists, the cron endpoint, and the endpoints outside
    /// `/api/v1` (health checks and scrapers may add their own). Every other
    /// refuses any (400).
    fn takes_query(&self, method: &str) -> bool {
        match self {
            Path::Jobs => method == "GET",
            Path::AdminJobs | Path::Cron | Path::Health | Path::Metrics => true,
            Path::Dashboard(_) => true,
            _ => false,
        }
    }

    /// The route's template, for the request counter (never an id).
    fn template(&self) -> &'static str {
        match self {
            Path::Jobs => "/api/v1/jobs",
            Path::Job(_) => "/api/v1/jobs/{id}",
            Path::JobProgress(_) => "/api/v1/jobs/{id}/progress",
            Path::Cron => "/api/v1/cron/jobs",
            Path::AdminJobs => "/api/v1/admin/jobs",
            Path::AdminStats => "/api/v1/admin/jobs/stats",
            Path::AdminJob(_) => "/api/v1/admin/jobs/{id}",
            Path::AdminRetry(_) => "/api/v1/admin/jobs/{id}/retry",
            Path::AdminBulk("retry") => "/api/v1/admin/jobs/retry",
            Path::AdminBulk(_) => "/api/v1/admin/jobs/cancel",
            Path::AdminQueues => "/api/v1/admin/queues",
            Path::AdminQueue(_) => "/api/v1/admin/queues/{name}",
            Path::AdminQueuePause(_) => "/api/v1/admin/queues/{name}/pause",
            Path::AdminQueueResume(_) => "/api/v1/admin/queues/{name}/resume",
            Path::AdminSchedules => "/api/v1/admin/schedules",
            Path::AdminScheduleRun(_) => "/api/v1/admin/schedules/{name}/run",
            Path::Health => "/healthz",
            Path::OpenApi => "/api/v1/openapi.json",
            Path::Metrics => "/metrics",
            Path::Dashboard(_) => "/dashboard",
        }
    }
}

/// The `route` label of a request refused before it was read whole (its
/// path may not even have been read): a malformed or oversize head or body,
/// a client too slow, or a server with every connection taken.
pub(crate) const UNREAD: &str = "unread";

/// Answers one request (an API error is answered as its JSON body) and
/// counts it by route and status.
pub(crate) fn answer(ctx: &Ctx, req: &Request) -> Response {
    let path = Path::parse(&req.path);
    let (route, response) = match path {
        Some(Path::Dashboard(rest)) => dashboard::answer(ctx, req, rest),
        Some(p) => (
            p.template(),
            api(ctx, req, p).unwrap_or_else(Response::from),
        ),
        None => (
            "unknown",
            Response::from(ApiError::not_found("no such endpoint")),
        ),
    };
    ctx.queue.metrics().request(route, response.status);
    response
}

fn api(ctx: &Ctx, req: &Request, path: Path<'_>) -> RouteResult {
    // HEAD is GET without the body (RFC 9110 §9.3.2): answered as GET; the
    // connection leaves the body out.
    let as_get;
    let req = if req.method == "HEAD" && path.allow().contains(&"GET") {
        as_get = Request {
            method: "GET".into(),
            ..req.clone()
        };
        &as_get
    } else {
        req
    };
    if !path.allow().contains(&req.method.as_str()) {
        return Err(ApiError::method_not_allowed(path.allow()));
    }
    if !path.takes_query(&req.method) {
        // A typo in a parameter must not pass unnoticed (the lists and the
        // cron endpoint name theirs).
        req.only_params(&[])?;
    }
    match path {
        Path::Jobs if req.method == "GET" => jobs::list_own(ctx, req),
        Path::Jobs => jobs::enqueue(ctx, req),
        Path::Job(id) if req.method == "DELETE" => jobs::cancel_own(ctx, req, id),
        Path::Job(id) => jobs::get(ctx, req, id),
        Path::JobProgress(id) => progress::progress(ctx, req, id),
        Path::Cron if req.method == "GET" => ops::cron_get(ctx, req),
        Path::Cron => ops::cron_post(ctx, req),
        Path::Health => ops::health(ctx, req),
        Path::OpenApi => openapi::serve(ctx, req),
        Path::AdminJobs => admin::list(ctx, req),
        Path::AdminStats => admin::stats(ctx, req),
        Path::AdminJob(id) => admin::cancel(ctx, req, id),
        Path::AdminRetry(id) => admin::retry(ctx, req, id),
        Path::AdminBulk("retry") => bulk::retry(ctx, req),
        Path::AdminBulk(_) => bulk::cancel(ctx, req),
        Path::Metrics => metrics::metrics(ctx, req),
        Path::Dashboard(_) => Err(ApiError::not_found("no such endpoint")),
        Path::AdminQueues => queues::list(ctx, req),
        Path::AdminQueue(q) => queues::set(ctx, req, q),
        Path::AdminQueuePause(q) => queues::pause(ctx, req, q),
        Path::AdminQueueResume(q) => queues::resume(ctx, req, q),
        Path::AdminSchedules => schedules::list(ctx, req),
        Path::AdminScheduleRun(n) => schedules::run(ctx, req, n),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::IntoResponses;

    use super::*;
    use crate::http::error_responses::{NoQuery, WrongMethod};

    /// The description of the one answer of a shared set.
    fn description<T: IntoResponses>() -> String {
        let answers = serde_json::to_value(T::responses()).unwrap();
        let (_, answer) = answers.as_object().unwrap().iter().next().unwrap();
        answer["description"].as_str().unwrap().to_string()
    }

    /// Each documented operation: its path (with an id or a name in place of
    /// `{id}` and `{name}`), method (upper case) and operation.
    fn operations() -> Vec<(String, String, &'static Value)> {
        let paths = openapi::openapi_document()["paths"].as_object().unwrap();
        let mut out = Vec::new();
        for (template, item) in paths {
            let path = template
                .replace("{id}", "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01")
                .replace("{name}", "q");
            for (method, operation) in item.as_object().unwrap() {
                out.push((path.clone(), method.to_uppercase(), operation));
            }
        }
        out
    }

    /// The route of `path`.
    fn route(path: &str) -> Path<'_> {
        Path::parse(path).unwrap_or_else(|| panic!("{path} is not routed"))
    }

    #[test]
    fn an_operation_that_refuses_any_query_documents_its_400_and_no_query_parameter() {
        // The rule, from the router: where `takes_query` is false, any query
        // parameter is answered 400 bad_query, so the operation lists the
        // shared NoQuery 400 and no query parameter; where it is true, the
        // operation does not claim to take none.
        let no_query = description::<NoQuery>();
        for (path, method, operation) in operations() {
            let at = format!("{method} {path}");
            let listed = operation["responses"]["400"]["description"].as_str();
            let query_params = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .count();
            if route(&path).takes_query(&method) {
                assert_ne!(listed, Some(no_query.as_str()), "{at} reads its query");
                continue;
            }
            let refused = Request::new(&method, &format!("{path}?x=1"))
                .only_params(&[])
                .unwrap_err();
            assert!(no_query.contains(refused.code), "{no_query}");
            assert_eq!(listed, Some(no_query.as_str()), "{at}: name NoQuery");
            assert_eq!(query_params, 0, "{at} refuses any query parameter");
        }
    }

    #[test]
    fn every_operation_documents_the_405_of_its_path() {
        // The rule: every path answers a method it does not serve with 405
        // and the headers `method_not_allowed` sends (Allow); OpenAPI has no
        // place for answers to methods a path does not list, so each of the
        // path's operations lists the shared WrongMethod 405, its headers
        // required.
        let wrong_method = description::<WrongMethod>();
        for (path, method, operation) in operations() {
            let at = format!("{method} {path}");
            let refused = ApiError::method_not_allowed(route(&path).allow());
            assert!(wrong_method.contains(refused.code), "{wrong_method}");
            let listed = &operation["responses"][refused.status.to_string()];
            assert_eq!(listed["description"], wrong_method.as_str(), "{at}");
            for (name, _) in &refused.headers {
                assert_eq!(listed["headers"][name]["required"], true, "{at}: {name}");
            }
        }
    }

    #[test]
    fn every_documented_path_is_routed_with_exactly_its_documented_methods() {
        let paths = openapi::openapi_document()["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 19, "a new path: document it (see openapi.rs)");
        for (template, item) in paths {
            let path = template.replace("{id}", "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01");
            let route = Path::parse(&path).unwrap_or_else(|| panic!("{template} is not routed"));
            let methods = item.as_object().unwrap().keys();
            let mut documented: Vec<String> = methods.map(|m| m.to_uppercase()).collect();
            documented.sort();
            let mut routed = route.allow().to_vec();
            routed.sort();
            assert_eq!(documented, routed, "{template}");
        }
    }
}
