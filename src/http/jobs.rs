//! The user endpoints: enqueue a job as the token's user; read, list and
//! cancel one's own jobs (another user's job answers exactly like a missing
//! one; admins reach every job by id).

use crate::http::auth;
use crate::http::body::require_json_object;
use crate::http::common::{list_page, own_job, parse_id, DuplicateJob, OwnListQuery};
use crate::http::context::Ctx;
use crate::http::error_responses::{
    BadRequest, Conflict, NoQuery, NotFound, Transport, Unauthorized, WrongMethod,
};
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{Job, JobId, JobPage, NewJob};

/// Enqueue a job owned by the token's user
///
/// A job with a uniqueness rule whose key a job holds is not inserted: the
/// answer is that job with `"duplicate": true` (200), or 409 when another
/// user's job holds the key.
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    operation_id = "enqueueJob",
    security(("bearerAuth" = [])),
    request_body(content = NewJob, content_type = "application/json"),
    responses(
        (status = 201, description = "The stored job", body = Job, links(
            ("GetJob" = (operation_id = "getJob", parameters(("id" = "$response.body#/id")))),
            ("RetryJob" = (operation_id = "retryJob", parameters(("id" = "$response.body#/id")))),
            ("CancelJob" = (operation_id = "cancelJob", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 200, body = DuplicateJob,
            description = "A duplicate: the job holding the request's unique key, with \"duplicate\": true (nothing was inserted)"),
        (status = 403, body = ErrorBody,
            description = "A built-in job type (jobq.*) enqueued with a token that is not an admin's"),
        (status = 409, body = ErrorBody,
            description = "Another user's job holds the request's unique key"),
        (status = 415, body = ErrorBody,
            description = "The body is not sent as application/json"),
        (status = 422, body = ErrorBody,
            description = "Valid JSON that fails validation (not an object, unknown job type, bad priority, max_attempts < 1, ...)"),
        NoQuery, Transport, WrongMethod, Unauthorized,
    )
)]
pub(crate) fn enqueue(ctx: &Ctx, req: &Request) -> RouteResult {
    let who = auth::user(ctx, req)?;
    require_json_object(req)?;
    let mut new = parse_new_job(&req.body)?;
    if new.job_type.starts_with("jobq.") && !who.admin {
        let msg = format!(
            "job type {} is built in: only an admin may enqueue it",
            new.job_type
        );
        return Err(ApiError::new(403, "forbidden", msg));
    }
    new.owner = Some(who.user.clone());
    let out = ctx.queue.enqueue(new)?;
    if out.duplicate && !who.admin && out.job.owner.as_deref() != Some(who.user.as_str()) {
        // Another user's job holds the key: say so without showing it.
        return Err(ApiError::new(
            409,
            "conflict",
            "another user's job holds this unique key",
        ));
    }
    Response::json(if out.duplicate { 200 } else { 201 }, &out)
}

/// Read one of your jobs (admins: any job)
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    operation_id = "getJob",
    security(("bearerAuth" = [])),
    params(("id" = inline(JobId), Path, description = "the job id (UUID)")),
    responses(
        (status = 200, description = "The job", body = Job),
        NoQuery, Transport, WrongMethod, Unauthorized, NotFound,
    )
)]
pub(crate) fn get(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    Response::json(200, &own_job(ctx, &who, parse_id(id)?)?)
}

/// The job request, by [`NewJob::from_json`]'s rules: malformed JSON is 400,
/// JSON that is not a job request 422. `owner` is refused: the token decides it.
fn parse_new_job(body: &[u8]) -> Result<NewJob, ApiError> {
    let job = NewJob::from_json(body).map_err(|e| match e {
        // The fields an unknown one is compared with, less `owner`, which
        // is refused here.
        crate::Error::Invalid {
            field: "field",
            reason,
        } => crate::Error::Invalid {
            field: "field",
            reason: reason.replace(", owner,", ","),
        },
        other => other,
    })?;
    if job.owner.is_some() {
        return Err(ApiError::unprocessable(
            "owner is not accepted: a job's owner is the token's user",
        ));
    }
    Ok(job)
}

/// List your own jobs, newest first
///
/// The admin list's filters and cursor, over the token user's jobs only.
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    operation_id = "listOwnJobs",
    security(("bearerAuth" = [])),
    params(OwnListQuery),
    responses(
        (status = 200, description = "A page of your jobs", body = JobPage),
        BadRequest, Transport, WrongMethod, Unauthorized,
    )
)]
pub(crate) fn list_own(ctx: &Ctx, req: &Request) -> RouteResult {
    let who = auth::user(ctx, req)?;
    list_page(ctx, req, Some(who.user))
}

/// Cancel one of your jobs, or request cancellation of a running one (admins: any job)
#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{id}",
    operation_id = "cancelOwnJob",
    security(("bearerAuth" = [])),
    params(("id" = inline(JobId), Path, description = "the job id (UUID)")),
    responses(
        (status = 200, description = "The job after the change", body = Job),
        NoQuery, Transport, WrongMethod, Unauthorized, NotFound, Conflict,
    )
)]
pub(crate) fn cancel_own(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    let job = own_job(ctx, &who, parse_id(id)?)?;
    Response::json(200, &ctx.queue.cancel(job.id)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_400_when_malformed_and_422_when_misshapen() {
        assert_eq!(parse_new_job(b"{").unwrap_err().status, 400);
        assert_eq!(parse_new_job(b"[1]").unwrap_err().status, 422);
        let cases: [&[u8]; 4] = [
            br#"{"job_type":"a","priority":"high"}"#,
            br#"{"job_type":"a","max_attempts":-1}"#,
            br#"{"job_type":"a","owner":"mallory"}"#,
            br#"{"job_type":"a","colour":"red"}"#,
        ];
        for body in cases {
            assert_eq!(parse_new_job(body).unwrap_err().status, 422);
        }
        let ok = parse_new_job(br#"{"job_type":"a","payload":{"x":1},"delay_s":5}"#).unwrap();
        assert_eq!(ok.delay_s, Some(5));
        let whole = parse_new_job(br#"{"job_type":"a","max_attempts":3.0,"priority":-2e0}"#);
        let whole = whole.unwrap();
        assert_eq!((whole.max_attempts, whole.priority), (Some(3), Some(-2)));
        let part = parse_new_job(br#"{"job_type":"a","max_attempts":2.5}"#);
        assert_eq!(part.unwrap_err().status, 422);
        let null = parse_new_job(br#"{"job_type":"a","entity_type":null,"entity_id":"1"}"#);
        assert_eq!(null.unwrap_err().status, 422);
        let far = parse_new_job(br#"{"job_type":"a","delay_s":100000000001}"#);
        assert_eq!(far.unwrap_err().status, 422);
        let twice = parse_new_job(br#"{"job_type":"a","job_type":"b"}"#);
        assert_eq!(twice.unwrap_err().status, 422);
        let null_payload = parse_new_job(br#"{"job_type":"a","payload":null}"#).unwrap();
        assert_eq!(null_payload.payload, serde_json::Value::Null);
    }
}
