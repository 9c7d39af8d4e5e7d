//! Every JSON-body endpoint reads only a JSON object: other JSON is a 422 that
//! says so, never read as a positional form of the fields.

use crate::backends::both;
use serde_json::json;

use crate::http_util::{start_on, Api};

/// JSON texts that are not objects, and what the refusal calls them.
const NOT_OBJECTS: [(&str, &str); 6] = [
    ("[]", "an array"),
    (r#"["email.send"]"#, "an array"),
    (r#""email.send""#, "a string"),
    ("7", "a number"),
    ("true", "a boolean"),
    ("null", "null"),
];

/// (method, path, admin?) of every endpoint that takes a JSON body; `{id}` is a
/// job of alice's.
const ENDPOINTS: [(&str, &str, bool); 6] = [
    ("POST", "/api/v1/jobs", false),
    ("POST", "/api/v1/jobs/{id}/progress", false),
    ("POST", "/api/v1/admin/queues/default/pause", true),
    ("PATCH", "/api/v1/admin/queues/default", true),
    ("POST", "/api/v1/admin/jobs/retry", true),
    ("POST", "/api/v1/admin/jobs/cancel", true),
];

fn alices_job(api: &Api) -> String {
    let a = api.post_json(
        "/api/v1/jobs",
        Some(&api.alice),
        &json!({"job_type": "email.send"}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

both! {
fn every_json_body_endpoint_refuses_json_that_is_not_an_object(db) {
    let api = start_on(&db);
    let id = alices_job(&api);
    for (method, path, admin) in ENDPOINTS {
        let path = path.replace("{id}", &id);
        let token = if admin { &api.admin } else { &api.alice };
        for (body, what) in NOT_OBJECTS {
            let a = api.call(method, &path, Some(token), Some(("application/json", body.as_bytes())));
            assert_eq!((a.status, a.code()), (422, "validation_failed"), "{method} {path} {body}: {}", a.text);
            let message = a.body["error"]["message"].as_str().unwrap();
            assert_eq!(
                message,
                format!("invalid body: the body must be a JSON object, not {what}"),
                "{method} {path} {body}"
            );
        }
        let a = api.call(method, &path, Some(token), Some(("application/json", b"[")));
        assert_eq!((a.status, a.code()), (400, "malformed_json"), "{method} {path}: {}", a.text);
    }
}
}

both! {
fn a_bulk_retry_refuses_the_filter_written_as_a_positional_array(db) {
    let api = start_on(&db);
    let id = alices_job(&api);
    let gone = api.call("DELETE", &format!("/api/v1/jobs/{id}"), Some(&api.alice), None);
    assert_eq!(gone.status, 200, "{}", gone.text);
    // Serde alone reads this as {"status": null, ..., "dry_run": false}: a
    // retry of every failed and cancelled job.
    let positional = br#"[null, null, null, null, null, null, null, false]"#;
    for action in ["retry", "cancel"] {
        let path = format!("/api/v1/admin/jobs/{action}");
        let a = api.call("POST", &path, Some(&api.admin), Some(("application/json", positional)));
        assert_eq!((a.status, a.code()), (422, "validation_failed"), "{action}: {}", a.text);
        assert!(a.text.contains("must be a JSON object, not an array"), "{}", a.text);
    }
    let job = api.queue.get(id.parse().unwrap()).unwrap();
    assert_eq!(job.status, jobq::JobStatus::Cancelled);
}
}

both! {
fn bulk_filters_follow_the_job_request_rules_and_name_the_field(db) {
    let api = start_on(&db);
    alices_job(&api);
    let cases = [
        (
            "/api/v1/admin/jobs/cancel",
            r#"{"queue": "BAD Q", "dry_run": true}"#,
            "invalid queue: ",
        ),
        (
            "/api/v1/admin/jobs/cancel",
            r#"{"job_type": "Not A Type", "dry_run": true}"#,
            "invalid job_type: ",
        ),
        (
            "/api/v1/admin/jobs/cancel",
            r#"{"status": "pending", "status": "in_progress", "dry_run": true}"#,
            "invalid status: given more than once",
        ),
        (
            "/api/v1/admin/jobs/retry",
            r#"{"status": "completed", "dry_run": true}"#,
            "invalid status: unknown variant `completed`",
        ),
        (
            "/api/v1/admin/jobs/retry",
            r#"{"owner": 7, "dry_run": true}"#,
            "invalid owner: ",
        ),
        (
            "/api/v1/admin/jobs/retry",
            r#"{"owner": "", "dry_run": true}"#,
            "invalid owner: must be 1-255 bytes",
        ),
    ];
    for (path, body, want) in cases {
        let a = api.call("POST", path, Some(&api.admin), Some(("application/json", body.as_bytes())));
        assert_eq!((a.status, a.code()), (422, "validation_failed"), "{body}: {}", a.text);
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(want), "{body}: {message}");
    }
    let fine = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"queue": "default", "job_type": "email.send", "dry_run": true}),
    );
    assert_eq!((fine.status, &fine.body["count"]), (200, &json!(1)), "{}", fine.text);
    // null is a field left out, as the OpenAPI document's nullable filters say.
    let nulls = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"status": null, "queue": null, "owner": null, "dry_run": true}),
    );
    assert_eq!((nulls.status, &nulls.body["count"]), (200, &json!(1)), "{}", nulls.text);
    let long = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"entity_type": "x".repeat(256), "dry_run": true}),
    );
    assert_eq!(long.status, 422, "longer than any entity_type: {}", long.text);
    // A null dry_run is a field left out too: a real change (of nothing here).
    let none = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"job_type": "nothing.here", "dry_run": null}),
    );
    assert_eq!((none.status, &none.body["count"]), (200, &json!(0)), "{}", none.text);
    for query in ["owner=", "entity_id=", &format!("entity_type={}", "x".repeat(256))] {
        let a = api.get(&format!("/api/v1/admin/jobs?{query}"), Some(&api.admin));
        assert_eq!(a.status, 400, "{query}: {}", a.text);
    }
}
}

both! {
fn queue_and_schedule_endpoints_refuse_repeated_or_unknown_fields(db) {
    let api = start_on(&db);
    let json = |body: &'static str| Some(("application/json", body.as_bytes()));
    let path = "/api/v1/admin/queues/default";
    let a = api.call("PATCH", path, Some(&api.admin), json(r#"{"concurrency": 2, "concurrency": 3}"#));
    assert_eq!((a.status, a.code()), (422, "validation_failed"), "{}", a.text);
    assert!(a.text.contains("invalid concurrency: given more than once"), "{}", a.text);
    let q = api.get("/api/v1/admin/queues", Some(&api.admin));
    assert_eq!(q.body["queues"][0]["concurrency"], serde_json::Value::Null, "unchanged: {}", q.text);
    let a = api.call("PATCH", path, Some(&api.admin), json(r#"{"concurrency": 2}"#));
    assert_eq!(a.status, 200, "{}", a.text);
    // A schedule run takes no body: fields are refused, not ignored.
    let run = "/api/v1/admin/schedules/nope/run";
    let a = api.call("POST", run, Some(&api.admin), json(r#"{"x": 1}"#));
    assert_eq!((a.status, a.code()), (422, "validation_failed"), "{}", a.text);
    assert_eq!(a.body["error"]["message"], "invalid field: unknown field \"x\"");
    let a = api.call("POST", run, Some(&api.admin), None);
    assert_eq!(a.status, 404, "{}", a.text);
    let a = api.call("POST", run, Some(&api.admin), json("{}"));
    assert_eq!(a.status, 404, "{}", a.text);
}
}
