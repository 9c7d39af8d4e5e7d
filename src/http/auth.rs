//! Who is asking: bearer tokens looked up on every request (so a revocation
//! counts at once), the admin role, and the cron secret. Nothing here echoes a
//! presented token.

use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::token::secrets_match;
use crate::ApiToken;

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer(req: &Request) -> Option<&str> {
    let value = req.header("Authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The live token of the request.
///
/// # Errors
/// 401 (with `WWW-Authenticate: Bearer`) when the token is missing, unknown or revoked.
pub(crate) fn user(ctx: &Ctx, req: &Request) -> Result<ApiToken, ApiError> {
    let Some(secret) = bearer(req) else {
        return Err(ApiError::unauthorized("a bearer token is required"));
    };
    ctx.queue
        .authenticate(secret)?
        .ok_or_else(|| ApiError::unauthorized("the token is not valid"))
}

/// The live admin token of the request.
///
/// # Errors
/// 401 as [`user`]; 403 when the token is valid but not an admin's.
pub(crate) fn admin(ctx: &Ctx, req: &Request) -> Result<ApiToken, ApiError> {
    let who = user(ctx, req)?;
    if !who.admin {
        return Err(ApiError::forbidden());
    }
    Ok(who)
}

/// Checks the cron secret, given as the bearer token or the `secret` query
/// parameter, in constant time.
///
/// # Errors
/// 404 when no cron secret is configured (the endpoint is off); 401 when the
/// secret is missing or wrong.
pub(crate) fn cron(ctx: &Ctx, req: &Request) -> Result<(), ApiError> {
    let Some(expected) = ctx.cron_secret.as_deref() else {
        return Err(ApiError::not_found("the cron endpoint is not enabled"));
    };
    let presented = match bearer(req) {
        Some(s) => Some(s),
        None => req.param("secret")?,
    };
    match presented {
        Some(p) if secrets_match(p, expected) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the cron secret is not valid")),
        None => Err(ApiError::unauthorized("the cron secret is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> Request {
        let mut req = Request::new("GET", "/");
        req.headers = vec![("authorization".into(), value.into())];
        req
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer(&with_auth("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with_auth("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with_auth("Basic abc")), None);
        assert_eq!(bearer(&with_auth("Bearer ")), None);
        assert_eq!(bearer(&with_auth("abc")), None);
        assert_eq!(bearer(&Request::default()), None);
    }
}
