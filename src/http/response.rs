//! A response as the endpoints give it (status, content type, headers, body
//! bytes) and how it is written on the wire.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Serialize;

use crate::http::errors::ApiError;

/// The media type of every API answer.
pub(crate) const JSON: &str = "application/json";

/// What an endpoint returns: its answer, or an error answered as JSON.
pub(crate) type RouteResult = Result<Response, ApiError>;

/// One answer. Headers may repeat (`Set-Cookie`); `Content-Length`, `Date`
/// and `Connection` are written by the server and must not be set here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    pub headers: Vec<(Cow<'static, str>, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response of `status` with `body` of `content_type` and no other header.
    pub fn new(status: u16, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body,
        }
    }

    /// `value` as JSON, not to be cached (`Cache-Control: no-store`).
    ///
    /// # Errors
    /// 500 when `value` cannot be serialized (logged).
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Result<Response, ApiError> {
        let body = serde_json::to_vec(value).map_err(|e| {
            log::error!("could not serialize a response: {e}");
            ApiError::internal()
        })?;
        Ok(Response::new(status, JSON, body).with_header("Cache-Control", "no-store"))
    }

    /// Adds a header (after those already set).
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The response as bytes for a client that spoke `HTTP/1.{minor}`: the
    /// body left out when `head_only` (a HEAD request) or the status has none;
    /// `Connection: close` when the connection ends after it.
    pub fn encode(&self, minor: u8, head_only: bool, close: bool) -> Vec<u8> {
        let bodyless = matches!(self.status, 100..=199 | 204 | 304);
        let mut out = Vec::with_capacity(256 + self.body.len());
        let date = httpdate::fmt_http_date(SystemTime::now());
        let status = format!("HTTP/1.{minor} {} {}\r\n", self.status, reason(self.status));
        out.extend_from_slice(status.as_bytes());
        put(&mut out, "Date", &date);
        if !bodyless {
            put(&mut out, "Content-Type", &self.content_type);
        }
        for (name, value) in &self.headers {
            put(&mut out, name, value);
        }
        if !bodyless {
            put(&mut out, "Content-Length", &self.body.len().to_string());
        }
        if close {
            put(&mut out, "Connection", "close");
        } else if minor == 0 {
            put(&mut out, "Connection", "keep-alive");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only && !bodyless {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Writes one header line; a name or value that would split the head (CR, LF)
/// is dropped rather than sent.
fn put(out: &mut Vec<u8>, name: &str, value: &str) {
    if [name, value].iter().any(|s| s.contains(['\r', '\n'])) {
        log::error!("a response header {name:?} with a line break was dropped");
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The JSON error body with the error's headers.
impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        // A struct of strings: serializing it cannot fail.
        let body = serde_json::to_vec(&e.body()).unwrap_or_default();
        let mut r = Response::new(e.status, JSON, body).with_header("Cache-Control", "no-store");
        for (k, v) in e.headers {
            r = r.with_header(k, v);
        }
        r
    }
}

/// The reason phrase of `status` (RFC 9110 section 15).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Response, minor: u8, head_only: bool, close: bool) -> String {
        let raw = String::from_utf8(r.encode(minor, head_only, close)).unwrap();
        let (date, rest) = raw.split_once("\r\nDate: ").unwrap();
        let (_, rest) = rest.split_once("\r\n").unwrap();
        format!("{date}\r\n{rest}")
    }

    #[test]
    fn json_answers_carry_length_type_and_no_store() {
        let r = Response::json(201, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(
            text(&r, 1, false, false),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\
             Cache-Control: no-store\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
    }

    #[test]
    fn close_head_and_http_1_0_change_only_the_framing() {
        let r = Response::new(303, "text/html; charset=utf-8", b"<p>x</p>".to_vec())
            .with_header("Location", "/jobs")
            .with_header("Set-Cookie", "a=1")
            .with_header("Set-Cookie", "b=2");
        assert_eq!(
            text(&r, 0, true, false),
            "HTTP/1.0 303 See Other\r\nContent-Type: text/html; charset=utf-8\r\n\
             Location: /jobs\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\
             Content-Length: 8\r\nConnection: keep-alive\r\n\r\n"
        );
        let closing = text(&r, 1, false, true);
        assert!(closing.ends_with("Content-Length: 8\r\nConnection: close\r\n\r\n<p>x</p>"));
    }

    #[test]
    fn header_values_cannot_split_the_head() {
        let r = Response::new(200, "text/plain", Vec::new())
            .with_header("Location", "/a\r\nSet-Cookie: evil=1");
        assert!(!text(&r, 1, false, false).contains("evil"));
    }

    #[test]
    fn errors_become_json_with_their_headers() {
        let r = Response::from(ApiError::unauthorized("no"));
        assert_eq!((r.status, r.content_type.as_ref()), (401, JSON));
        assert!(r
            .headers
            .contains(&("WWW-Authenticate".into(), "Bearer".to_string())));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}
