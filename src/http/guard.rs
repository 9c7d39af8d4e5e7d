//! The front door: accepts client connections, caps how many are open, and
//! relays only whole requests (read under [`Limits`]) to the tiny_http server on
//! a loopback port. A client that hangs, sends garbage or sends slowly holds
//! its own connection thread and nothing else.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::errors::ApiError;
use crate::http::framing::{Frame, Framer, Limits};

/// Stack of the relay threads: they hold small frames only.
const RELAY_STACK: usize = 256 * 1024;
/// How long a refused client may go on sending before the connection is closed.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long the accept thread waits for a refused (over the cap) client's request.
const BUSY_LINGER: Duration = Duration::from_millis(50);
/// How much of a refused client's data is read and dropped at most.
const DRAIN_BYTES: usize = 64 << 20;

/// The open client connections, so they can be counted and closed at shutdown.
#[derive(Default)]
struct Open {
    next: AtomicU64,
    streams: Mutex<HashMap<u64, TcpStream>>,
}

impl Open {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running front door.
pub(crate) struct Guard {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<Open>,
    acceptor: Option<JoinHandle<()>>,
}

impl Guard {
    /// Starts accepting on `listener`, relaying to `inner`.
    pub fn start(
        listener: TcpListener,
        inner: SocketAddr,
        limits: Limits,
        max_connections: usize,
    ) -> std::io::Result<Guard> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Open::default());
        let (s, o) = (stop.clone(), open.clone());
        let acceptor = thread::Builder::new()
            .name("jobq-http-accept".into())
            .spawn(move || accept_loop(&listener, inner, limits, max_connections, &s, &o))?;
        Ok(Guard {
            addr,
            stop,
            open,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every open client connection.
    pub fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.join();
        for s in self.open.lock().values() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: &TcpListener,
    inner: SocketAddr,
    limits: Limits,
    max_connections: usize,
    stop: &AtomicBool,
    open: &Arc<Open>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let client = match conn {
            Ok(c) => c,
            Err(e) => {
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if let Err(e) = admit(client, inner, limits, max_connections, open) {
            log::warn!("could not serve a connection: {e}");
        }
    }
}

/// Registers the connection and starts its relay, or answers 503 when full.
fn admit(
    client: TcpStream,
    inner: SocketAddr,
    limits: Limits,
    max_connections: usize,
    open: &Arc<Open>,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    client.set_write_timeout(Some(limits.read_timeout))?;
    let id = open.next.fetch_add(1, Ordering::Relaxed);
    {
        let mut streams = open.lock();
        if streams.len() >= max_connections {
            drop(streams);
            let busy = ApiError::new(503, "too_many_connections", "too many open connections")
                .with_header("Retry-After", "1");
            refuse(client, &busy, BUSY_LINGER);
            return Ok(());
        }
        streams.insert(id, client.try_clone()?);
    }
    let registry = open.clone();
    let spawned = thread::Builder::new()
        .name("jobq-http-conn".into())
        .stack_size(RELAY_STACK)
        .spawn(move || {
            relay(client, inner, &limits);
            registry.lock().remove(&id);
        });
    if let Err(e) = spawned {
        open.lock().remove(&id);
        return Err(e);
    }
    Ok(())
}

/// Writes a JSON error with `Connection: close` and closes.
pub(crate) fn refuse(mut client: TcpStream, err: &ApiError, linger: Duration) {
    let started = Instant::now();
    let body = err.body().to_string();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        err.status,
        reason(err.status),
        body.len()
    );
    for (k, v) in &err.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = client.write_all(head.as_bytes());
    let _ = client.write_all(body.as_bytes());
    let _ = client.shutdown(Shutdown::Write);
    drain(&mut client, linger);
    log::info!(
        target: "jobq::http::access",
        "- - {} {}ms ({})",
        err.status,
        started.elapsed().as_millis(),
        err.code
    );
}

/// Reads and drops what the client still sends (the rest of a refused body),
/// for at most `linger` and [`DRAIN_BYTES`], so that closing does not reset
/// the connection before the client has read the answer.
fn drain(client: &mut TcpStream, linger: Duration) {
    let until = Instant::now() + linger;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    while total < DRAIN_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || client.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

/// Relays one client connection: whole requests in, responses out.
fn relay(client: TcpStream, inner: SocketAddr, limits: &Limits) {
    let (Ok(upstream), Ok(reader), Ok(writer)) = (
        TcpStream::connect(inner),
        client.try_clone(),
        client.try_clone(),
    ) else {
        refuse(client, &ApiError::internal(), BUSY_LINGER);
        return;
    };
    let _ = upstream.set_nodelay(true);
    let rejecting = Arc::new(AtomicBool::new(false));
    let flag = rejecting.clone();
    let responses = match upstream.try_clone() {
        Ok(up) => thread::Builder::new()
            .name("jobq-http-out".into())
            .stack_size(RELAY_STACK)
            .spawn(move || copy_responses(up, writer, &flag)),
        Err(e) => Err(e),
    };
    let Ok(responses) = responses else {
        refuse(client, &ApiError::internal(), BUSY_LINGER);
        return;
    };
    let rejected = forward_requests(Framer::new(reader, *limits), &client, &upstream);
    // A refusal drains the client's unread body: its reader must stay open, or the
    // close resets the connection while the client is still sending.
    rejecting.store(rejected.is_some(), Ordering::SeqCst);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = responses.join();
    if let Some(err) = rejected {
        refuse(client, &err, DRAIN_TIME);
    } else {
        let _ = client.shutdown(Shutdown::Both);
    }
}

/// Forwards whole requests until the client stops; returns the rule a request broke.
fn forward_requests(
    mut framer: Framer,
    mut client: &TcpStream,
    mut upstream: &TcpStream,
) -> Option<ApiError> {
    loop {
        let mut frame = framer.next();
        if let Frame::Continue = frame {
            if client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                return None;
            }
            frame = framer.body(framer.deadline());
        }
        match frame {
            Frame::Request(bytes) => {
                if upstream.write_all(&bytes).is_err() {
                    return None;
                }
            }
            Frame::Reject(err) => return Some(err),
            Frame::Closed | Frame::Continue => return None,
        }
    }
}

/// Copies the server's responses to the client; when either side ends, stops
/// the client's reader so the request side ends too (unless the request side is
/// refusing a request and will drain the client itself).
fn copy_responses(mut upstream: TcpStream, mut client: TcpStream, rejecting: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match upstream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    let _ = upstream.shutdown(Shutdown::Both);
                    break;
                }
            }
        }
    }
    if !rejecting.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Read);
    }
}
