//! Helpers the endpoints share: job ids and names from paths, query-string
//! errors, the job list and its page sizes, and the documented forms they
//! share (the list's query, the duplicate answer). JSON bodies: `body.rs`.

use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::{cut, Request};
use crate::http::response::{Response, RouteResult};
use crate::{ApiToken, Error, Job, JobFilter, JobId, JobStatus, MAX_PAGE};

/// A job id from a path segment.
///
/// # Errors
/// 400 when it is not a UUID.
pub(crate) fn parse_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("not a job id: {:?}", cut(text))))
}

/// Job `id` when `who` owns it or is an admin.
///
/// # Errors
/// 404 for a missing job and, alike, for another user's.
pub(crate) fn own_job(ctx: &Ctx, who: &ApiToken, id: JobId) -> Result<Job, ApiError> {
    let job = ctx.queue.get(id)?;
    if !who.admin && job.owner.as_deref() != Some(who.user.as_str()) {
        return Err(ApiError::from(Error::NotFound { id }));
    }
    Ok(job)
}

/// A `{name}` path segment, percent-decoded (clients send `:` as `%3A`);
/// `None` when the decoded bytes are not UTF-8.
pub(crate) fn decoded_name(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|n| n.into_owned())
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

/// The query parameters of the job lists, read by name (see [`ListQuery`]).
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

/// The query of the job lists: filters and page (documents [`LIST_PARAMS`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string, which is read by name
pub(crate) struct ListQuery {
    /// only jobs in this status
    status: Option<JobStatus>,
    /// only jobs of this type
    #[param(pattern = "^[a-z0-9_.:-]{1,64}$")]
    job_type: Option<String>,
    /// only jobs of this queue
    #[param(pattern = "^[a-z0-9_.:-]{1,64}$")]
    queue: Option<String>,
    /// only jobs on this kind of entity
    #[param(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
    entity_type: Option<String>,
    /// only jobs on this entity id
    #[param(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
    entity_id: Option<String>,
    /// only jobs of this user
    #[param(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
    owner: Option<String>,
    /// jobs per page
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// next_cursor of the previous page
    #[param(
        pattern = r"^[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    cursor: Option<String>,
}

/// The query of `GET /api/v1/jobs`: the filters of [`ListQuery`] but `owner`
/// (the token's user decides it; `owner` naming yourself is accepted too).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string, which is read by name
pub(crate) struct OwnListQuery {
    /// only jobs in this status
    status: Option<JobStatus>,
    /// only jobs of this type
    #[param(pattern = "^[a-z0-9_.:-]{1,64}$")]
    job_type: Option<String>,
    /// only jobs of this queue
    #[param(pattern = "^[a-z0-9_.:-]{1,64}$")]
    queue: Option<String>,
    /// only jobs on this kind of entity
    #[param(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
    entity_type: Option<String>,
    /// only jobs on this entity id
    #[param(pattern = r"^[^\x00]*$", min_length = 1, max_length = 255)]
    entity_id: Option<String>,
    /// jobs per page
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// next_cursor of the previous page
    #[param(
        pattern = r"^[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    cursor: Option<String>,
}

/// The answer to a request whose job is a duplicate (nothing was inserted): the
/// job holding the unique key, with `"duplicate": true`. Describes the answer
/// that [`crate::Enqueued`] serializes to.
pub(crate) struct DuplicateJob;

impl utoipa::PartialSchema for DuplicateJob {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        let mut schema = <Job as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(job)) = &mut schema {
            let flag = ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true]))
                .description(Some("the job already held the unique key"));
            job.properties.insert("duplicate".into(), flag.into());
            job.required.push("duplicate".into());
            job.description =
                Some("The job holding the request's unique key, marked duplicate.".into());
        }
        schema
    }
}

impl utoipa::ToSchema for DuplicateJob {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Job as utoipa::ToSchema>::schemas(schemas);
    }
}

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
    fn the_documented_query_is_the_one_read() {
        use utoipa::IntoParams;
        let mut documented: Vec<String> = ListQuery::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        documented.sort();
        let mut read = LIST_PARAMS.to_vec();
        read.sort();
        assert_eq!(documented, read);
        let own: Vec<String> = OwnListQuery::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        read.retain(|p| *p != "owner");
        let mut own_sorted = own.clone();
        own_sorted.sort();
        assert_eq!(own_sorted, read, "the own list: all but owner");
    }

    #[test]
    fn names_are_percent_decoded() {
        assert_eq!(decoded_name("a%3Ab").as_deref(), Some("a:b"));
        assert_eq!(decoded_name("plain").as_deref(), Some("plain"));
        assert_eq!(decoded_name("%FF"), None);
    }

    #[test]
    fn ids_must_be_uuids() {
        assert_eq!(parse_id("1 OR 1=1").unwrap_err().code, "bad_id");
        assert!(parse_id("0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01").is_ok());
    }
}
