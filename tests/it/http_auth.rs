//! Authentication and owner isolation over real HTTP.

use crate::backends::both;
use serde_json::json;

use crate::http_util::start_on;

both! {
fn missing_or_unknown_tokens_are_401_with_www_authenticate(db) {
    let api = start_on(&db);
    let body = json!({"job_type": "email.send"});
    let secret_looking = "jobq_this-is-not-a-real-token-0123456789";
    for token in [None, Some(secret_looking)] {
        for a in [
            api.post_json("/api/v1/jobs", token, &body),
            api.get("/api/v1/admin/jobs", token),
            api.get("/api/v1/admin/jobs/stats", token),
            api.get(&format!("/api/v1/jobs/{}", jobq::JobId::new()), token),
        ] {
            assert_eq!((a.status, a.code()), (401, "unauthorized"), "{}", a.text);
            assert_eq!(a.header("www-authenticate"), Some("Bearer"));
            assert!(!a.text.contains(secret_looking), "token echoed: {}", a.text);
        }
    }
    let a = api.call("GET", "/api/v1/admin/jobs", None, None);
    assert_eq!(a.status, 401);
}
}

both! {
fn users_are_isolated_and_admins_see_everything(db) {
    let api = start_on(&db);
    let alices = api.enqueue(&api.alice, "email.send");
    let a = api.get(&format!("/api/v1/jobs/{alices}"), Some(&api.bob));
    assert_eq!(a.status, 404);
    for (method, path) in [
        ("GET", "/api/v1/admin/jobs".to_string()),
        ("GET", "/api/v1/admin/jobs/stats".to_string()),
        ("DELETE", format!("/api/v1/admin/jobs/{alices}")),
        ("POST", format!("/api/v1/admin/jobs/{alices}/retry")),
    ] {
        let a = api.call(method, &path, Some(&api.alice), None);
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{method} {path}");
    }
    let a = api.get(&format!("/api/v1/jobs/{alices}"), Some(&api.admin));
    assert_eq!((a.status, a.body["owner"].as_str()), (200, Some("alice")));
    let list = api.get("/api/v1/admin/jobs", Some(&api.admin));
    assert_eq!(list.body["total"], 1);
    let job = api.queue.get(alices.parse().unwrap()).unwrap();
    assert_eq!(
        job.status,
        jobq::JobStatus::Pending,
        "forbidden calls changed nothing"
    );
}
}

both! {
fn a_revoked_token_is_refused_at_once(db) {
    let api = start_on(&db);
    let carol = api.queue.create_token("carol", false).unwrap();
    let id = api.enqueue(&carol.secret, "email.send");
    let path = format!("/api/v1/jobs/{id}");
    assert_eq!(api.get(&path, Some(&carol.secret)).status, 200);
    assert_eq!(api.queue.revoke_token(carol.token.id).unwrap(), 1);
    assert_eq!(api.get(&path, Some(&carol.secret)).status, 401);
    let admin = api.queue.authenticate(&api.admin).unwrap().unwrap();
    assert_eq!(api.get("/api/v1/admin/jobs", Some(&api.admin)).status, 200);
    api.queue.revoke_token(admin.id).unwrap();
    assert_eq!(api.get("/api/v1/admin/jobs", Some(&api.admin)).status, 401);
}
}
