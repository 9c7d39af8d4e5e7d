//! The admin bulk endpoints: retry or cancel every job matching a filter, in
//! short batches, answering how many changed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoResponses, ToSchema};

use crate::http::auth;
use crate::http::body::json_fields;
use crate::http::context::Ctx;
use crate::http::error_responses::{AdminOnly, NoQuery, Transport, Unauthorized, WrongMethod};
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::request::Request;
use crate::http::response::{Response, RouteResult};
use crate::{BulkAction, JobFilter, JobStatus};

/// A status a bulk retry moves: `failed` or `cancelled`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RetryStatus {
    /// Failed jobs.
    Failed,
    /// Cancelled jobs.
    Cancelled,
}

/// A status a bulk cancel moves: `pending` or `in_progress`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CancelStatus {
    /// Pending jobs.
    Pending,
    /// Running jobs (asked to stop).
    InProgress,
}

impl From<RetryStatus> for JobStatus {
    fn from(s: RetryStatus) -> JobStatus {
        match s {
            RetryStatus::Failed => JobStatus::Failed,
            RetryStatus::Cancelled => JobStatus::Cancelled,
        }
    }
}

impl From<CancelStatus> for JobStatus {
    fn from(s: CancelStatus) -> JobStatus {
        match s {
            CancelStatus::Pending => JobStatus::Pending,
            CancelStatus::InProgress => JobStatus::InProgress,
        }
    }
}

/// A bulk body: the same filter for both changes, with the statuses each can
/// move (a status the change never moves is refused, 422, as the CLI refuses
/// it).
macro_rules! bulk_filter {
    ($name:ident, $status:ty, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Every given field must match; an empty object matches every job.
        /// Unknown fields are refused (422), so a typo cannot widen the change.
        #[derive(Debug, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            /// Only jobs in this status.
            status: Option<$status>,
            /// Only jobs of this queue.
            #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
            queue: Option<String>,
            /// Only jobs of this type.
            #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
            job_type: Option<String>,
            /// Only jobs on this kind of entity.
            #[schema(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
            entity_type: Option<String>,
            /// Only jobs on this entity id.
            #[schema(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
            entity_id: Option<String>,
            /// Only jobs of this owner.
            #[schema(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
            owner: Option<String>,
            /// Only jobs enqueued at least this many seconds ago (whole seconds;
            /// as the CLI's `--older-than`).
            /// Read as a JSON number, so `60.0` is 60 as everywhere in the API.
            #[schema(value_type = Option<u64>, minimum = 0, maximum = 100_000_000_000_u64)]
            older_than_s: Option<Value>,
            /// True: change nothing, answer how many jobs would change now
            /// (false or null, like a field left out: change them).
            #[serde(default)]
            dry_run: Option<bool>,
        }

        impl From<$name> for Body {
            fn from(b: $name) -> Body {
                Body {
                    filter: JobFilter {
                        status: b.status.map(JobStatus::from),
                        queue: b.queue,
                        job_type: b.job_type,
                        entity_type: b.entity_type,
                        entity_id: b.entity_id,
                        owner: b.owner,
                    },
                    older_than_s: b.older_than_s,
                    dry_run: b.dry_run.unwrap_or(false),
                }
            }
        }
    };
}

bulk_filter!(RetryFilter, RetryStatus, "Which jobs to retry.");
bulk_filter!(CancelFilter, CancelStatus, "Which jobs to cancel.");

/// Either body, as the change reads it.
struct Body {
    filter: JobFilter,
    older_than_s: Option<Value>,
    dry_run: bool,
}

/// What a bulk change did (or, with `dry_run`, would do).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkCount {
    /// How many jobs were changed (with `dry_run`: would be).
    #[schema(minimum = 0)]
    count: u64,
}

/// The bulk endpoints' own error answers.
#[derive(IntoResponses)]
#[allow(dead_code)] // Describes answers only; `ApiError` makes them.
pub(crate) enum BulkErrors {
    /// The body is not sent as application/json
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// A body that is not a JSON object, a field that is not a filter, a
    /// field given twice, or a bad value (a status the change never
    /// moves, such as completed for a retry; a queue or job type that is not
    /// a valid name); the message names the field
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// Retry every failed or cancelled job matching a filter (admin)
///
/// As the single-job retry for each matching job, 500 per transaction; a job
/// whose retry would make a second live holder of its unique key is skipped;
/// jobs enqueued meanwhile are left alone.
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/retry",
    operation_id = "retryMatchingJobs",
    security(("bearerAuth" = [])),
    request_body(content = RetryFilter, content_type = "application/json"),
    responses(
        (status = 200, description = "How many jobs were retried", body = BulkCount),
        BulkErrors, NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn retry(ctx: &Ctx, req: &Request) -> RouteResult {
    let body: RetryFilter = body(ctx, req)?;
    change(ctx, body.into(), BulkAction::Retry)
}

/// Cancel every pending or running job matching a filter (admin)
///
/// As the single-job cancel for each matching job (a running one gets a
/// cancel request), 500 per transaction; jobs enqueued meanwhile are left
/// alone.
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/cancel",
    operation_id = "cancelMatchingJobs",
    security(("bearerAuth" = [])),
    request_body(content = CancelFilter, content_type = "application/json"),
    responses(
        (status = 200, description = "How many jobs were cancelled or asked to stop", body = BulkCount),
        BulkErrors, NoQuery, Transport, WrongMethod, Unauthorized, AdminOnly,
    )
)]
pub(crate) fn cancel(ctx: &Ctx, req: &Request) -> RouteResult {
    let body: CancelFilter = body(ctx, req)?;
    change(ctx, body.into(), BulkAction::Cancel)
}

/// The change (or its count, dry run) of a read body.
fn change(ctx: &Ctx, body: Body, action: BulkAction) -> RouteResult {
    let older_than = older_than(body.older_than_s.as_ref())?;
    let by = ctx.queue.now().minus(older_than);
    let count = match body.dry_run {
        true => ctx.queue.count_matching(action, &body.filter, by)?,
        false => ctx.queue.change_matching(action, &body.filter, by)?,
    };
    Response::json(200, &BulkCount { count })
}

/// `older_than_s`: whole seconds from 0 to [`crate::MAX_DELAY_S`]; absent or
/// null is 0.
fn older_than(v: Option<&Value>) -> Result<Duration, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Duration::ZERO);
    };
    v.as_number()
        .and_then(crate::new_job::whole)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|s| *s <= crate::MAX_DELAY_S)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "invalid older_than_s: expected whole seconds from 0 to {}",
                crate::MAX_DELAY_S
            ))
        })
}

/// The admin check, then the body: a JSON object (serde alone would also read
/// a positional array of the fields), read as the filter with the job
/// request's rules: a field given twice is refused, a queue or job type must
/// be a valid name, and an error names its field. `null` is a field left out
/// (the OpenAPI document makes every filter nullable).
fn body<T: serde::de::DeserializeOwned>(ctx: &Ctx, req: &Request) -> Result<T, ApiError> {
    auth::admin(ctx, req)?;
    let fields = json_fields(req)?;
    let invalid = |key: &str, why: String| {
        let shown: String = key.chars().take(64).collect();
        ApiError::unprocessable(format!("invalid {shown}: {why}"))
    };
    if let Some(key) = fields.duplicate {
        return Err(invalid(&key, "given more than once".into()));
    }
    for (key, value) in &fields.entries {
        let name = value.as_str();
        match key.as_str() {
            "queue" => name.map_or(Ok(()), |n| {
                crate::queues::validate_queue_name(n).map_err(|e| invalid(key, reason(e)))
            })?,
            "job_type" => name.map_or(Ok(()), |n| {
                crate::new_job::validate_job_type(n).map_err(|e| invalid(key, reason(e)))
            })?,
            _ => {}
        }
    }
    let object = Value::Object(fields.entries.into_iter().collect());
    T::deserialize(&object).map_err(|e| {
        // Name the field that failed: read each alone (unknown fields
        // already name themselves).
        let failing = object.as_object().into_iter().flatten().find(|(k, v)| {
            let one = serde_json::Map::from_iter([((*k).clone(), (*v).clone())]);
            serde_json::from_value::<T>(Value::Object(one)).is_err()
        });
        match failing {
            Some((k, _)) if !e.to_string().starts_with("unknown field") => {
                invalid(k, e.to_string())
            }
            _ => ApiError::unprocessable(e.to_string()),
        }
    })
}

/// The reason of an [`crate::Error::Invalid`] (without its own "invalid FIELD:").
fn reason(e: crate::Error) -> String {
    match e {
        crate::Error::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}
