//! Progress reports over HTTP: a running attempt (typically a webhook's target,
//! which gets the attempt's fencing token in the `Jobq-Lease-Token` header)
//! says how far it is.

use serde_json::{Map, Value};

use crate::http::auth;
use crate::http::body::{json_object, require_json};
use crate::http::common::{own_job, parse_id};
use crate::http::context::Ctx;
use crate::http::error_responses::{NoQuery, NotFound, Transport, Unauthorized, WrongMethod};
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{Job, JobId};

/// The body of `POST /api/v1/jobs/{id}/progress` (read by hand, field by field).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the body, which is read by name
pub(crate) struct ProgressReport {
    /// the attempt's fencing token (a webhook's target gets it in the
    /// Jobq-Lease-Token header)
    #[schema(minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)]
    lease_token: i64,
    /// how far the attempt is, from 0 to 1
    #[schema(minimum = 0, maximum = 1)]
    fraction: f64,
    /// what it is doing now; null or absent: nothing said
    message: Option<String>,
}

/// A report read from the body.
#[derive(Debug, PartialEq)]
struct Report {
    lease_token: i64,
    fraction: f64,
    message: String,
}

/// Report progress of a running job (its owner or an admin)
///
/// Stored as the job's `progress` when the attempt with this lease token still
/// holds the lease.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/progress",
    operation_id = "reportProgress",
    security(("bearerAuth" = [])),
    params(("id" = inline(JobId), Path, description = "the job id (UUID)")),
    request_body(content = ProgressReport, content_type = "application/json"),
    responses(
        (status = 200, description = "The job with the report", body = Job),
        (status = 409, body = ErrorBody,
            description = "The attempt with this lease token no longer holds the lease (or the job is not running)"),
        (status = 415, body = ErrorBody, description = "The body is not sent as application/json"),
        (status = 422, body = ErrorBody,
            description = "A body that is not a JSON object, a bad lease_token, fraction or message, or an unknown field"),
        NoQuery, Transport, WrongMethod, Unauthorized, NotFound,
    )
)]
pub(crate) fn progress(ctx: &Ctx, req: &Request, id: &str) -> RouteResult {
    let who = auth::user(ctx, req)?;
    require_json(req)?;
    let id = parse_id(id)?;
    own_job(ctx, &who, id)?;
    let r = read_report(&mut json_object(req)?)?;
    ctx.queue
        .progress(id, r.lease_token, r.fraction, &r.message)?;
    Response::json(200, &ctx.queue.get(id)?)
}

/// The report: an object with `lease_token` (an integer, also written as a
/// whole float), `fraction` (0 to 1) and optionally `message` (a string or
/// null); nothing else.
fn read_report(fields: &mut Map<String, Value>) -> Result<Report, ApiError> {
    let report = Report {
        lease_token: lease_token(fields)?,
        fraction: fraction(fields)?,
        message: message(fields)?,
    };
    match fields.keys().next() {
        Some(k) => Err(ApiError::unprocessable(format!(
            "unknown field {:?}; expected lease_token, fraction, message",
            k.chars().take(64).collect::<String>()
        ))),
        None => Ok(report),
    }
}

fn lease_token(fields: &mut Map<String, Value>) -> Result<i64, ApiError> {
    let Some(token) = fields.remove("lease_token") else {
        return Err(ApiError::unprocessable(
            "missing lease_token: the attempt's lease token (a webhook receives it in the Jobq-Lease-Token header)",
        ));
    };
    token
        .as_number()
        .and_then(crate::new_job::whole)
        .ok_or_else(|| ApiError::unprocessable("invalid lease_token: expected an integer"))
}

fn fraction(fields: &mut Map<String, Value>) -> Result<f64, ApiError> {
    let Some(fraction) = fields.remove("fraction") else {
        return Err(ApiError::unprocessable(
            "missing fraction: how far the job is, a number from 0 to 1",
        ));
    };
    fraction
        .as_f64()
        .filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| ApiError::unprocessable("invalid fraction: expected a number from 0 to 1"))
}

fn message(fields: &mut Map<String, Value>) -> Result<String, ApiError> {
    match fields.remove("message") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::unprocessable(
            "invalid message: expected a string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The endpoint's reading: the body as an object, then the report.
    fn read(body: &[u8]) -> Result<Report, ApiError> {
        let mut req = Request::new("POST", "/");
        req.headers = vec![("Content-Type".into(), "application/json".into())];
        req.body = body.to_vec();
        read_report(&mut json_object(&req)?)
    }

    fn status(body: &str) -> u16 {
        read(body.as_bytes()).unwrap_err().status
    }

    #[test]
    fn a_report_has_a_token_a_fraction_and_maybe_a_message() {
        let r = read(br#"{"lease_token": 3, "fraction": 0.5, "message": "half"}"#);
        let want = Report {
            lease_token: 3,
            fraction: 0.5,
            message: "half".into(),
        };
        assert_eq!(r.unwrap(), want);
        let whole = read(br#"{"lease_token": 3.0, "fraction": 1, "message": null}"#);
        assert_eq!(whole.unwrap().message, "");
        assert_eq!(status("{"), 400);
        for bad in [
            r#"[1]"#,
            r#"{"fraction": 0.5}"#,
            r#"{"lease_token": 1.5, "fraction": 0.5}"#,
            r#"{"lease_token": "1", "fraction": 0.5}"#,
            r#"{"lease_token": 1, "fraction": 1.01}"#,
            r#"{"lease_token": 1, "fraction": -0.1}"#,
            r#"{"lease_token": 1}"#,
            r#"{"lease_token": 1, "fraction": 0.5, "message": 7}"#,
        ] {
            assert_eq!(status(bad), 422, "{bad}");
        }
    }

    #[test]
    fn a_missing_field_is_named_as_missing() {
        for (body, missing) in [
            (r#"{"lease_token": 1}"#, "missing fraction"),
            (r#"{"fraction": 0.5}"#, "missing lease_token"),
        ] {
            let err = read(body.as_bytes()).unwrap_err();
            assert!(err.message.starts_with(missing), "{body}: {}", err.message);
        }
    }

    #[test]
    fn unknown_fields_are_refused_not_ignored() {
        let misspelt = r#"{"lease_token": 1, "fraction": 0.5, "mesage": "lost"}"#;
        assert_eq!(status(misspelt), 422);
    }
}
