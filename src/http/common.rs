//! Helpers the endpoints share: job ids from paths, the JSON content type,
//! query-string errors and page sizes.

use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::{cut, Request};
use crate::http::response::{Response, RouteResult};
use crate::{Error, JobFilter, JobId, JobStatus, MAX_PAGE};

/// A job id from a path segment.
///
/// # Errors
/// 400 when it is not a UUID.
pub(crate) fn parse_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("not a job id: {:?}", cut(text))))
}

/// Checks that the body is sent as `application/json` (parameters allowed).
///
/// # Errors
/// 415 otherwise.
pub(crate) fn require_json(req: &Request) -> Result<(), ApiError> {
    let media = req
        .header("Content-Type")
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

/// Jobs per page when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 50;

const LIST_PARAMS: &[&str] = &[
    "status",
    "job_type",
    "entity_type",
    "entity_id",
    "owner",
    "queue",
    "limit",
    "cursor",
];

/// A page of jobs by the query's filters (`status`, `job_type`, `queue`,
/// `entity_type`, `entity_id`, `owner`, `limit`, `cursor`): `{jobs,
/// next_cursor, total}`. With `only_owner`, only that user's jobs, whatever
/// the query says.
///
/// # Errors
/// 400 for an unknown or repeated parameter, a bad status, limit or cursor.
pub(crate) fn list_page(ctx: &Ctx, req: &Request, only_owner: Option<String>) -> RouteResult {
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
    let asked_owner = text("owner")?;
    let owner = match only_owner {
        Some(me) if asked_owner.as_ref().is_some_and(|o| *o != me) => {
            return Err(bad_query("owner: only your own jobs are listed here"))
        }
        Some(me) => Some(me),
        None => asked_owner,
    };
    let filter = JobFilter {
        status,
        job_type: text("job_type")?,
        queue: text("queue")?,
        entity_type: text("entity_type")?,
        entity_id: text("entity_id")?,
        owner,
    };
    let limit = parse_limit(req.param("limit")?, DEFAULT_PAGE, MAX_PAGE)?;
    let page = ctx
        .queue
        .list(&filter, limit, req.param("cursor")?)
        .map_err(|e| match e {
            Error::Invalid { .. } => bad_query(&e.to_string()),
            other => ApiError::from(other),
        })?;
    Response::json(200, &page)
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

    #[test]
    fn only_json_content_types_are_accepted() {
        let mut req = Request::new("POST", "/");
        assert_eq!(require_json(&req).unwrap_err().status, 415);
        req.headers = vec![("content-type".into(), "text/plain".into())];
        assert_eq!(require_json(&req).unwrap_err().status, 415);
        req.headers = vec![(
            "Content-Type".into(),
            "Application/JSON; charset=utf-8".into(),
        )];
        assert!(require_json(&req).is_ok());
    }

    #[test]
    fn ids_must_be_uuids() {
        assert_eq!(parse_id("1 OR 1=1").unwrap_err().code, "bad_id");
        assert!(parse_id("0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01").is_ok());
    }
}
