//! The generated OpenAPI document describes the contract that the hand-written
//! one did (the tables here and in `openapi_schemas.rs` are that document's
//! facts): the same operations and statuses, security, parameters and links.
//! 411 is gone on purpose: chunked bodies are accepted, and no answer is 411.
//! Every operation lists 405 (a method its path does not serve), and the
//! document endpoint 400 (it refuses any query parameter).

use std::collections::BTreeSet;

use serde_json::{json, Value};

pub(crate) type Set = BTreeSet<String>;

const TRANSPORT: [u16; 7] = [400, 408, 413, 417, 431, 500, 503];

/// Path, method, operationId, security scheme, statuses beside 405, 401 and
/// TRANSPORT.
#[rustfmt::skip]
const OPERATIONS: [(&str, &str, &str, &str, &[u16]); 22] = [
    ("/api/v1/jobs", "post", "enqueueJob", "bearerAuth", &[200, 201, 403, 409, 415, 422]),
    ("/api/v1/jobs", "get", "listOwnJobs", "bearerAuth", &[200]),
    ("/api/v1/jobs/{id}", "get", "getJob", "bearerAuth", &[200, 404]),
    ("/api/v1/jobs/{id}", "delete", "cancelOwnJob", "bearerAuth", &[200, 404, 409]),
    ("/api/v1/jobs/{id}/progress", "post", "reportProgress", "bearerAuth", &[200, 404, 409, 415, 422]),
    ("/api/v1/cron/jobs", "get", "runDueJobsGet", "cronSecret", &[200, 404]),
    ("/api/v1/cron/jobs", "post", "runDueJobsPost", "cronSecret", &[200, 404]),
    ("/api/v1/admin/jobs", "get", "listJobs", "bearerAuth", &[200, 403]),
    ("/api/v1/admin/jobs/stats", "get", "jobStats", "bearerAuth", &[200, 403]),
    ("/api/v1/admin/jobs/{id}/retry", "post", "retryJob", "bearerAuth", &[200, 403, 404, 409]),
    ("/api/v1/admin/jobs/{id}", "delete", "cancelJob", "bearerAuth", &[200, 403, 404, 409]),
    ("/api/v1/admin/jobs/retry", "post", "retryMatchingJobs", "bearerAuth", &[200, 403, 415, 422]),
    ("/api/v1/admin/jobs/cancel", "post", "cancelMatchingJobs", "bearerAuth", &[200, 403, 415, 422]),
    ("/api/v1/admin/queues", "get", "listQueues", "bearerAuth", &[200, 403]),
    ("/api/v1/admin/queues/{name}", "patch", "setQueueLimits", "bearerAuth", &[200, 403, 404, 415, 422]),
    ("/api/v1/admin/queues/{name}/pause", "post", "pauseQueue", "bearerAuth", &[200, 403, 404, 415, 422]),
    ("/api/v1/admin/queues/{name}/resume", "post", "resumeQueue", "bearerAuth", &[200, 403, 404, 415, 422]),
    ("/api/v1/admin/schedules", "get", "listSchedules", "bearerAuth", &[200, 403]),
    ("/api/v1/admin/schedules/{name}/run", "post", "runSchedule", "bearerAuth", &[200, 201, 403, 404, 415, 422]),
    ("/healthz", "get", "health", "", &[200, 503]),
    ("/metrics", "get", "metrics", "bearerAuth", &[200, 403]),
    ("/api/v1/openapi.json", "get", "openapi", "", &[200, 400]),
];

pub(crate) fn doc() -> &'static Value {
    jobq::http::openapi_document()
}

pub(crate) fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> Set {
    items.into_iter().map(str::to_string).collect()
}

/// `schema`, following a `$ref`.
pub(crate) fn resolve(schema: &Value) -> &Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("a local $ref");
            resolve(
                doc()
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{r} resolves")),
            )
        }
        None => schema,
    }
}

/// The JSON types a schema allows (empty: any), with `oneOf [X, null]` as X or null.
pub(crate) fn types(schema: &Value) -> Set {
    let s = resolve(schema);
    if let Some(one_of) = s["oneOf"].as_array() {
        return one_of.iter().flat_map(types).collect();
    }
    match &s["type"] {
        Value::String(t) => set([t.as_str()]),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Set::new(),
    }
}

/// The first value of `key` in the schema or, for `oneOf`, its branches.
pub(crate) fn keyword<'a>(schema: &'a Value, key: &str) -> &'a Value {
    let s = resolve(schema);
    if !s[key].is_null() {
        return &s[key];
    }
    let branches = s["oneOf"].as_array().into_iter().flatten();
    branches
        .map(|b| keyword(b, key))
        .find(|v| !v.is_null())
        .unwrap_or(&Value::Null)
}

pub(crate) fn schema(name: &str) -> &'static Value {
    let s = &doc()["components"]["schemas"][name];
    assert!(s.is_object(), "schema {name} is missing");
    s
}

pub(crate) fn required(name: &str) -> Set {
    let r = schema(name)["required"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    r.iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

pub(crate) fn properties(name: &str) -> Set {
    schema(name)["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_operation_and_status_of_the_contract_is_there_and_no_other() {
    let paths = doc()["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, OPERATIONS.len());
    for (path, method, id, scheme, own) in OPERATIONS {
        let op = &doc()["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        let mut want: BTreeSet<u16> = own.iter().copied().collect();
        want.insert(405);
        if !scheme.is_empty() {
            want.extend(TRANSPORT);
            want.insert(401);
        }
        let got: BTreeSet<u16> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        assert_eq!(got, want, "{id}");
        let security = op["security"].as_array().cloned().unwrap_or_default();
        let first = security
            .first()
            .and_then(|s| s.as_object()?.keys().next().cloned());
        assert_eq!(first.unwrap_or_default(), scheme, "{id}");
        for (status, answer) in op["responses"].as_object().unwrap() {
            assert!(answer["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()));
            if status.starts_with(['4', '5']) {
                let body = &answer["content"]["application/json"]["schema"];
                assert_eq!(body["$ref"], "#/components/schemas/Error", "{id} {status}");
            }
        }
    }
}

#[test]
fn a_401_names_the_bearer_scheme_and_the_cron_secret_may_be_a_query_parameter() {
    for (path, method, id, scheme, _) in OPERATIONS.iter().filter(|o| !o.3.is_empty()) {
        let header =
            &doc()["paths"][path][method]["responses"]["401"]["headers"]["WWW-Authenticate"];
        assert_eq!(header["required"], true, "{id}");
        assert_eq!(
            keyword(&header["schema"], "enum"),
            &json!(["Bearer"]),
            "{id}"
        );
        let schemes = &doc()["paths"][path][method]["security"];
        if *scheme == "cronSecret" {
            assert_eq!(
                schemes,
                &json!([{"cronSecret": []}, {"cronSecretQuery": []}])
            );
        }
    }
    let schemes = &doc()["components"]["securitySchemes"];
    assert_eq!(
        (
            &schemes["bearerAuth"]["type"],
            &schemes["bearerAuth"]["scheme"]
        ),
        (&json!("http"), &json!("bearer"))
    );
    assert_eq!(schemes["cronSecret"]["scheme"], "bearer");
    assert_eq!(
        (
            &schemes["cronSecretQuery"]["in"],
            &schemes["cronSecretQuery"]["name"]
        ),
        (&json!("query"), &json!("secret"))
    );
}

#[test]
fn parameters_are_those_of_the_contract_with_their_limits() {
    let params = |path: &str, method: &str| {
        doc()["paths"][path][method]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    for (path, method) in [
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/admin/jobs/{id}/retry", "post"),
        ("/api/v1/admin/jobs/{id}", "delete"),
    ] {
        let p = params(path, method);
        assert_eq!(p.len(), 1, "{path}");
        assert_eq!(
            (&p[0]["name"], &p[0]["in"], &p[0]["required"]),
            (&json!("id"), &json!("path"), &json!(true))
        );
        assert_eq!(
            (types(&p[0]["schema"]), keyword(&p[0]["schema"], "format")),
            (set(["string"]), &json!("uuid"))
        );
    }
    for (path, method) in [
        ("/api/v1/admin/queues/{name}", "patch"),
        ("/api/v1/admin/queues/{name}/pause", "post"),
        ("/api/v1/admin/queues/{name}/resume", "post"),
    ] {
        let p = params(path, method);
        assert_eq!(p.len(), 1, "{path}");
        assert_eq!(
            (&p[0]["name"], &p[0]["in"], &p[0]["required"]),
            (&json!("name"), &json!("path"), &json!(true))
        );
        assert_eq!(types(&p[0]["schema"]), set(["string"]));
        assert_eq!(p[0]["schema"]["pattern"], "^[a-z0-9_.:-]{1,64}$");
    }
    for method in ["get", "post"] {
        let p = params("/api/v1/cron/jobs", method);
        assert_eq!(p.len(), 1);
        let limit = &p[0];
        assert_eq!(
            (&limit["name"], &limit["in"], &limit["required"]),
            (&json!("limit"), &json!("query"), &json!(false))
        );
        let s = &limit["schema"];
        assert_eq!(
            (&s["minimum"], &s["maximum"], &s["default"]),
            (&json!(1), &json!(1000), &json!(50))
        );
    }
    let list = params("/api/v1/admin/jobs", "get");
    let names: Vec<&str> = list.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "status",
            "job_type",
            "queue",
            "entity_type",
            "entity_id",
            "owner",
            "limit",
            "cursor"
        ]
    );
    for p in &list {
        assert_eq!(
            (&p["in"], &p["required"]),
            (&json!("query"), &json!(false)),
            "{p}"
        );
        assert_eq!(
            types(&p["schema"]),
            set(if p["name"] == "limit" {
                ["integer"]
            } else {
                ["string"]
            }),
            "{p}"
        );
    }
    let statuses: Vec<String> = jobq::JobStatus::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(keyword(&list[0]["schema"], "enum"), &json!(statuses));
    let limit = &list[6]["schema"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (&json!(1), &json!(jobq::MAX_PAGE), &json!(50))
    );
    let cursor = list[7]["schema"]["pattern"].as_str().unwrap();
    assert_eq!(
        cursor,
        r"^[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    );
}

#[test]
fn every_reference_resolves_and_links_name_real_operations() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                out.extend(m.get("$ref").and_then(Value::as_str));
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc(), &mut all);
    assert!(all.len() > 20);
    for r in all {
        assert!(doc().pointer(&r[1..]).is_some(), "{r} does not resolve");
    }
    let links = doc()["paths"]["/api/v1/jobs"]["post"]["responses"]["201"]["links"]
        .as_object()
        .unwrap();
    assert_eq!(
        set(links.keys().map(String::as_str)),
        set(["GetJob", "RetryJob", "CancelJob"])
    );
    let ids: Set = OPERATIONS.iter().map(|o| o.2.to_string()).collect();
    for link in links.values() {
        assert!(
            ids.contains(link["operationId"].as_str().unwrap()),
            "{link}"
        );
        assert_eq!(link["parameters"], json!({"id": "$response.body#/id"}));
    }
    assert_eq!(doc()["openapi"], "3.1.0");
}
