//! Reading one whole request (head and body) from a client within the limits:
//! head size, body size, and the time allowed to send it. Endpoints see only
//! whole requests, so a slow client holds nothing but its own connection.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::http::chunked;
use crate::http::errors::ApiError;
use crate::http::request::Request;

/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// The limits a request is read under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// A whole request and how its connection goes on.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub request: Request,
    /// The minor HTTP version the client spoke: 0 or 1.
    pub minor: u8,
    /// Whether the client lets the connection stay open after the answer
    /// (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `keep-alive`).
    pub keep_alive: bool,
}

/// What reading the next request gave.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole request to answer.
    Request(Incoming),
    /// The head asks for `100 Continue` before the body: send it, then call
    /// [`Framer::body`] with this head.
    Continue(Head),
    /// The client closed the connection, or sent nothing for the idle timeout.
    Closed,
    /// The request breaks a rule; answer this and close.
    Reject(ApiError),
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    len: usize,
    body: Body,
    expect: bool,
    minor: u8,
    keep_alive: bool,
    /// A `Content-Length` header was read (its value is in `body`).
    length_seen: bool,
    /// The request without its body.
    request: Request,
}

/// Reads requests from one client, keeping bytes that arrive early.
pub(crate) struct Framer {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: Limits,
}

impl Framer {
    pub fn new(stream: TcpStream, limits: Limits) -> Framer {
        Framer {
            stream,
            buf: Vec::new(),
            limits,
        }
    }

    /// Reads the next request's head. Waits up to the idle timeout for its first
    /// byte, then up to the read timeout for the whole request.
    pub fn next(&mut self) -> Frame {
        if self.buf.is_empty() {
            match self.fill(Instant::now() + self.limits.idle_timeout) {
                Ok(0) | Err(_) => return Frame::Closed,
                Ok(_) => {}
            }
        }
        let deadline = Instant::now() + self.limits.read_timeout;
        let head = loop {
            match parse_head(&self.buf, &self.limits) {
                Err(e) => return Frame::Reject(e),
                Ok(Some(head)) => break head,
                Ok(None) => {}
            }
            if let Some(frame) = self.fill_or_frame(deadline) {
                return frame;
            }
        };
        if head.expect && self.buf.len() == head.len {
            return Frame::Continue(head);
        }
        self.body(head, deadline)
    }

    /// Reads the body of the request whose `head` is buffered, before `deadline`.
    pub fn body(&mut self, head: Head, deadline: Instant) -> Frame {
        loop {
            let decoded = match head.body {
                Body::Length(n) => (self.buf.len() >= head.len + n).then(|| chunked::Decoded {
                    body: self.buf[head.len..head.len + n].to_vec(),
                    end: head.len + n,
                }),
                Body::Chunked => {
                    match chunked::decode(&self.buf, head.len, self.limits.max_body_bytes) {
                        Ok(d) => d,
                        Err(e) => return Frame::Reject(e),
                    }
                }
            };
            if let Some(d) = decoded {
                self.buf.drain(..d.end);
                let mut request = head.request;
                request.body = d.body;
                return Frame::Request(Incoming {
                    request,
                    minor: head.minor,
                    keep_alive: head.keep_alive,
                });
            }
            if let Some(frame) = self.fill_or_frame(deadline) {
                return frame;
            }
        }
    }

    /// The deadline for a body read after `100 Continue`.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.limits.read_timeout
    }

    fn fill_or_frame(&mut self, deadline: Instant) -> Option<Frame> {
        match self.fill(deadline) {
            Ok(0) => Some(Frame::Closed),
            Ok(_) => None,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Some(Frame::Reject(ApiError::new(
                    408,
                    "request_timeout",
                    "the request was not received in time",
                )))
            }
            Err(_) => Some(Frame::Closed),
        }
    }

    /// Reads what is available before `deadline`. Ok(0) is end of stream.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

fn bad(message: &str) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

/// The origin form (`/path?query`) of an ASCII request target. An
/// absolute-form target (`http://host:port/path?query`), which an HTTP/1.1
/// server must accept (RFC 9112, section 3.2.2), loses its scheme and
/// authority; an empty path is `/`. Any other target is kept as it is.
fn origin_form(target: &str) -> std::borrow::Cow<'_, str> {
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|p| target.len() >= p.len() && target[..p.len()].eq_ignore_ascii_case(p));
    let Some(scheme) = scheme else {
        return target.into();
    };
    let rest = &target[scheme.len()..];
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].into(),
        Some(i) => format!("/{}", &rest[i..]).into(),
        None => "/".into(),
    }
}

/// Parses the head at the start of `buf`; `Ok(None)` while it is incomplete.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= limits.max_header_bytes => n,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_header_bytes => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                431,
                "headers_too_large",
                "the request head is too large",
            ))
        }
        Err(_) => return Err(bad("malformed request head")),
    };
    let target = req.path.unwrap_or("/");
    if !target.is_ascii() {
        return Err(bad(
            "the request target must be ASCII: percent-encode other characters",
        ));
    }
    let target = origin_form(target);
    let minor = req.version.unwrap_or(1);
    let mut head = Head {
        len,
        body: Body::Length(0),
        expect: false,
        minor,
        keep_alive: minor >= 1,
        length_seen: false,
        request: Request::new(req.method.unwrap_or("GET"), &target),
    };
    for h in req.headers.iter() {
        add_header(&mut head, h.name, h.value)?;
    }
    if let Body::Length(n) = head.body {
        if n > limits.max_body_bytes {
            return Err(chunked::too_large(limits.max_body_bytes));
        }
    }
    head.expect &= head.body != Body::Length(0);
    Ok(Some(head))
}

/// Records one header, and takes the body framing and the connection's fate
/// from those that decide them.
fn add_header(head: &mut Head, name: &str, value: &[u8]) -> Result<(), ApiError> {
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|v| v.is_ascii())
        .ok_or_else(|| bad("header values must be ASCII"))?
        .trim();
    if name.eq_ignore_ascii_case("transfer-encoding") {
        if !value.eq_ignore_ascii_case("chunked") {
            return Err(bad("only the chunked transfer encoding is accepted"));
        }
        // Both framings in one request is how requests are smuggled past a
        // proxy (RFC 9112 section 6.3): refused, in either order.
        if head.length_seen {
            return Err(bad("Content-Length with Transfer-Encoding"));
        }
        head.body = Body::Chunked;
    } else if name.eq_ignore_ascii_case("content-length") {
        let n: usize = value.parse().map_err(|_| bad("bad Content-Length"))?;
        match head.body {
            Body::Chunked => return Err(bad("Content-Length with Transfer-Encoding")),
            Body::Length(m) if head.length_seen && m != n => {
                return Err(bad("conflicting Content-Length"))
            }
            _ => head.body = Body::Length(n),
        }
        head.length_seen = true;
    } else if name.eq_ignore_ascii_case("expect") {
        if !value.eq_ignore_ascii_case("100-continue") {
            return Err(ApiError::new(
                417,
                "expectation_failed",
                "unsupported Expect",
            ));
        }
        head.expect = true;
    } else if name.eq_ignore_ascii_case("connection") {
        let has = |token: &str| {
            value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if has("close") {
            head.keep_alive = false;
        } else if has("keep-alive") {
            head.keep_alive = true;
        }
    }
    head.request
        .headers
        .push((name.to_string(), value.to_string()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 256,
        max_body_bytes: 10,
        read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
    };

    fn status(raw: &[u8]) -> u16 {
        match parse_head(raw, &LIMITS) {
            Err(e) => e.status,
            Ok(None) => 0,
            Ok(Some(_)) => 200,
        }
    }

    #[test]
    fn heads_are_checked_against_the_limits() {
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n"), 0);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400
        );
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        // Both framings, in either order, and two different lengths.
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_eq!(status(raw), 400, "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            200
        );
        assert_eq!(status(b"POST / HTTP/1.1\r\nExpect: magic\r\n\r\n"), 417);
        assert_eq!(status(b"\x01\x02 nonsense\r\n\r\n"), 400);
        assert_eq!(status("GET /\u{e9} HTTP/1.1\r\n\r\n".as_bytes()), 400);
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(300));
        assert_eq!(status(long.as_bytes()), 431);
        assert_eq!(status(&long.as_bytes()[..280]), 431);
    }

    #[test]
    fn heads_keep_every_header_and_take_the_framing_from_them() {
        let raw = b"post /a?b=c HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nCookie: s=1\r\nX: y \r\n\r\n";
        let head = parse_head(raw, &LIMITS).unwrap().unwrap();
        assert_eq!(
            (head.body, head.expect, head.len, head.keep_alive),
            (Body::Chunked, true, raw.len(), true)
        );
        let req = &head.request;
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/a"));
        assert_eq!(req.query, vec![("b".to_string(), "c".to_string())]);
        assert_eq!(
            (req.header("cookie"), req.header("x")),
            (Some("s=1"), Some("y"))
        );
        assert_eq!(req.headers.len(), 4);
    }

    #[test]
    fn an_absolute_form_target_is_routed_by_its_path_and_query() {
        let path_of = |raw: &str| {
            let head = parse_head(raw.as_bytes(), &LIMITS).unwrap().unwrap();
            (head.request.path.clone(), head.request.query.clone())
        };
        let none = Vec::new();
        assert_eq!(
            path_of("GET http://x/healthz HTTP/1.1\r\n\r\n"),
            ("/healthz".into(), none.clone())
        );
        assert_eq!(
            path_of("GET HTTPS://127.0.0.1:8080/api/v1/jobs?limit=2 HTTP/1.1\r\n\r\n"),
            (
                "/api/v1/jobs".into(),
                vec![("limit".to_string(), "2".to_string())]
            )
        );
        assert_eq!(
            path_of("GET http://x HTTP/1.1\r\n\r\n"),
            ("/".into(), none.clone())
        );
        assert_eq!(
            path_of("GET http://x?a=b HTTP/1.1\r\n\r\n"),
            ("/".into(), vec![("a".to_string(), "b".to_string())])
        );
        // Origin-form targets, and what only looks like a scheme, are kept.
        assert_eq!(path_of("GET /a/http://b HTTP/1.1\r\n\r\n").0, "/a/http://b");
        assert_eq!(path_of("GET ftp://x/y HTTP/1.1\r\n\r\n").0, "ftp://x/y");
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        let keep = |raw: &str| {
            parse_head(raw.as_bytes(), &LIMITS)
                .unwrap()
                .unwrap()
                .keep_alive
        };
        assert!(keep("GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }
}
