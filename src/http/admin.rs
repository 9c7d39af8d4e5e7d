//! The admin endpoints: list with filters and keyset pagination, stats, manual
//! retry and cancel. Every one needs an admin token.

use crate::http::auth;
use crate::http::errors::ApiError;
use crate::http::jobs::{parse_id, to_json};
use crate::http::request::{cut, ApiRequest, Reply, RouteResult};
use crate::http::routes::Ctx;
use crate::{Error, JobFilter, JobStatus, MAX_PAGE};

/// Jobs per page when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 50;

const LIST_PARAMS: &[&str] = &[
    "status",
    "job_type",
    "entity_type",
    "entity_id",
    "owner",
    "limit",
    "cursor",
];

/// `GET /api/v1/admin/jobs`: `{jobs, next_cursor, total}`.
pub(crate) fn list(ctx: &Ctx, req: &ApiRequest) -> RouteResult {
    auth::admin(ctx, req)?;
    req.only_params(LIST_PARAMS)?;
    let status = match req.param("status")? {
        Some(s) => Some(
            s.parse::<JobStatus>()
                .map_err(|e| bad_query(&e.to_string()))?,
        ),
        None => None,
    };
    let text =
        |name| -> Result<Option<String>, ApiError> { Ok(req.param(name)?.map(str::to_string)) };
    let filter = JobFilter {
        status,
        job_type: text("job_type")?,
        entity_type: text("entity_type")?,
        entity_id: text("entity_id")?,
        owner: text("owner")?,
    };
    let limit = parse_limit(req.param("limit")?, DEFAULT_PAGE, MAX_PAGE)?;
    let page = ctx
        .queue
        .list(&filter, limit, req.param("cursor")?)
        .map_err(|e| match e {
            Error::Invalid { .. } => bad_query(&e.to_string()),
            other => ApiError::from(other),
        })?;
    Ok(Reply::ok(to_json(&page)?))
}

/// `GET /api/v1/admin/jobs/stats`: the stats object.
pub(crate) fn stats(ctx: &Ctx, req: &ApiRequest) -> RouteResult {
    auth::admin(ctx, req)?;
    Ok(Reply::ok(to_json(&ctx.queue.stats()?)?))
}

/// `POST /api/v1/admin/jobs/{id}/retry`: the job, pending again.
pub(crate) fn retry(ctx: &Ctx, req: &ApiRequest, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.retry(parse_id(id)?)?;
    Ok(Reply::ok(to_json(&job)?))
}

/// `DELETE /api/v1/admin/jobs/{id}`: the job, cancelled (or with a cancel requested).
pub(crate) fn cancel(ctx: &Ctx, req: &ApiRequest, id: &str) -> RouteResult {
    auth::admin(ctx, req)?;
    let job = ctx.queue.cancel(parse_id(id)?)?;
    Ok(Reply::ok(to_json(&job)?))
}

/// A query-string error (400).
pub(crate) fn bad_query(message: &str) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

/// `limit`: a whole number 1..=`max`; `default` when absent.
///
/// # Errors
/// 400 for anything else.
pub(crate) fn parse_limit(
    text: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad_query(&format!(
            "limit must be a whole number 1-{max}, not {:?}",
            cut(text)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_in_range() {
        assert_eq!(parse_limit(None, 50, 500).unwrap(), 50);
        assert_eq!(parse_limit(Some("500"), 50, 500).unwrap(), 500);
        for bad in ["0", "501", "-1", "ten", ""] {
            assert_eq!(parse_limit(Some(bad), 50, 500).unwrap_err().status, 400);
        }
    }
}
