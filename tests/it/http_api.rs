//! Every endpoint's success and error paths, over real HTTP.

use crate::backends::both;
use serde_json::{json, Value};

use crate::http_util::{start_on, start_on_with};

both! {
fn enqueue_answers_201_with_the_stored_job_field_for_field(db) {
    let api = start_on(&db);
    let a = api.post_json(
        "/api/v1/jobs",
        Some(&api.alice),
        &json!({"job_type": "email.send", "payload": {"to": "a@example.com", "note": "héllo 🎉"},
                "priority": 3, "max_attempts": 2, "delay_s": 60,
                "entity_type": "user", "entity_id": "42"}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    assert!(a
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let id = a.body["id"].as_str().unwrap().parse().unwrap();
    let stored = serde_json::to_value(api.queue.get(id).unwrap()).unwrap();
    assert_eq!(a.body, stored);
    assert_eq!(a.body["owner"], "alice");
    assert_eq!(a.body["priority"], 3);
    assert_eq!(a.body["payload"]["note"], "héllo 🎉");
}
}

both! {
fn configured_type_defaults_fill_what_the_request_left_out(db) {
    let mut catalog = crate::http_util::catalog();
    catalog
        .declare(jobq::JobType::new("email.send").priority(7))
        .unwrap();
    let api = crate::http_util::start_on_opts(&db, |o| o.catalog(catalog), |_| {});
    let a = api.post_json(
        "/api/v1/jobs",
        Some(&api.alice),
        &json!({"job_type": "email.send"}),
    );
    assert_eq!((a.status, a.body["priority"].as_i64()), (201, Some(7)));
    let b = api.post_json(
        "/api/v1/jobs",
        Some(&api.alice),
        &json!({"job_type": "email.send", "priority": 1}),
    );
    assert_eq!((b.status, b.body["priority"].as_i64()), (201, Some(1)));
}
}

/// A clock that panics once armed: a way to make a request handler panic.
#[derive(Debug, Default)]
struct PanicClock(std::sync::atomic::AtomicBool);

impl jobq::Clock for PanicClock {
    fn now(&self) -> jobq::Timestamp {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("secret internals");
        }
        jobq::SystemClock.now()
    }
}

both! {
fn a_panic_while_answering_is_a_500_without_internals_and_the_server_lives_on(db) {
    let clock = std::sync::Arc::new(PanicClock::default());
    let c = clock.clone();
    let api = crate::http_util::start_on_opts(&db, |o| o.clock(c), |_| {});
    clock.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let body = json!({"job_type": "email.send"});
    for _ in 0..3 {
        let a = api.post_json("/api/v1/jobs", Some(&api.alice), &body);
        assert_eq!((a.status, a.code()), (500, "internal"));
        assert!(!a.text.contains("secret"), "{}", a.text);
    }
    assert_eq!(api.get("/healthz", None).status, 200);
}
}

both! {
fn enqueue_refuses_bad_requests_with_the_right_status(db) {
    let api = start_on(&db);
    let send = |ct: &str, body: &str| {
        api.call(
            "POST",
            "/api/v1/jobs",
            Some(&api.alice),
            Some((ct, body.as_bytes())),
        )
    };
    let cases: [(&str, &str, u16, &str); 9] = [
        (
            "text/plain",
            r#"{"job_type":"email.send"}"#,
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            r#"{"job_type": "#,
            400,
            "malformed_json",
        ),
        (
            "application/json",
            r#"["email.send"]"#,
            422,
            "validation_failed",
        ),
        (
            "application/json",
            r#"{"job_type":"email.send","priority":"high"}"#,
            422,
            "validation_failed",
        ),
        (
            "application/json",
            r#"{"job_type":"email.send","priority":4294967296}"#,
            422,
            "validation_failed",
        ),
        (
            "application/json",
            r#"{"job_type":"email.send","max_attempts":0}"#,
            422,
            "validation_failed",
        ),
        (
            "application/json",
            r#"{"job_type":"email.send","run_at":"2030-01-01T00:00:00Z","delay_s":1}"#,
            422,
            "validation_failed",
        ),
        (
            "application/json",
            r#"{"job_type":"email.send","owner":"bob"}"#,
            422,
            "validation_failed",
        ),
        (
            "application/json",
            r#"{"job_type":"email.send","colour":"red"}"#,
            422,
            "validation_failed",
        ),
    ];
    for (ct, body, status, code) in cases {
        let a = send(ct, body);
        assert_eq!((a.status, a.code()), (status, code), "{body}: {}", a.text);
        assert!(a.body["error"]["message"].is_string());
    }
    // An unknown field's hint lists the fields a client may send: not owner.
    let typo = send("application/json", r#"{"job_type":"email.send","colour":"red"}"#);
    let hint = typo.body["error"]["message"].as_str().unwrap();
    assert!(hint.contains("expected job_type, queue, payload"), "{hint}");
    assert!(hint.contains("entity_id, unique") && !hint.contains("owner"), "{hint}");
    assert_eq!(
        api.queue.list(&Default::default(), 10, None).unwrap().total,
        0
    );
}
}

both! {
fn an_unknown_job_type_is_422_naming_the_declared_ones(db) {
    let api = start_on(&db);
    let a = api.post_json(
        "/api/v1/jobs",
        Some(&api.alice),
        &json!({"job_type": "sms.send"}),
    );
    assert_eq!(a.status, 422);
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("always.fail, call.later, email.send"), "{message}");
}
}

both! {
fn bodies_over_the_limits_are_413(db) {
    let api = start_on(&db);
    let big = format!(
        r#"{{"job_type":"email.send","payload":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let a = api.call(
        "POST",
        "/api/v1/jobs",
        Some(&api.alice),
        Some(("application/json", big.as_bytes())),
    );
    assert_eq!((a.status, a.code()), (413, "body_too_large"));
    let payload = format!(
        r#"{{"job_type":"email.send","payload":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let a = api.call(
        "POST",
        "/api/v1/jobs",
        Some(&api.alice),
        Some(("application/json", payload.as_bytes())),
    );
    assert_eq!((a.status, a.code()), (413, "payload_too_large"));
    assert_eq!(api.get("/healthz", None).status, 200);
}
}

both! {
fn reading_a_job_needs_its_owner_or_an_admin(db) {
    let api = start_on(&db);
    let id = api.enqueue(&api.alice, "email.send");
    let path = format!("/api/v1/jobs/{id}");
    let mine = api.get(&path, Some(&api.alice));
    assert_eq!(
        (mine.status, mine.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
    assert_eq!(api.get(&path, Some(&api.admin)).status, 200);
    let theirs = api.get(&path, Some(&api.bob));
    let missing_id = jobq::JobId::new().to_string();
    let missing = api.get(&format!("/api/v1/jobs/{missing_id}"), Some(&api.bob));
    assert_eq!(theirs.status, 404);
    assert_eq!(
        theirs.text.replace(&id, "ID"),
        missing.text.replace(&missing_id, "ID")
    );
    assert_eq!(theirs.headers.len(), missing.headers.len());
    let bad = api.get("/api/v1/jobs/not-a-uuid", Some(&api.alice));
    assert_eq!((bad.status, bad.code()), (400, "bad_id"));
}
}

both! {
fn unknown_paths_are_404_and_wrong_methods_405_with_allow(db) {
    let api = start_on(&db);
    let a = api.get("/nope", Some(&api.admin));
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let cases = [
        ("PUT", "/api/v1/jobs", "GET, HEAD, POST"),
        (
            "POST",
            "/api/v1/jobs/0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01",
            "GET, HEAD, DELETE",
        ),
        ("PUT", "/api/v1/cron/jobs", "GET, HEAD, POST"),
        ("POST", "/api/v1/admin/jobs", "GET, HEAD"),
        ("DELETE", "/api/v1/admin/jobs/stats", "GET, HEAD"),
        (
            "GET",
            "/api/v1/admin/jobs/0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01",
            "DELETE",
        ),
        (
            "GET",
            "/api/v1/admin/jobs/0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01/retry",
            "POST",
        ),
        ("POST", "/healthz", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let a = api.call(method, path, Some(&api.admin), None);
        assert_eq!(
            (a.status, a.header("allow")),
            (405, Some(allow)),
            "{method} {path}"
        );
        assert_eq!(a.code(), "method_not_allowed");
    }
    let get = api.get("/api/v1/admin/jobs/stats", Some(&api.admin));
    let head = api.call("HEAD", "/api/v1/admin/jobs/stats", Some(&api.admin), None);
    assert_eq!((head.status, head.text.as_str()), (200, ""), "HEAD: GET without the body");
    assert_eq!(head.header("content-length"), Some(get.text.len().to_string().as_str()));
    let a = api.call("HEAD", "/api/v1/admin/jobs/stats", Some("wrong"), None);
    assert_eq!(a.status, 401, "HEAD is checked as GET is");
}
}

both! {
fn health_answers_ok(db) {
    let api = start_on(&db);
    let a = api.get("/healthz", None);
    assert_eq!((a.status, a.body.clone()), (200, json!({"status": "ok"})));
    // The absolute form of the target, which HTTP/1.1 servers must accept.
    let raw = crate::http_util::raw(
        api.addr(),
        b"GET http://jobq.test/healthz HTTP/1.1\r\nHost: jobq.test\r\nConnection: close\r\n\r\n",
        std::time::Duration::from_secs(30),
    );
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains(r#""status":"ok""#), "{raw}");
}
}

both! {
fn the_openapi_document_parses_and_names_every_path(db) {
    let api = start_on(&db);
    let a = api.get("/api/v1/openapi.json", None);
    assert_eq!(a.status, 200);
    assert_eq!(a.body["openapi"], "3.1.0");
    let paths = a.body["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/jobs", vec!["get", "post"]),
        ("/api/v1/jobs/{id}", vec!["delete", "get"]),
        ("/api/v1/jobs/{id}/progress", vec!["post"]),
        ("/api/v1/cron/jobs", vec!["get", "post"]),
        ("/api/v1/admin/jobs", vec!["get"]),
        ("/api/v1/admin/jobs/stats", vec!["get"]),
        ("/api/v1/admin/jobs/{id}/retry", vec!["post"]),
        ("/api/v1/admin/jobs/{id}", vec!["delete"]),
        ("/api/v1/admin/jobs/retry", vec!["post"]),
        ("/api/v1/admin/jobs/cancel", vec!["post"]),
        ("/metrics", vec!["get"]),
        ("/api/v1/admin/queues", vec!["get"]),
        ("/api/v1/admin/queues/{name}", vec!["patch"]),
        ("/api/v1/admin/queues/{name}/pause", vec!["post"]),
        ("/api/v1/admin/queues/{name}/resume", vec!["post"]),
        ("/api/v1/admin/schedules", vec!["get"]),
        ("/api/v1/admin/schedules/{name}/run", vec!["post"]),
        ("/healthz", vec!["get"]),
        ("/api/v1/openapi.json", vec!["get"]),
    ];
    assert_eq!(paths.len(), expected.len());
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let mut got: Vec<&String> = item.as_object().unwrap().keys().collect();
        got.sort();
        assert_eq!(got, methods, "{path}");
    }
    let job_type = &a.body["components"]["schemas"]["NewJob"]["properties"]["job_type"];
    assert_eq!(
        job_type["enum"],
        json!(["always.fail", "call.later", "email.send", "jobq.prune"])
    );
    let fields = a.body["components"]["schemas"]["Job"]["required"]
        .as_array()
        .unwrap()
        .len();
    let job = serde_json::to_value(
        api.queue
            .enqueue(jobq::NewJob::new("email.send", Value::Null))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fields, job.as_object().unwrap().len());
}
}

both! {
fn cron_is_404_without_a_secret_and_401_with_a_wrong_one(db) {
    let off = start_on(&db);
    let a = off.call("POST", "/api/v1/cron/jobs", Some(&off.admin), None);
    assert_eq!(a.status, 404);
    let api = start_on_with(&db, |c| c.cron_secret = Some("tick-tock".into()));
    let a = api.call("POST", "/api/v1/cron/jobs", Some("wrong"), None);
    assert_eq!(
        (a.status, a.header("www-authenticate")),
        (401, Some("Bearer"))
    );
    let a = api.get("/api/v1/cron/jobs", None);
    assert_eq!(a.status, 401);
    let a = api.get("/api/v1/cron/jobs?secret=tick-tock&limit=0", None);
    assert_eq!((a.status, a.code()), (400, "bad_query"));
}
}

both! {
/// Needs `jobq::run_due` (the worker pool commit).
fn cron_runs_due_jobs_with_the_servers_handlers(db) {
    let api = start_on_with(&db, |c| c.cron_secret = Some("tick-tock".into()));
    let ok = api.enqueue(&api.alice, "email.send");
    let bad = api.enqueue(&api.alice, "always.fail");
    let later = api.enqueue(&api.alice, "call.later");
    let a = api.call(
        "POST",
        "/api/v1/cron/jobs?limit=10",
        Some("tick-tock"),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        (a.body["processed"].as_u64(), a.body["completed"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(a.body["failed"], 1);
    // A snooze is not a retry: its attempt is given back.
    assert_eq!((a.body["snoozed"].as_u64(), a.body["retried"].as_u64()), (Some(1), Some(0)));
    let snoozed = api.queue.get(later.parse().unwrap()).unwrap();
    assert_eq!((snoozed.status, snoozed.attempts, snoozed.snoozes), (jobq::JobStatus::Pending, 0, 1));
    assert!(a.body["duration_ms"].is_u64());
    let job = |id: &str| api.queue.get(id.parse().unwrap()).unwrap().status;
    assert_eq!(
        (job(&ok), job(&bad)),
        (jobq::JobStatus::Completed, jobq::JobStatus::Failed)
    );
    let a = api.get("/api/v1/cron/jobs?secret=tick-tock", None);
    assert_eq!((a.status, a.body["processed"].as_u64()), (200, Some(0)));
}
}

both! {
/// Regression: any token could enqueue the built-in prune job.
fn built_in_job_types_need_an_admin(db) {
    let api = start_on(&db);
    let body = br#"{"job_type": "jobq.prune"}"#;
    let a = api.call(
        "POST",
        "/api/v1/jobs",
        Some(&api.alice),
        Some(("application/json", body)),
    );
    assert_eq!((a.status, a.code()), (403, "forbidden"));
    let a = api.call(
        "POST",
        "/api/v1/jobs",
        Some(&api.admin),
        Some(("application/json", body)),
    );
    assert_eq!(a.status, 201, "{}", a.text);
}
}
