//! Connections: keep-alive and pipelining, HTTP/1.0, HEAD, and a graceful
//! shutdown that finishes the request in flight and closes idle connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::http_util::{read_until_closed, start, status_of};

const PATIENCE: Duration = Duration::from_secs(20);

/// Reads one response from `s` (its body too, unless `head_only`); returns
/// the head's text and the body.
fn read_response(s: &mut TcpStream, pending: &mut Vec<u8>, head_only: bool) -> (String, Vec<u8>) {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            let length: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
            let length = if head_only { 0 } else { length };
            if pending.len() >= end + 4 + length {
                let body = pending[end + 4..end + 4 + length].to_vec();
                pending.drain(..end + 4 + length);
                return (head, body);
            }
        }
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a whole response: {pending:?}");
        pending.extend_from_slice(&buf[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn a_keep_alive_connection_answers_pipelined_requests_in_order_until_close() {
    let api = start();
    let body = r#"{"job_type":"email.send"}"#;
    let post = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        api.alice,
        body.len()
    );
    let mut s = TcpStream::connect(api.addr()).unwrap();
    let pipelined = format!("GET /healthz HTTP/1.1\r\n\r\n{post}GET /nowhere HTTP/1.1\r\n\r\n");
    s.write_all(pipelined.as_bytes()).unwrap();
    let mut pending = Vec::new();
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            let (head, _) = read_response(&mut s, &mut pending, false);
            assert_eq!(header(&head, "connection"), None, "{head}");
            status_of(&head)
        })
        .collect();
    assert_eq!(statuses, [200, 201, 404]);
    s.write_all(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut s, &mut pending, false);
    assert_eq!(
        (status_of(&head), header(&head, "connection")),
        (200, Some("close"))
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "ok"
    );
    assert_eq!(read_until_closed(&mut s, PATIENCE), "", "closed after it");
    assert_eq!(
        api.queue.list(&Default::default(), 10, None).unwrap().total,
        1
    );
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked_for() {
    let api = start();
    let mut s = TcpStream::connect(api.addr()).unwrap();
    s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let (head, _) = read_response(&mut s, &mut pending, false);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(header(&head, "connection"), Some("keep-alive"));
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut s, &mut pending, false);
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert_eq!(read_until_closed(&mut s, PATIENCE), "");
}

#[test]
fn head_is_answered_without_a_body_and_the_connection_goes_on() {
    let api = start();
    let mut s = TcpStream::connect(api.addr()).unwrap();
    s.write_all(b"HEAD /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let (head, _) = read_response(&mut s, &mut pending, true);
    assert_eq!(
        status_of(&head),
        200,
        "HEAD is GET without the body: {head}"
    );
    assert_eq!(
        header(&head, "content-length"),
        Some("15"),
        "the GET's length: {head}"
    );
    let (head, body) = read_response(&mut s, &mut pending, false);
    assert_eq!(
        status_of(&head),
        200,
        "the next answer follows the head: {head}"
    );
    assert_eq!(body, br#"{"status":"ok"}"#);
}

/// A clock that, once armed, holds the first caller until released: a way to
/// keep a request in flight (enqueue reads the clock).
#[derive(Debug)]
struct GateClock {
    armed: std::sync::atomic::AtomicBool,
    entered: Mutex<mpsc::Sender<()>>,
    released: Mutex<mpsc::Receiver<()>>,
}

impl jobq::Clock for GateClock {
    fn now(&self) -> jobq::Timestamp {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.entered.lock().unwrap().send(()).unwrap();
            self.released.lock().unwrap().recv().unwrap();
        }
        jobq::SystemClock.now()
    }
}

#[test]
fn shutdown_finishes_the_request_in_flight_and_closes_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (entered, in_flight) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let clock = std::sync::Arc::new(GateClock {
        armed: std::sync::atomic::AtomicBool::new(false),
        entered: Mutex::new(entered),
        released: Mutex::new(released),
    });
    let opts = jobq::QueueOptions::new(dir.path().join("jobq.db")).clock(clock.clone());
    let queue = jobq::Queue::open_with(opts).unwrap();
    let token = queue.create_token("alice", false).unwrap().secret;
    let config = jobq::http::HttpConfig {
        addr: "127.0.0.1:0".into(),
        ..Default::default()
    };
    let server = jobq::http::start(queue.clone(), jobq::Registry::new(), config).unwrap();
    let addr = server.addr();
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(
        status_of(&read_response(&mut idle, &mut Vec::new(), false).0),
        200
    );
    let body = r#"{"job_type":"email.send"}"#;
    let mut busy = TcpStream::connect(addr).unwrap();
    let post = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    clock.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    busy.write_all(post.as_bytes()).unwrap();
    in_flight.recv_timeout(PATIENCE).unwrap();

    let stopping = std::thread::spawn(move || server.shutdown());
    assert_eq!(
        read_until_closed(&mut idle, PATIENCE),
        "",
        "idle one closed"
    );
    assert!(!stopping.is_finished(), "shutdown waits for the request");
    release.send(()).unwrap();
    let (head, _) = read_response(&mut busy, &mut Vec::new(), false);
    assert_eq!(
        (status_of(&head), header(&head, "connection")),
        (201, Some("close"))
    );
    stopping.join().unwrap();
    assert_eq!(queue.list(&Default::default(), 10, None).unwrap().total, 1);
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}
