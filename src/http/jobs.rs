//! The user endpoints: enqueue a job as the token's user, and read one of
//! one's own jobs (another user's job answers exactly like a missing one).

use serde_json::Value;

use crate::http::auth;
use crate::http::errors::ApiError;
use crate::http::request::{cut, ApiRequest, Reply, RouteResult};
use crate::http::routes::Ctx;
use crate::{JobId, NewJob};

/// `POST /api/v1/jobs`: 201 with the stored job.
pub(crate) fn enqueue(ctx: &Ctx, req: &ApiRequest) -> RouteResult {
    let who = auth::user(ctx, req)?;
    require_json(req)?;
    let mut new = parse_new_job(&req.body)?;
    check_declared(ctx, &new.job_type)?;
    new.owner = Some(who.user);
    let job = ctx.queue.enqueue(new)?;
    Ok(Reply {
        status: 201,
        body: to_json(&job)?,
    })
}

/// `GET /api/v1/jobs/{id}`: the job, when the caller owns it or is an admin.
pub(crate) fn get(ctx: &Ctx, req: &ApiRequest, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    let id = parse_id(id)?;
    let job = ctx.queue.get(id)?;
    if !who.admin && job.owner.as_deref() != Some(who.user.as_str()) {
        return Err(ApiError::from(crate::Error::NotFound { id }));
    }
    Ok(Reply::ok(to_json(&job)?))
}

/// A job id from a path segment.
///
/// # Errors
/// 400 when it is not a UUID.
pub(crate) fn parse_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("not a job id: {:?}", cut(text))))
}

/// Serializes a response body.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| {
        log::error!("could not serialize a response: {e}");
        ApiError::internal()
    })
}

fn require_json(req: &ApiRequest) -> Result<(), ApiError> {
    let media = req
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    match media {
        Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::new(
            415,
            "unsupported_media_type",
            "the body must be sent as Content-Type: application/json",
        )),
    }
}

/// Malformed JSON is 400; JSON of the wrong shape is 422.
fn parse_new_job(body: &[u8]) -> Result<NewJob, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    let Some(fields) = value.as_object() else {
        return Err(ApiError::unprocessable("the body must be a JSON object"));
    };
    if fields.contains_key("owner") {
        return Err(ApiError::unprocessable(
            "owner is not accepted: a job's owner is the token's user",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::unprocessable(format!("invalid job: {e}")))
}

fn check_declared(ctx: &Ctx, job_type: &str) -> Result<(), ApiError> {
    if ctx.job_types.iter().any(|t| t == job_type) {
        return Ok(());
    }
    let declared = if ctx.job_types.is_empty() {
        "none are declared".to_string()
    } else {
        format!("declared types: {}", ctx.job_types.join(", "))
    };
    Err(ApiError::unprocessable(format!(
        "unknown job_type {:?}; {declared}",
        cut(job_type)
    )))
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
    }

    #[test]
    fn only_json_content_types_are_accepted() {
        let mut req = ApiRequest::default();
        assert_eq!(require_json(&req).unwrap_err().status, 415);
        req.content_type = Some("text/plain".into());
        assert_eq!(require_json(&req).unwrap_err().status, 415);
        req.content_type = Some("Application/JSON; charset=utf-8".into());
        assert!(require_json(&req).is_ok());
    }
}
