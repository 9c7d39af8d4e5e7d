//! Reliability: hostile input through the HTTP API. Each case is a JSON error
//! with the right status or is stored verbatim; never a 500, never HTML.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http_util::{body_of, raw, start, status_of, Answer};

const SQL: &str = "x'); DROP TABLE jobs; -- \" OR 1=1; SELECT * FROM api_tokens";

fn assert_json_error(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    let ct = a.header("content-type").unwrap_or("");
    assert!(ct.starts_with("application/json"), "{what}: {ct}");
    assert!(a.body["error"]["code"].is_string(), "{what}: {}", a.text);
    assert!(a.body["error"]["message"].is_string(), "{what}: {}", a.text);
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn hostile_enqueue_bodies_are_json_errors_or_stored_verbatim() {
    let api = start();
    let post = |body: &str| {
        let bytes = body.as_bytes();
        api.call(
            "POST",
            "/api/v1/jobs",
            Some(&api.alice),
            Some(("application/json", bytes)),
        )
    };
    let big_payload = format!(
        r#"{{"job_type":"email.send","payload":"{}"}}"#,
        "a".repeat(1_500_000)
    );
    let deep = format!(
        r#"{{"job_type":"email.send","payload":{}}}"#,
        nested(10_000)
    );
    let refusals: Vec<(String, u16)> = vec![
        ("{\"job_type\":".into(), 400),
        ("{'job_type': 'email.send'}".into(), 400),
        (
            r#"{"job_type":"email.send","payload":"\ud800"}"#.into(),
            400,
        ),
        (
            r#"{"job_type":"email.send","payload":"\udc00x"}"#.into(),
            400,
        ),
        (
            "{\"job_type\":\"email.send\",\"payload\":\"raw\u{0}nul\"}".into(),
            400,
        ),
        (deep, 400),
        (big_payload, 413),
        (r#"{"job_type":"email.send","colour":1}"#.into(), 422),
        (
            r#"{"job_type":"email.send","priority":2147483648}"#.into(),
            422,
        ),
        (
            r#"{"job_type":"email.send","priority":-2147483649}"#.into(),
            422,
        ),
        (r#"{"job_type":"email.send","priority":1e300}"#.into(), 422),
        (r#"{"job_type":"email.send","max_attempts":-1}"#.into(), 422),
        (r#"{"job_type":"email.send","max_attempts":0}"#.into(), 422),
        (
            r#"{"job_type":"email.send","max_attempts":4294967296}"#.into(),
            422,
        ),
        (format!(r#"{{"job_type":{}}}"#, json!(SQL)), 422),
        (r#"["email.send"]"#.into(), 422),
        (
            r#"{"job_type":"email.send","entity_type":"t","entity_id":"\u0000"}"#.into(),
            422,
        ),
        ("".into(), 400),
    ];
    for (body, status) in refusals {
        assert_json_error(
            &post(&body),
            status,
            &body.chars().take(80).collect::<String>(),
        );
    }
    assert_eq!(
        api.queue.list(&Default::default(), 10, None).unwrap().total,
        0
    );

    let stored = [
        json!({"job_type": "email.send", "payload": {"q": SQL, "nul": "a\u{0}b", "k\u{0}": [SQL]},
               "entity_type": SQL, "entity_id": "\u{1}\u{7f}", "priority": i32::MIN, "max_attempts": jobq::MAX_ATTEMPTS}),
        json!({"job_type": "email.send", "payload": serde_json::from_str::<Value>(&nested(100)).unwrap(),
               "priority": i32::MAX}),
    ];
    for body in stored {
        let a = post(&body.to_string());
        assert_eq!(a.status, 201, "{}", a.text);
        let id = a.body["id"].as_str().unwrap().parse().unwrap();
        let job = serde_json::to_value(api.queue.get(id).unwrap()).unwrap();
        for key in [
            "payload",
            "entity_type",
            "entity_id",
            "priority",
            "max_attempts",
        ] {
            if let Some(want) = body.get(key) {
                assert_eq!(&job[key], want, "{key} stored verbatim");
            }
        }
    }
}

#[test]
fn hostile_ids_queries_and_a_10_mb_body_are_json_errors() {
    let api = start();
    let admin = Some(api.admin.as_str());
    let cases: [(&str, &str, u16); 9] = [
        ("GET", "/api/v1/jobs/not-a-uuid", 400),
        ("GET", "/api/v1/jobs/1%20OR%201=1", 400),
        ("GET", "/api/v1/jobs/%00", 400),
        (
            "DELETE",
            "/api/v1/admin/jobs/'%3B%20DROP%20TABLE%20jobs",
            400,
        ),
        ("POST", "/api/v1/admin/jobs/..%2F..%2Fetc/retry", 400),
        ("GET", "/api/v1/admin/jobs?limit=-1", 400),
        ("GET", "/api/v1/admin/jobs?limit=99999999999999999999", 400),
        ("GET", "/api/v1/admin/jobs?cursor=%27%20OR%201%3D1--", 400),
        ("GET", "/api/v1/admin/jobs?status=pending%27--", 400),
    ];
    for (method, path, status) in cases {
        assert_json_error(&api.call(method, path, admin, None), status, path);
    }
    let a = api.get(
        &format!("/api/v1/admin/jobs?owner={}", "%27%22%3B--"),
        admin,
    );
    assert_eq!(
        (a.status, a.body["total"].as_u64()),
        (200, Some(0)),
        "{}",
        a.text
    );

    let head = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 10485760\r\n";
    let answer = raw(
        api.addr(),
        format!("{head}Authorization: Bearer {}\r\n\r\n", api.alice).as_bytes(),
        Duration::from_secs(10),
    );
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(body_of(&answer)["error"]["code"].is_string(), "{answer}");
}
