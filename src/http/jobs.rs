//! The user endpoints: enqueue a job as the token's user, and read one of
//! one's own jobs (another user's job answers exactly like a missing one).

use serde_json::Value;

use crate::http::auth;
use crate::http::common::{parse_id, require_json};
use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::{cut, Request};
use crate::http::response::{Response, RouteResult};
use crate::NewJob;

/// The longest `delay_s` accepted, in seconds (about 3,000 years).
pub(crate) const MAX_DELAY_S: u64 = 100_000_000_000;

/// `POST /api/v1/jobs`: 201 with the stored job.
pub(crate) fn enqueue(ctx: &Ctx, req: &Request) -> RouteResult {
    let who = auth::user(ctx, req)?;
    require_json(req)?;
    let mut new = parse_new_job(&req.body)?;
    check_declared(ctx, &new.job_type)?;
    if new.job_type.starts_with("jobq.") && !who.admin {
        let msg = format!(
            "job type {} is built in: only an admin may enqueue it",
            new.job_type
        );
        return Err(ApiError::new(403, "forbidden", msg));
    }
    if let Some(defaults) = &ctx.job_defaults {
        defaults.apply(&mut new);
    }
    new.owner = Some(who.user);
    let job = ctx.queue.enqueue(new)?;
    Response::json(201, &job)
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

/// Malformed JSON is 400; JSON of the wrong shape is 422.
fn parse_new_job(body: &[u8]) -> Result<NewJob, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    let mut value = value;
    let Some(fields) = value.as_object_mut() else {
        return Err(ApiError::unprocessable("the body must be a JSON object"));
    };
    for key in ["priority", "max_attempts", "delay_s"] {
        if let Some(v) = fields.get_mut(key) {
            whole_number(v);
        }
    }
    if let Some((key, _)) = fields.iter().find(|(k, v)| v.is_null() && *k != "payload") {
        return Err(ApiError::unprocessable(format!(
            "{} must not be null: omit it for the default",
            cut(key)
        )));
    }
    if fields.get("delay_s").and_then(Value::as_u64) > Some(MAX_DELAY_S) {
        return Err(ApiError::unprocessable(format!(
            "delay_s must be at most {MAX_DELAY_S}"
        )));
    }
    if fields.contains_key("owner") {
        return Err(ApiError::unprocessable(
            "owner is not accepted: a job's owner is the token's user",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::unprocessable(format!("invalid job: {e}")))
}

/// JSON has one number type: `3.0` is the whole number 3 (JSON Schema agrees).
/// Turns such a float into an integer so integer fields accept it.
fn whole_number(v: &mut Value) {
    let Some(f) = v.as_f64().filter(|_| v.is_f64()) else {
        return;
    };
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        let n = f as i64;
        *v = Value::from(n);
    }
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
        let whole = parse_new_job(br#"{"job_type":"a","max_attempts":3.0,"priority":-2e0}"#);
        let whole = whole.unwrap();
        assert_eq!((whole.max_attempts, whole.priority), (Some(3), Some(-2)));
        let part = parse_new_job(br#"{"job_type":"a","max_attempts":2.5}"#);
        assert_eq!(part.unwrap_err().status, 422);
        let null = parse_new_job(br#"{"job_type":"a","entity_type":null,"entity_id":"1"}"#);
        assert_eq!(null.unwrap_err().status, 422);
        let far = parse_new_job(br#"{"job_type":"a","delay_s":100000000001}"#);
        assert_eq!(far.unwrap_err().status, 422);
        let null_payload = parse_new_job(br#"{"job_type":"a","payload":null}"#).unwrap();
        assert_eq!(null_payload.payload, Value::Null);
    }
}
