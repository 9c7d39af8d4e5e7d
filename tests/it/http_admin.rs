//! The admin endpoints over real HTTP: list, stats, retry and cancel.

use crate::backends::both;
use serde_json::Value;

use crate::http_util::start_on;

both! {
fn admins_list_with_filters_and_pages(db) {
    let api = start_on(&db);
    for _ in 0..5 {
        api.enqueue(&api.alice, "email.send");
    }
    for _ in 0..3 {
        api.enqueue(&api.bob, "always.fail");
    }
    let all = api.get("/api/v1/admin/jobs", Some(&api.admin));
    assert_eq!((all.status, all.body["total"].as_u64()), (200, Some(8)));
    let bobs = api.get(
        "/api/v1/admin/jobs?owner=bob&status=pending",
        Some(&api.admin),
    );
    assert_eq!(bobs.body["total"], 3);
    assert!(bobs.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["owner"] == "bob"));
    let typed = api.get("/api/v1/admin/jobs?job_type=email.send", Some(&api.admin));
    assert_eq!(typed.body["total"], 5);
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/jobs?limit=3".to_string();
    loop {
        let page = api.get(&path, Some(&api.admin));
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(
            page.body["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].clone()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/admin/jobs?limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort_by_key(|v| v.to_string());
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (8, 8));
}
}

both! {
fn bad_list_queries_are_400(db) {
    let api = start_on(&db);
    for q in [
        "status=running",
        "limit=0",
        "limit=501",
        "limit=x",
        "cursor=zzz",
        "cursor=-5.0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01",
        "cursor=%2B5.0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01",
        "cursor=.0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01",
        "colour=red",
        "limit=1&limit=2",
    ] {
        let a = api.get(&format!("/api/v1/admin/jobs?{q}"), Some(&api.admin));
        assert_eq!((a.status, a.code()), (400, "bad_query"), "{q}: {}", a.text);
    }
    // Endpoints that take no query refuse one too (found by a fresh-user
    // pass: they ignored it).
    let id = api.enqueue(&api.alice, "email.send");
    let gets = [
        "/api/v1/admin/jobs/stats",
        "/api/v1/admin/queues",
        "/api/v1/admin/schedules",
        "/api/v1/openapi.json",
    ];
    for path in gets {
        let a = api.get(&format!("{path}?x=1"), Some(&api.admin));
        assert_eq!((a.status, a.code()), (400, "bad_query"), "{path}: {}", a.text);
        assert_eq!(a.body["error"]["message"], "unknown query parameter \"x\"");
        assert_eq!(api.get(path, Some(&api.admin)).status, 200, "{path}");
    }
    let own = format!("/api/v1/jobs/{id}");
    let a = api.get(&format!("{own}?status=pending"), Some(&api.alice));
    assert_eq!((a.status, a.code()), (400, "bad_query"), "{}", a.text);
    assert_eq!(api.get(&own, Some(&api.alice)).status, 200);
    let a = api.post_json(
        &format!("/api/v1/admin/jobs/{id}/retry?force=1"),
        Some(&api.admin),
        &serde_json::json!({}),
    );
    assert_eq!((a.status, a.code()), (400, "bad_query"), "{}", a.text);
    // The lists still take theirs, and health checks anything.
    assert_eq!(api.get("/api/v1/jobs?limit=5", Some(&api.alice)).status, 200);
    assert_eq!(api.get("/healthz?probe=lb", None).status, 200);
}
}

both! {
fn stats_count_jobs_by_status_and_type(db) {
    let api = start_on(&db);
    api.enqueue(&api.alice, "email.send");
    let id = api.enqueue(&api.alice, "email.send");
    api.queue.cancel(id.parse().unwrap()).unwrap();
    let a = api.get("/api/v1/admin/jobs/stats", Some(&api.admin));
    assert_eq!(a.status, 200);
    assert_eq!(a.body["total"], 2);
    assert_eq!(a.body["by_status"]["pending"], 1);
    assert_eq!(a.body["by_status"]["cancelled"], 1);
    assert_eq!(a.body["by_type"]["email.send"]["pending"], 1);
    assert_eq!(a.body["pending"]["ready"], 1);
}
}

both! {
fn cancel_and_retry_follow_the_state_machine(db) {
    let api = start_on(&db);
    let id = api.enqueue(&api.alice, "email.send");
    let retry = format!("/api/v1/admin/jobs/{id}/retry");
    let job = format!("/api/v1/admin/jobs/{id}");
    let a = api.call("POST", &retry, Some(&api.admin), None);
    assert_eq!((a.status, a.code()), (409, "conflict"));
    assert_eq!(a.body["error"]["status"], "pending");
    let a = api.call("DELETE", &job, Some(&api.admin), None);
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("cancelled"))
    );
    let a = api.call("POST", &retry, Some(&api.admin), None);
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("pending"))
    );

    let done = api.enqueue(&api.alice, "email.send");
    let claimed = api
        .queue
        .claim("t", None, 10, std::time::Duration::from_secs(60))
        .unwrap();
    for j in &claimed {
        api.queue
            .complete(j.id, j.lease_token, &Value::Null)
            .unwrap();
    }
    let a = api.call(
        "DELETE",
        &format!("/api/v1/admin/jobs/{done}"),
        Some(&api.admin),
        None,
    );
    assert_eq!(
        (a.status, a.body["error"]["status"].as_str()),
        (409, Some("completed"))
    );
    let missing = jobq::JobId::new();
    let a = api.call(
        "DELETE",
        &format!("/api/v1/admin/jobs/{missing}"),
        Some(&api.admin),
        None,
    );
    assert_eq!(a.status, 404);
    let a = api.call(
        "POST",
        "/api/v1/admin/jobs/42/retry",
        Some(&api.admin),
        None,
    );
    assert_eq!((a.status, a.code()), (400, "bad_id"));
}
}
