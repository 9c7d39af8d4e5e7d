//! The error answers that endpoints share, as OpenAPI response sets: an
//! endpoint's `#[utoipa::path(responses(...))]` names the sets it can answer
//! beside its own statuses. The descriptions are the document's.
//!
//! These types only describe answers (`ApiError` makes them), so none is built.
#![allow(dead_code)]

use utoipa::{IntoResponses, ToSchema};

use crate::http::errors::ErrorBody;

/// Answers any endpoint may give once a request reached it, but its 400 (an
/// endpoint that reads its query names `BadRequest` beside it, one that
/// refuses any names `NoQuery`: `Path::takes_query` in `routes.rs`).
#[derive(IntoResponses)]
pub(crate) enum Transport {
    /// The request was not received within the read timeout
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// The body (default limit 2 MiB) or the payload (default limit 1 MiB) is too large
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// An Expect header other than 100-continue
    #[response(status = 417)]
    Expectation(ErrorBody),
    /// The request head is too large
    #[response(status = 431)]
    HeadTooLarge(ErrorBody),
    /// Internal error (no details)
    #[response(status = 500)]
    Internal(ErrorBody),
    /// The database is busy or unavailable, or too many connections are open
    #[response(
        status = 503,
        headers(("Retry-After" = u32, description = "seconds to wait (when the database is busy)"))
    )]
    Unavailable(ErrorBody),
}

/// Malformed request: bad JSON, job id, query or request head
#[derive(IntoResponses)]
#[response(status = 400)]
pub(crate) struct BadRequest(ErrorBody);

/// Malformed request: any query parameter (this endpoint takes none; error code bad_query), or bad JSON, job id or request head
#[derive(IntoResponses)]
#[response(status = 400)]
pub(crate) struct NoQuery(ErrorBody);

// Every operation names it: OpenAPI has no place for the answer to a method
// a path does not list.
/// A method this path does not serve (error code method_not_allowed); the Allow header names the ones it does
#[derive(IntoResponses)]
#[response(
    status = 405,
    headers(("Allow" = String, description = "the path's methods, comma-separated (HEAD beside GET)"))
)]
pub(crate) struct WrongMethod(ErrorBody);

/// Always `Bearer`: send `Authorization: Bearer <token>`.
#[derive(ToSchema)]
pub(crate) enum Challenge {
    /// Send `Authorization: Bearer <token>`.
    Bearer,
}

/// Missing, unknown or revoked token (or cron secret)
#[derive(IntoResponses)]
#[response(
    status = 401,
    headers(("WWW-Authenticate" = inline(Challenge), description = "the scheme to use"))
)]
pub(crate) struct Unauthorized(ErrorBody);

/// The token is valid but not an admin's
#[derive(IntoResponses)]
#[response(status = 403)]
pub(crate) struct AdminOnly(ErrorBody);

/// Not found (another user's job answers exactly like a missing one)
#[derive(IntoResponses)]
#[response(status = 404)]
pub(crate) struct NotFound(ErrorBody);

/// The job's status does not allow this; error.status holds it
#[derive(IntoResponses)]
#[response(status = 409)]
pub(crate) struct Conflict(ErrorBody);
