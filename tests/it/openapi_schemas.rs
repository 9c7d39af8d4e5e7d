//! The generated OpenAPI document's schemas are the contract's: the job
//! request with its rules, every job field required with its type, and the
//! other bodies' fields (facts of the hand-written document it replaced).

use serde_json::json;

use crate::openapi_contract::{
    doc, keyword, properties, required, resolve, schema, set, types, Set,
};

#[test]
fn the_job_request_is_json_with_the_contracts_fields_and_rules() {
    let body = &doc()["paths"]["/api/v1/jobs"]["post"]["requestBody"];
    assert_eq!(body["required"], true);
    assert_eq!(
        body["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewJob"
    );
    let fields = [
        "job_type",
        "queue",
        "payload",
        "priority",
        "max_attempts",
        "run_at",
        "delay_s",
        "entity_type",
        "entity_id",
        "unique",
    ];
    assert_eq!(
        properties("NewJob"),
        set(fields),
        "owner comes from the token"
    );
    assert_eq!(required("NewJob"), set(["job_type"]));
    let s = schema("NewJob");
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(s["not"], json!({"required": ["run_at", "delay_s"]}));
    assert_eq!(
        s["dependentRequired"],
        json!({"entity_type": ["entity_id"], "entity_id": ["entity_type"]})
    );
    let p = &s["properties"];
    assert_eq!(p["job_type"]["pattern"], "^[a-z0-9_.:-]{1,64}$");
    assert_eq!(p["queue"]["pattern"], "^[a-z0-9_.:-]{1,64}$");
    assert_eq!(types(&p["payload"]), Set::new(), "any JSON");
    let range = |f: &str| (p[f]["minimum"].clone(), p[f]["maximum"].clone());
    assert_eq!(range("priority"), (json!(i32::MIN), json!(i32::MAX)));
    assert_eq!(range("max_attempts"), (json!(1), json!(jobq::MAX_ATTEMPTS)));
    assert_eq!(range("delay_s"), (json!(0), json!(jobq::MAX_DELAY_S)));
    for f in ["entity_type", "entity_id"] {
        assert_eq!(
            (&p[f]["minLength"], &p[f]["maxLength"]),
            (&json!(1), &json!(jobq::MAX_REF_BYTES))
        );
    }
    for (f, t) in [
        ("queue", "string"),
        ("priority", "integer"),
        ("max_attempts", "integer"),
        ("run_at", "string"),
        ("delay_s", "integer"),
        ("entity_type", "string"),
        ("entity_id", "string"),
    ] {
        assert_eq!(types(&p[f]), set([t]), "{f} may be omitted, not null");
    }
    assert_eq!(keyword(&p["run_at"], "format"), "date-time");
}

/// Each field of the job: its JSON types (with null when nullable) and format.
const JOB_FIELDS: [(&str, &[&str], &str); 27] = [
    ("id", &["string"], "uuid"),
    ("job_type", &["string"], ""),
    ("queue", &["string"], ""),
    ("status", &["string"], ""),
    ("priority", &["integer"], "int32"),
    ("payload", &[], ""),
    ("result", &[], ""),
    ("attempts", &["integer"], ""),
    ("max_attempts", &["integer"], ""),
    ("snoozes", &["integer"], ""),
    ("next_retry", &["string"], "date-time"),
    ("error_message", &["string", "null"], ""),
    ("error_context", &["object", "null"], ""),
    ("entity_type", &["string", "null"], ""),
    ("entity_id", &["string", "null"], ""),
    ("owner", &["string", "null"], ""),
    ("created_at", &["string"], "date-time"),
    ("updated_at", &["string"], "date-time"),
    ("started_at", &["string", "null"], "date-time"),
    ("completed_at", &["string", "null"], "date-time"),
    ("locked_by", &["string", "null"], ""),
    ("lease_expires_at", &["string", "null"], "date-time"),
    ("cancel_requested", &["boolean"], ""),
    ("progress", &["object", "null"], ""),
    ("unique", &["object", "null"], ""),
    ("schedule", &["string", "null"], ""),
    ("fire_time", &["string", "null"], "date-time"),
];

#[test]
fn every_job_field_is_required_with_its_type() {
    let names = JOB_FIELDS.iter().map(|f| f.0);
    assert_eq!(required("Job"), set(names.clone()));
    assert_eq!(
        properties("Job"),
        set(names.chain(["unreadable"])),
        "unreadable: only when set"
    );
    let p = &schema("Job")["properties"];
    for (field, want, format) in JOB_FIELDS {
        assert_eq!(types(&p[field]), set(want.iter().copied()), "{field}");
        if !format.is_empty() {
            assert_eq!(keyword(&p[field], "format"), format, "{field}");
        }
    }
    assert_eq!(p["job_type"]["pattern"], "^[a-z0-9_.:-]{1,64}$");
    assert_eq!(p["queue"]["pattern"], "^[a-z0-9_.:-]{1,64}$");
    assert_eq!(
        (&p["attempts"]["minimum"], &p["max_attempts"]["minimum"]),
        (&json!(0), &json!(1))
    );
    let statuses: Vec<String> = jobq::JobStatus::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(keyword(&p["status"], "enum"), &json!(statuses));
    assert_eq!(schema("Job")["additionalProperties"], false);
}

#[test]
fn the_other_bodies_keep_their_fields() {
    let counts = ["pending", "in_progress", "completed", "failed", "cancelled"];
    let queue = [
        "name",
        "pending",
        "running",
        "concurrency",
        "rate_limit",
        "paused",
        "paused_until",
    ];
    let bodies: [(&str, &[&str]); 9] = [
        ("JobPage", &["jobs", "next_cursor", "total"]),
        (
            "Stats",
            &[
                "total",
                "by_status",
                "pending",
                "reserved",
                "oldest_ready_age_ms",
                "by_type",
                "at",
                "by_queue",
                "unserved",
                "paused",
            ],
        ),
        ("StatusCounts", &counts),
        ("PendingCounts", &["ready", "scheduled", "retrying"]),
        (
            "RunSummary",
            &[
                "processed",
                "completed",
                "retried",
                "snoozed",
                "failed",
                "duration_ms",
            ],
        ),
        ("Health", &["status"]),
        ("Error", &["error"]),
        ("QueueInfo", &queue),
        ("QueueList", &["queues"]),
    ];
    for (name, fields) in bodies {
        assert_eq!(required(name), set(fields.iter().copied()), "{name}");
        assert_eq!(properties(name), set(fields.iter().copied()), "{name}");
        assert_eq!(schema(name)["additionalProperties"], false, "{name}");
    }
    let stats = &schema("Stats")["properties"];
    assert_eq!(
        types(&stats["oldest_ready_age_ms"]),
        set(["integer", "null"])
    );
    for by in ["by_type", "by_queue"] {
        let counts = resolve(&stats[by]["additionalProperties"]);
        assert_eq!(counts, schema("StatusCounts"), "{by}");
    }
    assert_eq!(
        types(&schema("JobPage")["properties"]["next_cursor"]),
        set(["string", "null"])
    );
    assert_eq!(
        keyword(&schema("Health")["properties"]["status"], "enum"),
        &json!(["ok"])
    );
    let detail = resolve(&schema("Error")["properties"]["error"]);
    assert_eq!(detail["required"], json!(["code", "message"]));
    assert_eq!(detail["additionalProperties"], false);
    assert_eq!(
        resolve(&detail["properties"]["status"]),
        schema("JobStatus"),
        "409 only"
    );
}

#[test]
fn a_queue_shows_its_limits_and_the_queue_bodies_are_closed() {
    let q = &schema("QueueInfo")["properties"];
    assert_eq!(q["name"]["pattern"], "^[a-z0-9_.:-]{1,64}$");
    assert_eq!(types(&q["concurrency"]), set(["integer", "null"]));
    assert_eq!(q["concurrency"]["minimum"], 1);
    assert_eq!(types(&q["rate_limit"]), set(["string", "null"]));
    let rate = keyword(&q["rate_limit"], "pattern");
    assert_eq!(rate, "^0*[1-9][0-9]{0,8}/0*[1-9][0-9]{0,8}(ms|s|m|h|d)$");
    assert_eq!(types(&q["paused_until"]), set(["string", "null"]));
    assert_eq!(keyword(&q["paused_until"], "format"), "date-time");
    let body = |path: &str, method: &str| &doc()["paths"][path][method]["requestBody"];
    let patch = body("/api/v1/admin/queues/{name}", "patch");
    assert_ne!(patch["required"], true, "no body: nothing changes");
    let limits = resolve(&patch["content"]["application/json"]["schema"]);
    assert_eq!(limits["additionalProperties"], false);
    assert!(limits["required"].is_null(), "absent: unchanged");
    let c = &limits["properties"]["concurrency"];
    assert_eq!(types(c), set(["integer", "null"]), "null: unlimited");
    assert_eq!(
        (&c["minimum"], &c["maximum"]),
        (&json!(1), &json!(jobq::MAX_CONCURRENCY))
    );
    let rate = &limits["properties"]["rate_limit"];
    assert_eq!(types(rate), set(["string", "null"]));
    assert_eq!(
        keyword(rate, "pattern"),
        "^0*[1-9][0-9]{0,8}/0*[1-9][0-9]{0,8}(ms|s|m|h|d)$"
    );
    let pause = body("/api/v1/admin/queues/{name}/pause", "post");
    assert_ne!(pause["required"], true, "the pause body is optional");
    let pause = resolve(&pause["content"]["application/json"]["schema"]);
    assert_eq!(pause["additionalProperties"], false);
    let for_s = &pause["properties"]["for_s"];
    assert_eq!(types(for_s), set(["integer"]));
    assert_eq!(
        (&for_s["minimum"], &for_s["maximum"]),
        (&json!(1), &json!(jobq::MAX_DELAY_S))
    );
    assert!(body("/api/v1/admin/queues/{name}/resume", "post").is_null());
}

#[test]
fn the_bulk_endpoints_take_a_closed_filter_and_answer_a_count() {
    let filter = set([
        "status",
        "queue",
        "job_type",
        "entity_type",
        "entity_id",
        "owner",
        "older_than_s",
        "dry_run",
    ]);
    assert_eq!(properties("BulkCount"), set(["count"]));
    assert_eq!(required("BulkCount"), set(["count"]));
    // Each change's filter names only the statuses it moves.
    for (path, name, statuses) in [
        ("retry", "RetryFilter", ["failed", "cancelled"]),
        ("cancel", "CancelFilter", ["pending", "in_progress"]),
    ] {
        assert_eq!(properties(name), filter, "{name}");
        assert!(required(name).is_empty(), "{name}");
        assert_eq!(schema(name)["additionalProperties"], false, "{name}");
        let body = &doc()["paths"][format!("/api/v1/admin/jobs/{path}")]["post"]["requestBody"];
        assert_eq!(body["required"], true, "{path}");
        let body_schema = &body["content"]["application/json"]["schema"];
        assert_eq!(
            body_schema["$ref"],
            format!("#/components/schemas/{name}"),
            "{path}"
        );
        let status = serde_json::to_string(&schema(name)["properties"]["status"]).unwrap();
        let at = status
            .find("#/components/schemas/")
            .expect("status names its schema");
        let rest = &status[at + "#/components/schemas/".len()..];
        let named = &rest[..rest.find('"').unwrap()];
        let values: Vec<String> = schema(named)["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}.status: {status}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(values, statuses, "{name}");
    }
    let metrics = &doc()["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    let types: Vec<&String> = metrics.as_object().unwrap().keys().collect();
    assert!(
        types[0].starts_with("application/openmetrics-text"),
        "{types:?}"
    );
}

#[test]
fn no_description_speaks_rustdoc() {
    // The descriptions come from doc comments: a Rust path or an intra-doc
    // link means nothing to an HTTP client (found by a fresh-user pass).
    fn walk(v: &serde_json::Value, at: &str, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let (true, Some(text)) = (k == "description", v.as_str()) {
                        let rusty = ["[`", "crate::", "NewJob::", "](", "Self::"];
                        if rusty.iter().any(|r| text.contains(r)) {
                            bad.push(format!("{at}: {text}"));
                        }
                    }
                    walk(v, &format!("{at}/{k}"), bad);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    walk(doc(), "", &mut bad);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
