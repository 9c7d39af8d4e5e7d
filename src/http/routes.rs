//! The route table: which path and method go to which handler, 404 for unknown
//! paths, 405 with `Allow` for a known path and the wrong method.

use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::http::{admin, jobs, openapi, ops, progress, queues, schedules};

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
    AdminQueues,
    AdminQueue(&'a str),
    AdminQueuePause(&'a str),
    AdminQueueResume(&'a str),
    AdminSchedules,
    AdminScheduleRun(&'a str),
    Health,
    OpenApi,
}

impl<'a> Path<'a> {
    fn parse(path: &'a str) -> Option<Path<'a>> {
        if path == "/healthz" {
            return Some(Path::Health);
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
            Path::AdminRetry(_) => &["POST"],
            Path::AdminQueue(_) => &["PATCH"],
            Path::AdminQueuePause(_) | Path::AdminQueueResume(_) => &["POST"],
            Path::AdminScheduleRun(_) => &["POST"],
            _ => &["GET"],
        }
    }
}

/// Answers one request; an error is answered as its JSON body.
pub(crate) fn answer(ctx: &Ctx, req: &Request) -> Response {
    route(ctx, req).unwrap_or_else(Response::from)
}

fn route(ctx: &Ctx, req: &Request) -> RouteResult {
    let Some(path) = Path::parse(&req.path) else {
        return Err(ApiError::not_found("no such endpoint"));
    };
    if !path.allow().contains(&req.method.as_str()) {
        return Err(ApiError::method_not_allowed(path.allow()));
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
    use super::*;

    #[test]
    fn every_documented_path_is_routed_with_exactly_its_documented_methods() {
        let paths = openapi::openapi_document()["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 16, "a new path: document it (see openapi.rs)");
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
