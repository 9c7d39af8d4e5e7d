//! Fuzzing (proptest) of HTTP request parsing and routing against a live
//! server: arbitrary methods, paths, queries, headers and bodies, sent raw.
//! Every answer is JSON (an `{"error": {...}}` object for 4xx and 5xx), never a
//! 500, never HTML, never a token echoed back; the server keeps answering.

use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;

use crate::http_util::{raw, start_with, status_of, Api};

/// One server for all cases (a case is one request on its own connection).
fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        start_with(|c| {
            c.read_timeout = Duration::from_secs(2);
            c.cron_secret = Some("cron-secret-for-fuzzing".into());
        })
    })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"
        ])
        .prop_map(String::from),
        "[A-Z]{1,12}",
        "[!-~]{1,12}",
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "api",
            "v1",
            "jobs",
            "admin",
            "stats",
            "retry",
            "cron",
            "healthz",
            "openapi.json",
            "..",
            ".",
            "",
            "%00",
            "%2F",
            "%ZZ",
            "é",
            "🎉",
            "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01",
        ])
        .prop_map(String::from),
        "[a-zA-Z0-9._~%-]{0,16}",
        "[!-~]{0,16}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    let path = prop::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/")));
    let known = prop::sample::select(vec![
        "/api/v1/jobs",
        "/api/v1/jobs/x",
        "/api/v1/admin/jobs",
        "/api/v1/admin/jobs/stats",
        "/api/v1/cron/jobs",
        "/healthz",
        "/api/v1/openapi.json",
    ])
    .prop_map(String::from);
    let query = prop::option::of("[!-~&=]{0,40}");
    (prop_oneof![path, known], query).prop_map(|(p, q)| match q {
        Some(q) => format!("{p}?{q}"),
        None => p,
    })
}

/// Which credentials a request carries.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Admin,
    User,
    Cron,
    Garbage(String),
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        Just(Auth::Admin),
        Just(Auth::User),
        Just(Auth::Cron),
        "[ -~]{0,40}".prop_map(Auth::Garbage),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name =
        "[A-Za-z][A-Za-z0-9-]{0,15}".prop_filter("framing headers are chosen by the test", |n| {
            let n = n.to_ascii_lowercase();
            ![
                "content-length",
                "transfer-encoding",
                "expect",
                "connection",
                "host",
            ]
            .contains(&n.as_str())
        });
    let pair = prop_oneof![
        (name, "[ -~]{0,40}"),
        (
            Just("Content-Type".to_string()),
            prop::sample::select(vec![
                "application/json",
                "application/json; charset=utf-8",
                "text/html",
                "",
                "*/*",
            ])
            .prop_map(String::from)
        ),
    ];
    prop::collection::vec(pair, 0..4)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..200),
        "\\PC{0,100}".prop_map(String::into_bytes),
        (
            prop::sample::select(vec!["email.send", "always.fail", "nope", ""]),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<i64>()),
            "\\PC{0,20}",
        )
            .prop_map(|(t, p, m, s)| {
                let mut v = serde_json::json!({"job_type": t, "payload": {"s": s}});
                if let Some(p) = p {
                    v["priority"] = p.into();
                }
                if let Some(m) = m {
                    v["max_attempts"] = m.into();
                }
                v.to_string().into_bytes()
            }),
    ]
}

fn request(
    method: &str,
    target: &str,
    auth: &Auth,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let api = api();
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    match auth {
        Auth::None => {}
        Auth::Admin => head += &format!("Authorization: Bearer {}\r\n", api.admin),
        Auth::User => head += &format!("Authorization: Bearer {}\r\n", api.alice),
        Auth::Cron => head += "Authorization: Bearer cron-secret-for-fuzzing\r\n",
        Auth::Garbage(g) => head += &format!("Authorization: {g}\r\n"),
    }
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_json_answer_never_a_500(
        method in method(), target in target(), auth in auth(), headers in headers(), body in body()
    ) {
        let api = api();
        let bytes = request(&method, &target, &auth, &headers, &body);
        let answer = raw(api.addr(), &bytes, Duration::from_secs(10));
        let status = status_of(&answer);
        prop_assert!((200..500).contains(&status) || status == 503, "status {}: {}", status, answer);
        let (head, text) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        prop_assert!(!answer.contains(&api.admin) && !answer.contains(&api.alice), "token echoed");
        if method != "HEAD" {
            let ct = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-type:"));
            prop_assert!(ct.is_some_and(|l| l.contains("application/json")), "{}", head);
            let json: Value = serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("{e}: {answer}")))?;
            if status >= 400 {
                prop_assert!(json["error"]["code"].is_string() && json["error"]["message"].is_string(), "{}", text);
            }
        }
    }
}

#[test]
fn the_server_still_answers_after_the_fuzzing() {
    let a = api().get("/healthz", None);
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("ok")));
}
