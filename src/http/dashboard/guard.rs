//! Who may see and change what: the session cookie, the same-origin check of
//! every state-changing request, the form token, and the headers every page
//! carries (a strict Content-Security-Policy among them).

use crate::http::context::Ctx;
use crate::http::request::{pairs, Request};
use crate::http::response::Response;
use crate::http::session::{Session, LIFETIME};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "jobq_session";
/// Where the dashboard lives; the cookie is sent only below it.
pub(crate) const BASE: &str = "/dashboard";

/// Every page: scripts, styles and images from this server only; no inline
/// script or style; no framing; forms post only here.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// A signed-in request: the session and its cookie value.
pub(crate) struct Signed {
    pub id: String,
    pub session: Session,
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The request's live session whose admin token is still live; a session
/// whose token was revoked (or is no longer an admin's) is ended.
pub(crate) fn signed_in(ctx: &Ctx, req: &Request) -> Option<Signed> {
    let id = cookie(req, COOKIE)?;
    let session = ctx.sessions.get(id)?;
    match ctx.queue.authenticate(&session.token.0) {
        Ok(Some(t)) if t.admin => Some(Signed {
            id: id.to_string(),
            session,
        }),
        Ok(_) => {
            ctx.sessions.end(id);
            None
        }
        Err(e) => {
            log::warn!("dashboard: cannot check a session's token: {e}");
            None
        }
    }
}

/// True when a state-changing request comes from a page of this server:
/// `Sec-Fetch-Site: same-origin`, or else an `Origin` naming this host. A
/// request with neither is refused (browsers send at least one on a POST).
pub(crate) fn same_origin(req: &Request) -> bool {
    if let Some(site) = req.header("Sec-Fetch-Site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let (Some(origin), Some(host)) = (req.header("Origin"), req.header("Host")) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
}

/// The fields of an `application/x-www-form-urlencoded` body.
pub(crate) fn form(req: &Request) -> Vec<(String, String)> {
    pairs(&String::from_utf8_lossy(&req.body))
}

/// The first value of field `name`.
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// True when the request was made over https (as the client saw it: directly,
/// or through a proxy that says so). The cookie is then marked `Secure`.
fn https(req: &Request) -> bool {
    let proto = req.header("X-Forwarded-Proto").unwrap_or("");
    let origin = req.header("Origin").unwrap_or("");
    proto.eq_ignore_ascii_case("https") || origin.starts_with("https://")
}

/// The `Set-Cookie` value starting a session (or, with `None`, ending it).
pub(crate) fn set_cookie(req: &Request, id: Option<&str>) -> String {
    let secure = if https(req) { "; Secure" } else { "" };
    let (value, age) = match id {
        Some(id) => (id, LIFETIME.as_secs()),
        None => ("", 0),
    };
    format!("{COOKIE}={value}; Path={BASE}; Max-Age={age}; HttpOnly; SameSite=Strict{secure}")
}

/// The headers every dashboard answer carries.
pub(crate) fn harden(r: Response) -> Response {
    r.with_header("Content-Security-Policy", CSP)
        .with_header("X-Frame-Options", "DENY")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("Cross-Origin-Opener-Policy", "same-origin")
        .with_header("Cache-Control", "no-store")
}

/// `303 See Other` to `location` (a path of this server).
pub(crate) fn redirect(location: &str) -> Response {
    Response::new(303, "text/plain; charset=utf-8", Vec::new()).with_header("Location", location)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(headers: &[(&str, &str)]) -> Request {
        let mut req = Request::new("POST", "/dashboard/logout");
        req.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        req
    }

    #[test]
    fn only_same_origin_posts_pass() {
        assert!(same_origin(&with(&[("Sec-Fetch-Site", "same-origin")])));
        for site in ["same-site", "cross-site", "none"] {
            let req = with(&[
                ("Sec-Fetch-Site", site),
                ("Origin", "http://h"),
                ("Host", "h"),
            ]);
            assert!(!same_origin(&req), "{site}");
        }
        assert!(same_origin(&with(&[
            ("Origin", "http://127.0.0.1:8080"),
            ("Host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&with(&[
            ("Origin", "http://evil.example"),
            ("Host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&with(&[("Origin", "null"), ("Host", "h")])));
        assert!(!same_origin(&with(&[("Host", "h")])));
    }

    #[test]
    fn cookies_are_found_among_several() {
        let req = with(&[("Cookie", "a=1; jobq_session=abc ;b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie(&req, COOKIE), Some("abc"));
        assert_eq!(cookie(&req, "c"), Some("3"));
        assert_eq!(cookie(&req, "jobq"), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let plain = set_cookie(&with(&[]), Some("x"));
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let tls = set_cookie(&with(&[("X-Forwarded-Proto", "https")]), None);
        assert!(tls.ends_with("; Secure") && tls.contains("Max-Age=0"));
    }
}
