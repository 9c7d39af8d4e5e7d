//! One client connection on its own thread: read a whole request under the
//! limits, answer it (the handler runs inside `catch_unwind`), write the
//! response, and go on while the client keeps the connection alive. A request
//! that breaks a limit is refused and the connection closed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::http::errors::ApiError;
use crate::http::framing::{Frame, Framer, Incoming, Limits};
use crate::http::open::{Open, Permits};
use crate::http::request::Request;
use crate::http::response::Response;

/// What answers a request. It may panic: the client gets a 500.
pub(crate) type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// What the server tells of a request it refused before reading it whole.
pub(crate) type Refused = dyn Fn(u16) + Send + Sync;

/// How long a refused client may go on sending before the connection is closed.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long a connection closed after an answer waits for the client to close.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// How much of a refused client's data is read and dropped at most.
const DRAIN_BYTES: usize = 64 << 20;

/// What every connection thread shares.
pub(crate) struct Shared {
    pub limits: Limits,
    pub handler: Box<Handler>,
    /// Told the status of each request refused before it was read whole
    /// (a malformed or oversize head or body, a slow client, a full server).
    pub refused: Box<Refused>,
    pub open: Open,
    pub permits: Permits,
}

/// Serves connection `id` until the client or the server closes it.
pub(crate) fn serve(shared: &Shared, id: u64, stream: &TcpStream) {
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut framer = Framer::new(reader, shared.limits);
    loop {
        let mut frame = framer.next();
        if let Frame::Continue(head) = frame {
            if (&*stream)
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
            {
                return;
            }
            frame = framer.body(head, framer.deadline());
        }
        let incoming = match frame {
            Frame::Request(incoming) => incoming,
            Frame::Reject(err) => return refuse(shared, stream, &err, DRAIN_TIME),
            Frame::Closed | Frame::Continue(_) => return close(stream, CLOSE_LINGER),
        };
        if !shared.open.begin(id) {
            return close(stream, CLOSE_LINGER);
        }
        let keep_alive = answer(shared, stream, incoming);
        if !shared.open.end(id) || !keep_alive {
            return close(stream, CLOSE_LINGER);
        }
    }
}

/// Answers one request and logs it; whether the connection stays open.
fn answer(shared: &Shared, mut stream: &TcpStream, incoming: Incoming) -> bool {
    let started = Instant::now();
    let req = &incoming.request;
    let response = {
        let _permit = shared.permits.take();
        catch_unwind(AssertUnwindSafe(|| (shared.handler)(req))).unwrap_or_else(|_| {
            log::error!("request handler panicked: {} {}", req.method, req.path);
            Response::from(ApiError::internal())
        })
    };
    let close = !incoming.keep_alive || shared.open.stopping();
    let bytes = response.encode(incoming.minor, req.method == "HEAD", close);
    let sent = stream.write_all(&bytes);
    if let Err(e) = &sent {
        log::debug!("could not send a response: {e}");
    }
    log::info!(
        target: "jobq::http::access",
        "{} {} {} {}ms",
        req.method,
        req.path,
        response.status,
        started.elapsed().as_millis()
    );
    sent.is_ok() && !close
}

/// Writes `err` as JSON with `Connection: close`, then closes, reading what
/// the client still sends for up to `linger` so that it reads the answer.
pub(crate) fn refuse(shared: &Shared, mut stream: &TcpStream, err: &ApiError, linger: Duration) {
    let started = Instant::now();
    (shared.refused)(err.status);
    let bytes = Response::from(err.clone()).encode(1, false, true);
    let _ = stream.write_all(&bytes);
    close(stream, linger);
    log::info!(
        target: "jobq::http::access",
        "- - {} {}ms ({})",
        err.status,
        started.elapsed().as_millis(),
        err.code
    );
}

/// Ends the connection: no more writes, then reads and drops what the client
/// still sends (the rest of a refused body, a pipelined request) until it
/// closes, for at most `linger` and [`DRAIN_BYTES`], so that closing does not
/// reset the connection before the client has read the answer.
fn close(mut stream: &TcpStream, linger: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + linger;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    while total < DRAIN_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
