//! API errors: the `{"error": {"code", "message"}}` body and the status of each
//! [`crate::Error`]. Messages never carry tokens, secrets or internals.

use serde::Serialize;

use crate::error::Error;
use crate::JobStatus;

/// An error answer: status, machine-readable code, human message, and extra
/// headers (`WWW-Authenticate`, `Allow`) or the job's status (a conflict).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
    pub job_status: Option<JobStatus>,
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: a code for programs and a message for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Machine-readable, e.g. `not_found`, `validation_failed`, `conflict`.
    pub code: &'static str,
    /// For people; never carries tokens, secrets or internals.
    pub message: String,
    /// The job's current status (409 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status: Option<JobStatus>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
            job_status: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(401, "unauthorized", message).with_header("WWW-Authenticate", "Bearer")
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(403, "forbidden", "this endpoint needs an admin token")
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    /// 405 with `Allow` listing `allow`, and HEAD beside GET (every GET
    /// path answers HEAD).
    pub fn method_not_allowed(allow: &[&str]) -> ApiError {
        let mut methods: Vec<&str> = Vec::new();
        for m in allow {
            methods.push(m);
            if *m == "GET" {
                methods.push("HEAD");
            }
        }
        ApiError::new(405, "method_not_allowed", "method not allowed on this path")
            .with_header("Allow", methods.join(", "))
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "validation_failed", message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(500, "internal", "internal server error")
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                status: self.job_status,
            },
        }
    }
}

/// Maps a library error: not found 404, conflict 409 (with the job's status),
/// invalid 422, payload too large 413, busy, full or unreachable 503 (with
/// Retry-After), the rest 500 (logged,
/// not shown).
impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match &e {
            Error::NotFound { id } => ApiError::not_found(format!("job {id} not found")),
            Error::UnknownQueue { .. }
            | Error::UnknownSchedule { .. }
            | Error::NoSuchIdPrefix { .. } => ApiError::not_found(e.to_string()),
            Error::Conflict { status, .. } => ApiError {
                job_status: Some(*status),
                ..ApiError::new(409, "conflict", e.to_string())
            },
            Error::LeaseLost { .. } => ApiError::new(409, "conflict", e.to_string()),
            Error::UniqueConflict { .. } | Error::WorkerAlive { .. } => {
                ApiError::new(409, "conflict", e.to_string())
            }
            Error::Invalid { .. } | Error::AmbiguousId { .. } => {
                ApiError::unprocessable(e.to_string())
            }
            Error::MalformedJson { .. } => ApiError::bad_request("malformed_json", e.to_string()),
            Error::PayloadTooLarge { .. } => ApiError::new(413, "payload_too_large", e.to_string()),
            Error::Busy { .. } | Error::DiskFull { .. } | Error::ReadOnly { .. } => {
                log::warn!("request refused: {e}");
                ApiError::new(503, "unavailable", "the database is busy; try again")
                    .with_header("Retry-After", "1")
            }
            Error::Unavailable { .. } => {
                log::warn!("request refused: {e}");
                ApiError::new(
                    503,
                    "unavailable",
                    "the database cannot be reached; try again",
                )
                .with_header("Retry-After", "2")
            }
            _ => {
                log::error!("request failed: {e}");
                ApiError::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobId;
    use serde_json::{json, Value};

    fn body(e: &ApiError) -> Value {
        serde_json::to_value(e.body()).unwrap()
    }

    #[test]
    fn library_errors_map_to_statuses() {
        let id = JobId::new();
        let conflict = ApiError::from(Error::Conflict {
            id,
            status: JobStatus::Pending,
            operation: "retry",
        });
        assert_eq!(conflict.status, 409);
        assert_eq!(body(&conflict)["error"]["status"], "pending");
        assert_eq!(ApiError::from(Error::NotFound { id }).status, 404);
        let invalid = Error::Invalid {
            field: "max_attempts",
            reason: "must be at least 1".into(),
        };
        assert_eq!(ApiError::from(invalid).status, 422);
        let busy = ApiError::from(Error::Busy {
            operation: "enqueue",
        });
        assert_eq!(busy.status, 503);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = Error::Open {
            path: "/secret/place.db".into(),
            reason: "boom".into(),
        };
        let api = ApiError::from(e);
        assert_eq!(api.status, 500);
        assert!(!body(&api).to_string().contains("secret"));
    }

    #[test]
    fn the_body_has_code_and_message() {
        let e = ApiError::method_not_allowed(&["GET", "POST"]);
        assert_eq!(
            body(&e),
            json!({"error": {"code": "method_not_allowed", "message": "method not allowed on this path"}})
        );
        assert_eq!(e.headers, vec![("Allow", "GET, HEAD, POST".to_string())]);
    }
}
