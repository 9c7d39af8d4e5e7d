use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{json, Value};

use super::attempt;
use crate::handlers::webhook::{WebhookHandler, MAX_RESPONSE_BYTES};
use jobq::{Handler, HandlerResult, JobError};

/// What the test server saw of one request.
#[derive(Debug)]
struct Seen {
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

/// A server on 127.0.0.1:0 that answers one request with `status`, `headers`, `body`.
fn server(status: u16, headers: &[(&str, &str)], body: &str) -> (String, JoinHandle<Seen>) {
    let srv = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", srv.server_addr().to_ip().expect("ip"));
    let headers: Vec<tiny_http::Header> = headers
        .iter()
        .map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header"))
        .collect();
    let body = body.to_string();
    let handle = thread::spawn(move || {
        let mut req = srv.recv().expect("a request");
        let mut text = String::new();
        req.as_reader().read_to_string(&mut text).expect("body");
        let seen = Seen {
            headers: req
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect(),
            body: text,
        };
        let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
        for h in headers {
            resp.add_header(h);
        }
        req.respond(resp).expect("respond");
        seen
    });
    (url, handle)
}

fn post(url: &str, payload: Value) -> HandlerResult {
    let a = attempt("hook_test");
    WebhookHandler::new(url.into(), Some(Duration::from_secs(10))).run(&a.ctx, payload)
}

#[test]
fn a_2xx_completes_with_the_json_body_and_sends_the_headers() {
    let (url, seen) = server(200, &[], r#"{"ok":true}"#);
    let a = attempt("hook_test");
    let out = WebhookHandler::new(url, None).run(&a.ctx, json!({"n": "é"}));
    assert_eq!(out, Ok(json!({"ok": true})));
    let seen = seen.join().unwrap();
    assert_eq!(seen.body, r#"{"n":"é"}"#);
    assert_eq!(seen.header("Content-Type"), Some("application/json"));
    assert_eq!(
        seen.header("Jobq-Job-Id"),
        Some(a.job.id.to_string().as_str())
    );
    assert_eq!(seen.header("Jobq-Attempt"), Some("1"));
}

#[test]
fn a_non_json_body_is_wrapped() {
    let (url, seen) = server(201, &[], "created");
    assert_eq!(post(&url, Value::Null), Ok(json!({"body": "created"})));
    seen.join().unwrap();
}

#[test]
fn retryable_statuses() {
    for status in [408, 429, 500, 503] {
        let (url, seen) = server(status, &[], "busy");
        match post(&url, Value::Null) {
            Err(JobError::Retryable(m)) => assert!(m.contains(&status.to_string()), "{m}"),
            other => panic!("{status}: {other:?}"),
        }
        seen.join().unwrap();
    }
}

#[test]
fn other_4xx_are_permanent() {
    for status in [400, 401, 404, 422] {
        let (url, seen) = server(status, &[], "");
        assert!(
            matches!(post(&url, Value::Null), Err(JobError::Permanent(_))),
            "{status}"
        );
        seen.join().unwrap();
    }
}

#[test]
fn a_retry_after_later_than_the_schedule_is_honoured() {
    let (url, seen) = server(503, &[("Retry-After", "7200")], "");
    match post(&url, Value::Null) {
        Err(JobError::RetryAfter { delay, .. }) => assert_eq!(delay, Duration::from_secs(7200)),
        other => panic!("{other:?}"),
    }
    seen.join().unwrap();
    let (url, seen) = server(502, &[("Retry-After", "1")], "");
    assert!(matches!(
        post(&url, Value::Null),
        Err(JobError::Retryable(_))
    ));
    seen.join().unwrap();
}

#[test]
fn a_429_with_retry_after_snoozes_instead_of_failing() {
    let (url, seen) = server(429, &[("Retry-After", "90")], "slow down");
    assert_eq!(
        post(&url, Value::Null),
        Err(JobError::Snooze(Duration::from_secs(90)))
    );
    seen.join().unwrap();
    let (url, seen) = server(429, &[("Retry-After", "999999999")], "");
    assert_eq!(
        post(&url, Value::Null),
        Err(JobError::Snooze(crate::handlers::webhook::MAX_RETRY_AFTER))
    );
    seen.join().unwrap();
}

#[test]
fn a_refused_connection_is_retryable() {
    let srv = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = srv.server_addr().to_ip().unwrap();
    drop(srv);
    let out = post(&format!("http://{addr}/hook"), Value::Null);
    assert!(matches!(out, Err(JobError::Retryable(_))), "{out:?}");
}

/// Regression: a redirect was followed as a GET without the payload.
#[test]
fn a_redirect_is_not_followed_and_fails_permanently() {
    let (url, seen) = server(302, &[("Location", "/elsewhere")], "");
    match post(&url, json!({"keep": "me"})) {
        Err(JobError::Permanent(m)) => assert!(m.contains("302"), "{m}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(
        seen.join().unwrap().body,
        r#"{"keep":"me"}"#,
        "one POST, nothing more"
    );
}

/// Regression: a body over 1 MiB was cut silently (and no longer parsed).
#[test]
fn a_body_over_the_cap_is_kept_cut_and_marked() {
    let big = format!("{{\"a\":\"{}\"}}", "y".repeat(2 << 20));
    let (url, seen) = server(200, &[("Content-Type", "application/json")], &big);
    let result = post(&url, Value::Null).unwrap();
    assert_eq!(result["body_truncated"], json!(true));
    assert_eq!(
        result["body"].as_str().unwrap().len() as u64,
        MAX_RESPONSE_BYTES
    );
    seen.join().unwrap();
}
