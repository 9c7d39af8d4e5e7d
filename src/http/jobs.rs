//! The user endpoints: enqueue a job as the token's user, and read one of
//! one's own jobs (another user's job answers exactly like a missing one).

use crate::http::auth;
use crate::http::common::{list_page, parse_id, require_json};
use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::NewJob;

/// `POST /api/v1/jobs`: 201 with the stored job; 200 with the job holding the
/// unique key and `"duplicate": true` when the request is a duplicate.
pub(crate) fn enqueue(ctx: &Ctx, req: &Request) -> RouteResult {
    let who = auth::user(ctx, req)?;
    require_json(req)?;
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

/// `GET /api/v1/jobs/{id}`: the job, when the caller owns it or is an admin.
pub(crate) fn get(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    let id = parse_id(id)?;
    let job = ctx.queue.get(id)?;
    if !who.admin && job.owner.as_deref() != Some(who.user.as_str()) {
        return Err(ApiError::from(crate::Error::NotFound { id }));
    }
    Response::json(200, &job)
}

/// The job request, by [`NewJob::from_json`]'s rules: malformed JSON is 400,
/// JSON that is not a job request 422. `owner` is refused: the token decides it.
fn parse_new_job(body: &[u8]) -> Result<NewJob, ApiError> {
    let job = NewJob::from_json(body)?;
    if job.owner.is_some() {
        return Err(ApiError::unprocessable(
            "owner is not accepted: a job's owner is the token's user",
        ));
    }
    Ok(job)
}

/// `GET /api/v1/jobs`: the token user's own jobs, with the admin list's filters
/// and cursor: `{jobs, next_cursor, total}`.
pub(crate) fn list_own(ctx: &Ctx, req: &Request) -> RouteResult {
    let who = auth::user(ctx, req)?;
    list_page(ctx, req, Some(who.user))
}

/// `DELETE /api/v1/jobs/{id}`: cancels one's own job (404 for someone else's,
/// as for GET); the job after the change.
pub(crate) fn cancel_own(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    let id = parse_id(id)?;
    let job = ctx.queue.get(id)?;
    if !who.admin && job.owner.as_deref() != Some(who.user.as_str()) {
        return Err(ApiError::from(crate::Error::NotFound { id }));
    }
    Response::json(200, &ctx.queue.cancel(id)?)
}

/// `POST /api/v1/jobs/{id}/progress` with `{"lease_token": N, "fraction":
/// 0.0-1.0, "message": "..."}`: a progress report for the running attempt
/// whose fencing token is `lease_token` (a webhook's target gets it in the
/// `Jobq-Lease-Token` header), by the job's owner or an admin. 409 when that
/// attempt no longer holds the lease.
pub(crate) fn progress(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    require_json(req)?;
    let id = parse_id(id)?;
    let job = ctx.queue.get(id)?;
    if !who.admin && job.owner.as_deref() != Some(who.user.as_str()) {
        return Err(ApiError::from(crate::Error::NotFound { id }));
    }
    let body: serde_json::Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    let token = body["lease_token"]
        .as_i64()
        .ok_or_else(|| ApiError::unprocessable("invalid lease_token: expected an integer"))?;
    let fraction = body["fraction"]
        .as_f64()
        .filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| {
            ApiError::unprocessable("invalid fraction: expected a number from 0 to 1")
        })?;
    let message = match &body["message"] {
        serde_json::Value::Null => "",
        serde_json::Value::String(s) => s.as_str(),
        _ => {
            return Err(ApiError::unprocessable(
                "invalid message: expected a string",
            ))
        }
    };
    ctx.queue.progress(id, token, fraction, message)?;
    Response::json(200, &ctx.queue.get(id)?)
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
