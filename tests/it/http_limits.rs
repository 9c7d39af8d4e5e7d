//! Limits: body and head size, slow and silent clients, connection cap, garbage,
//! and many concurrent clients.

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http_util::{
    body_of, raw, read_until_closed, start, start_with, status_of, wait_for, Api,
};

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn an_oversized_body_is_413_before_it_is_sent() {
    let api = start_with(|c| c.max_body_bytes = 1024);
    let head = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1025\r\n\r\n";
    let answer = raw(api.addr(), head.as_bytes(), PATIENCE);
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert_eq!(body_of(&answer)["error"]["code"], "body_too_large");
}

/// Regression: the refusal used to close the client's reader at once, so a
/// client still sending its oversized body got a reset (broken pipe) instead of
/// the 413.
#[test]
fn a_client_still_sending_an_oversized_body_reads_its_413() {
    let api = start_with(|c| c.max_body_bytes = 1024);
    let total = 3 << 20;
    let mut s = TcpStream::connect(api.addr()).unwrap();
    let head = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {total}\r\n\r\n",
        api.alice
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..total / chunk.len() {
        // Paced so that the server answers long before the body is sent.
        s.write_all(&chunk)
            .expect("the server keeps reading a refused body");
        std::thread::sleep(Duration::from_millis(2));
    }
    let answer = read_until_closed(&mut s, PATIENCE);
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert_eq!(body_of(&answer)["error"]["code"], "body_too_large");
}

/// `jobq_http_requests_total` for requests refused before they were read
/// whole (`route="unread"`) with `status`.
fn unread(api: &Api, status: u16) -> u32 {
    let text = api.get("/metrics", Some(METRICS_TOKEN)).text;
    let label = format!("status=\"{status}\"");
    text.lines()
        .filter(|l| l.starts_with("jobq_http_requests_total{") && l.contains("route=\"unread\""))
        .filter(|l| l.contains(&label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap())
        .sum()
}

const METRICS_TOKEN: &str = "scrape";

#[test]
fn an_oversized_head_is_431_and_garbage_is_400() {
    let api = start_with(|c| c.metrics_token = Some(METRICS_TOKEN.into()));
    let big = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw(api.addr(), big.as_bytes(), PATIENCE);
    assert_eq!(status_of(&answer), 431, "{answer}");
    let answer = raw(api.addr(), b"\x00\x01\x02 garbage\r\n\r\n", PATIENCE);
    assert_eq!(status_of(&answer), 400);
    assert_eq!(body_of(&answer)["error"]["code"], "bad_request");
    assert_eq!(api.get("/healthz", None).status, 200);
    // Refused before they were read, and counted all the same.
    assert_eq!((unread(&api, 431), unread(&api, 400)), (1, 1));
}

#[test]
fn chunked_bodies_are_accepted_and_limited() {
    let api = start_with(|c| c.max_body_bytes = 64);
    let send = |chunks: &str| {
        let head = format!(
            "POST /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            api.alice
        );
        raw(api.addr(), format!("{head}{chunks}").as_bytes(), PATIENCE)
    };
    let ok = send("d\r\n{\"job_type\": \r\ne\r\n\"email.send\"}\n\r\n0\r\n\r\n");
    assert_eq!(status_of(&ok), 201, "{ok}");
    assert_eq!(body_of(&ok)["owner"], "alice");
    let big = send(&format!("41\r\n{}\r\n0\r\n\r\n", "x".repeat(65)));
    assert_eq!(status_of(&big), 413, "{big}");
}

#[test]
fn a_request_with_both_framings_is_refused_and_its_connection_closed() {
    let api = start_with(|_| {});
    // Content-Length first, then chunked: a second request hides in the body
    // for whoever reads the length; the server must not answer it.
    let body = "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let req = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        api.alice,
        body.len()
    );
    let answer = raw(api.addr(), req.as_bytes(), PATIENCE);
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert_eq!(body_of(&answer)["error"]["code"], "bad_request");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "one answer, then the connection closes: {answer}"
    );
}

#[test]
fn silent_connections_do_not_block_others_and_are_closed_when_idle() {
    let api = start_with(|c| {
        c.threads = 2;
        c.idle_timeout = Duration::from_millis(500);
    });
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(api.addr()).unwrap())
        .collect();
    for _ in 0..5 {
        assert_eq!(api.get("/healthz", None).status, 200);
    }
    let closed_by_server = read_until_closed(&mut silent[0], PATIENCE);
    assert_eq!(
        closed_by_server, "",
        "an idle connection is closed without an answer"
    );
}

#[test]
fn a_slow_body_is_408_and_does_not_hold_request_threads() {
    let api = start_with(|c| {
        c.threads = 1;
        c.read_timeout = Duration::from_millis(700);
    });
    let mut slow = TcpStream::connect(api.addr()).unwrap();
    let head = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"job_type\"",
        api.alice
    );
    slow.write_all(head.as_bytes()).unwrap();
    assert_eq!(api.get("/healthz", None).status, 200);
    let answer = read_until_closed(&mut slow, PATIENCE);
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert_eq!(body_of(&answer)["error"]["code"], "request_timeout");
}

#[test]
fn connections_over_the_cap_get_503() {
    let api = start_with(|c| {
        c.max_connections = 3;
        c.metrics_token = Some(METRICS_TOKEN.into());
    });
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(api.addr()).unwrap())
        .collect();
    let mut refused = None;
    wait_for("a refused connection", PATIENCE, || {
        let answer = raw(api.addr(), b"GET /healthz HTTP/1.1\r\n\r\n", PATIENCE);
        let done = status_of(&answer) == 503;
        refused = Some(answer);
        done
    });
    let answer = refused.unwrap();
    assert_eq!(body_of(&answer)["error"]["code"], "too_many_connections");
    drop(held);
    wait_for("a free connection slot", PATIENCE, || {
        status_of(&raw(
            api.addr(),
            b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
            PATIENCE,
        )) == 200
    });
    // Each refusal is counted (those above, and any while the slots freed).
    assert!(unread(&api, 503) >= 1);
}

#[test]
fn two_hundred_clients_enqueue_and_poll_without_errors_or_lost_jobs() {
    let api = Arc::new(start());
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let until = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let (api, accepted) = (api.clone(), accepted.clone());
            std::thread::spawn(move || {
                let token = if i % 2 == 0 {
                    api.alice.clone()
                } else {
                    api.bob.clone()
                };
                let mut errors = Vec::new();
                while Instant::now() < until {
                    let a = api.post_json(
                        "/api/v1/jobs",
                        Some(&token),
                        &json!({"job_type": "email.send", "payload": i}),
                    );
                    if a.status != 201 {
                        errors.push(format!("enqueue {}: {}", a.status, a.text));
                        continue;
                    }
                    let id = a.body["id"].as_str().unwrap().to_string();
                    let g = api.get(&format!("/api/v1/jobs/{id}"), Some(&token));
                    if g.status != 200 || g.body["id"] != a.body["id"] {
                        errors.push(format!("poll {}: {}", g.status, g.text));
                    }
                    accepted.lock().unwrap().push(id);
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    let ids = accepted.lock().unwrap().clone();
    assert!(ids.len() >= 200, "only {} jobs enqueued", ids.len());
    let total = api.queue.list(&Default::default(), 1, None).unwrap().total;
    assert_eq!(total as usize, ids.len());
    for id in &ids {
        assert!(api.queue.get(id.parse().unwrap()).is_ok(), "job {id} lost");
    }
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let api = start();
    let body = r#"{"job_type":"email.send"}"#;
    let head = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        api.alice,
        body.len()
    );
    let mut s = TcpStream::connect(api.addr()).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut s, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let answer = read_until_closed(&mut s, PATIENCE);
    assert_eq!(status_of(&answer), 201, "{answer}");
}

#[test]
fn shutdown_closes_open_connections_and_stops_listening() {
    let dir = tempfile::tempdir().unwrap();
    let queue = jobq::Queue::open(dir.path().join("jobq.db")).unwrap();
    let config = jobq::http::HttpConfig {
        addr: "127.0.0.1:0".into(),
        ..Default::default()
    };
    let server = jobq::http::start(queue, jobq::Registry::new(), config).unwrap();
    let addr = server.addr();
    let mut idle = TcpStream::connect(addr).unwrap();
    let ok = raw(
        addr,
        b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        PATIENCE,
    );
    assert_eq!(status_of(&ok), 200);
    server.shutdown();
    assert_eq!(read_until_closed(&mut idle, PATIENCE), "");
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}
