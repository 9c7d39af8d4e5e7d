//! Reading one whole request (head and body) from a client within the limits:
//! head size, body size, and the time allowed to send it. The guard forwards
//! only whole requests, so request threads never wait on a slow client.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::http::errors::ApiError;

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

/// What reading the next request gave.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole request (head re-serialized without `Expect`, and body) to forward.
    Request(Vec<u8>),
    /// The head asks for `100 Continue` before the body: send it, then call
    /// [`Framer::after_continue`].
    Continue,
    /// The client closed the connection, or sent nothing for the idle timeout.
    Closed,
    /// The request breaks a rule; answer this and close.
    Reject(ApiError),
}

/// Reads requests from one client, keeping bytes that arrive early.
pub(crate) struct Framer {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Head {
    Partial,
    Done {
        len: usize,
        body: usize,
        expect: bool,
        rebuilt: Vec<u8>,
    },
}

impl Framer {
    pub fn new(stream: TcpStream) -> Framer {
        Framer {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads the next request. Waits up to the idle timeout for its first byte,
    /// then up to the read timeout for the whole request.
    pub fn next(&mut self, limits: &Limits) -> Frame {
        if self.buf.is_empty() {
            match self.fill(Instant::now() + limits.idle_timeout) {
                Ok(0) | Err(_) => return Frame::Closed,
                Ok(_) => {}
            }
        }
        let deadline = Instant::now() + limits.read_timeout;
        let head = loop {
            match parse_head(&self.buf, limits) {
                Err(e) => return Frame::Reject(e),
                Ok(Head::Partial) => {}
                Ok(done) => break done,
            }
            if let Some(frame) = self.fill_or_frame(deadline) {
                return frame;
            }
        };
        let Head::Done {
            len,
            body,
            expect,
            mut rebuilt,
        } = head
        else {
            return Frame::Closed;
        };
        if expect && self.buf.len() < len + body {
            return Frame::Continue;
        }
        while self.buf.len() < len + body {
            if let Some(frame) = self.fill_or_frame(deadline) {
                return frame;
            }
        }
        rebuilt.extend(self.buf.drain(..len + body).skip(len));
        Frame::Request(rebuilt)
    }

    /// After answering `100 Continue`: reads the body of the request whose head
    /// is buffered and returns the whole request.
    pub fn after_continue(&mut self, limits: &Limits) -> Frame {
        let deadline = Instant::now() + limits.read_timeout;
        let Ok(Head::Done {
            len,
            body,
            mut rebuilt,
            ..
        }) = parse_head(&self.buf, limits)
        else {
            return Frame::Closed;
        };
        while self.buf.len() < len + body {
            if let Some(frame) = self.fill_or_frame(deadline) {
                return frame;
            }
        }
        rebuilt.extend(self.buf.drain(..len + body).skip(len));
        Frame::Request(rebuilt)
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

fn too_large_head() -> ApiError {
    ApiError::new(431, "headers_too_large", "the request head is too large")
}

fn bad(message: &str) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

/// Parses the head in `buf`: its length, the body length, whether it expects
/// `100 Continue`, and the head re-serialized without `Expect`.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Head, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= limits.max_header_bytes => n,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_header_bytes => {
            return Ok(Head::Partial)
        }
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(too_large_head()),
        Err(_) => return Err(bad("malformed request head")),
    };
    let mut body = 0usize;
    let mut expect = false;
    let mut rebuilt = format!(
        "{} {} HTTP/1.{}\r\n",
        req.method.unwrap_or("GET"),
        req.path.unwrap_or("/"),
        req.version.unwrap_or(1)
    )
    .into_bytes();
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .ok()
            .filter(|v| v.is_ascii())
            .ok_or_else(|| bad("header values must be ASCII"))?;
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ApiError::new(
                411,
                "length_required",
                "send the body with a Content-Length (chunked bodies are not accepted)",
            ));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| bad("bad Content-Length"))?;
            if body != 0 && body != n {
                return Err(bad("conflicting Content-Length headers"));
            }
            body = n;
        }
        if h.name.eq_ignore_ascii_case("expect") {
            if !value.trim().eq_ignore_ascii_case("100-continue") {
                return Err(ApiError::new(
                    417,
                    "expectation_failed",
                    "unsupported Expect",
                ));
            }
            expect = true;
            continue;
        }
        rebuilt.extend_from_slice(format!("{}: {}\r\n", h.name, value).as_bytes());
    }
    if body > limits.max_body_bytes {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!(
                "the body is over the limit of {} bytes",
                limits.max_body_bytes
            ),
        ));
    }
    rebuilt.extend_from_slice(b"\r\n");
    Ok(Head::Done {
        len,
        body,
        expect: expect && body > 0,
        rebuilt,
    })
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
            Ok(Head::Partial) => 0,
            Ok(Head::Done { .. }) => 200,
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
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(status(b"\x01\x02 nonsense\r\n\r\n"), 400);
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(300));
        assert_eq!(status(long.as_bytes()), 431);
        assert_eq!(status(&long.as_bytes()[..280]), 431);
    }

    #[test]
    fn expect_is_dropped_from_the_forwarded_head() {
        let raw = b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let Ok(Head::Done {
            body,
            expect,
            rebuilt,
            ..
        }) = parse_head(raw, &LIMITS)
        else {
            panic!("head not parsed");
        };
        assert_eq!((body, expect), (2, true));
        let text = String::from_utf8(rebuilt).unwrap();
        assert_eq!(text, "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n");
    }
}
