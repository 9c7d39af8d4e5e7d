//! The dashboard's guards over plain HTTP: sign-in, the cookie, sessions that
//! end (sign-out, revocation), the origin and form-token checks on every POST,
//! escaping and the security headers; the admin bulk endpoints. On both
//! backends.

use std::time::Duration;

use jobq::{JobStatus, NewJob};
use serde_json::json;

use crate::backends::both;
use crate::http_util::{start_on, Api};

/// A client that never follows redirects, sending `cookie` when given.
pub fn call(
    api: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", api.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = agent
        .run(req.body(body.as_bytes().to_vec()).unwrap())
        .unwrap();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (res.status().as_u16(), headers, text)
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub fn origin(api: &Api) -> String {
    api.base.clone()
}

/// Signs in with `token`; the session cookie (`name=value`).
pub fn sign_in(api: &Api, token: &str) -> String {
    let form = format!("token={token}");
    let o = origin(api);
    let (status, headers, _) = call(
        api,
        "POST",
        "/dashboard/login",
        &[
            ("Origin", &o),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    );
    assert_eq!(status, 303);
    let set = header(&headers, "Set-Cookie").unwrap().to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(set.contains(part), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

/// The session's form token, read from a page.
pub fn csrf(api: &Api, cookie: &str) -> String {
    let (_, _, page) = call(api, "GET", "/dashboard", &[("Cookie", cookie)], "");
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..at + 64].to_string()
}

pub fn post(api: &Api, path: &str, cookie: &str, site: Option<&str>, form: &str) -> u16 {
    let mut h = vec![
        ("Cookie", cookie),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    if let Some(s) = site {
        h.push(("Sec-Fetch-Site", s));
    }
    call(api, "POST", path, &h, form).0
}

both! {
fn signing_in_needs_a_live_admin_token_and_pages_need_the_session(db) {
    let api = start_on(&db);
    let (status, headers, _) = call(&api, "GET", "/dashboard/jobs", &[], "");
    assert_eq!(
        (status, header(&headers, "Location")),
        (303, Some("/dashboard/login"))
    );
    let o = origin(&api);
    let form = [
        ("Origin", o.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    assert_eq!(
        call(&api, "POST", "/dashboard/login", &form, "token=jobq_nope").0,
        401
    );
    let alice = format!("token={}", api.alice);
    assert_eq!(call(&api, "POST", "/dashboard/login", &form, &alice).0, 403);
    let cookie = sign_in(&api, &api.admin);
    let (status, headers, page) = call(&api, "GET", "/dashboard", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let csp = header(&headers, "Content-Security-Policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&headers, "X-Frame-Options"), Some("DENY"));
    assert!(header(&headers, "Referrer-Policy").is_some());
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "no inline script or style"
    );
}

fn sign_out_and_revocation_end_the_session(db) {
    let api = start_on(&db);
    let cookie = sign_in(&api, &api.admin);
    let token = csrf(&api, &cookie);
    assert_eq!(
        post(
            &api,
            "/dashboard/logout",
            &cookie,
            Some("same-origin"),
            &format!("csrf={token}")
        ),
        303
    );
    assert_eq!(
        call(&api, "GET", "/dashboard", &[("Cookie", &cookie)], "").0,
        303
    );

    let ops = api.queue.create_token("ops", true).unwrap();
    let cookie = sign_in(&api, &ops.secret);
    assert_eq!(
        call(&api, "GET", "/dashboard", &[("Cookie", &cookie)], "").0,
        200
    );
    api.queue.revoke_token(ops.token.id).unwrap();
    assert_eq!(
        call(&api, "GET", "/dashboard", &[("Cookie", &cookie)], "").0,
        303
    );
}

fn every_post_needs_the_same_origin_and_the_form_token(db) {
    let api = start_on(&db);
    let job = api
        .queue
        .enqueue(NewJob::new("email.send", json!(1)).delay(Duration::from_secs(60)))
        .unwrap();
    let cookie = sign_in(&api, &api.admin);
    let token = csrf(&api, &cookie);
    let path = format!("/dashboard/jobs/{}/cancel", job.id);
    let form = format!("csrf={token}");
    for site in ["cross-site", "same-site", "none"] {
        assert_eq!(post(&api, &path, &cookie, Some(site), &form), 403, "{site}");
    }
    let evil = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(call(&api, "POST", &path, &evil, &form).0, 403);
    assert_eq!(
        post(&api, &path, &cookie, None, &form),
        403,
        "neither header"
    );
    assert_eq!(
        post(&api, &path, &cookie, Some("same-origin"), "csrf=wrong"),
        403
    );
    assert_eq!(
        post(
            &api,
            &path,
            "jobq_session=forged",
            Some("same-origin"),
            &form
        ),
        403
    );
    let login = call(
        &api,
        "POST",
        "/dashboard/login",
        &[("Origin", "http://evil.example")],
        "token=x",
    );
    assert_eq!(login.0, 403, "login CSRF refused too");
    assert_eq!(api.queue.get(job.id).unwrap().status, JobStatus::Pending);
    assert_eq!(post(&api, &path, &cookie, Some("same-origin"), &form), 303);
    assert_eq!(api.queue.get(job.id).unwrap().status, JobStatus::Cancelled);
}

fn hostile_text_is_escaped_on_every_page(db) {
    let api = start_on(&db);
    let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let job = api
        .queue
        .enqueue(NewJob::new("email.send", json!({ "x": hostile })).entity("doc", hostile))
        .unwrap();
    let cookie = sign_in(&api, &api.admin);
    for path in [
        format!("/dashboard/jobs/{}", job.id),
        "/dashboard/jobs?entity_id=%3Cscript%3E".into(),
        "/dashboard".into(),
    ] {
        let (status, _, page) = call(&api, "GET", &path, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{path}");
        assert!(
            !page.contains("<script>alert") && !page.contains("<img src=x"),
            "{path}"
        );
    }
    let (_, _, page) = call(
        &api,
        "GET",
        &format!("/dashboard/jobs/{}", job.id),
        &[("Cookie", &cookie)],
        "",
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

fn admin_bulk_endpoints_answer_the_count(db) {
    let api = start_on(&db);
    for i in 0..4 {
        api.queue
            .enqueue(NewJob::new("email.send", json!(i)).owner("al"))
            .unwrap();
    }
    api.queue
        .enqueue(NewJob::new("email.send", json!(9)).owner("bo"))
        .unwrap();
    let cancel = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"owner": "al"}),
    );
    assert_eq!(
        (cancel.status, cancel.body["count"].clone()),
        (200, json!(4))
    );
    let retry = api.post_json(
        "/api/v1/admin/jobs/retry",
        Some(&api.admin),
        &json!({"status": "cancelled"}),
    );
    assert_eq!(retry.body["count"], 4);
    let dry = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"status": "pending", "dry_run": true}),
    );
    assert_eq!((dry.status, dry.body["count"].clone()), (200, json!(5)));
    let fresh = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"status": "pending", "older_than_s": 3600}),
    );
    assert_eq!(fresh.body["count"], 0, "every job was enqueued just now");
    let whole = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"older_than_s": 3600.0, "dry_run": true}),
    );
    assert_eq!((whole.status, whole.body["count"].clone()), (200, json!(0)));
    for bad in [json!(-1), json!(1.5), json!("1h"), json!(100_000_000_001_u64)] {
        let refused = api.post_json(
            "/api/v1/admin/jobs/retry",
            Some(&api.admin),
            &json!({ "older_than_s": bad }),
        );
        assert_eq!(refused.status, 422, "{bad}");
    }
    assert_eq!(
        api.queue.stats().unwrap().by_status.pending,
        5,
        "a dry run or an age filter matching nothing changed nothing"
    );
    let typo = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"ownr": "al"}),
    );
    assert_eq!(typo.status, 422, "a typo must not widen the filter");
    for (path, status) in [("retry", "completed"), ("cancel", "failed")] {
        let never = api.post_json(
            &format!("/api/v1/admin/jobs/{path}"),
            Some(&api.admin),
            &json!({"status": status, "dry_run": true}),
        );
        assert_eq!(never.status, 422, "{path} {status}: {:?}", never.body);
    }
    let user = api.post_json("/api/v1/admin/jobs/cancel", Some(&api.alice), &json!({}));
    assert_eq!(user.status, 403);
    assert_eq!(
        api.get("/api/v1/admin/jobs/retry", Some(&api.admin)).status,
        405
    );
}
}

both! {
fn a_cancel_request_is_noted_only_while_the_job_runs(db) {
    let api = start_on(&db);
    let job = api.queue.enqueue(NewJob::new("email.send", json!({}))).unwrap();
    let lease = std::time::Duration::from_secs(60);
    let claimed = api.queue.claim("w", None, 1, lease).unwrap().pop().unwrap();
    api.queue.cancel(job.id).unwrap();
    let cookie = sign_in(&api, &api.admin);
    let page = || {
        let path = format!("/dashboard/jobs/{}", job.id);
        let (status, _, page) = call(&api, "GET", &path, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{page}");
        page
    };
    assert!(page().contains("cancel requested"), "running, asked to stop");
    let stopped = jobq::JobError::Cancelled.to_failure();
    api.queue.fail(job.id, claimed.lease_token, &stopped).unwrap();
    assert_eq!(api.queue.get(job.id).unwrap().status, jobq::JobStatus::Cancelled);
    assert!(!page().contains("cancel requested"), "the request is history");
}
}

both! {
fn a_reserved_job_shows_as_not_started_until_a_worker_takes_it(db) {
    let api = start_on(&db);
    let job = api.queue.enqueue(NewJob::new("email.send", json!({}))).unwrap();
    let lease = std::time::Duration::from_secs(60);
    let round = api.queue.prefetch_round("p", &[], &[], 1, lease).unwrap();
    assert_eq!(round.reserved.len(), 1, "the job is reserved");
    let cookie = sign_in(&api, &api.admin);
    let get = |path: &str| {
        let (status, _, page) = call(&api, "GET", path, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{page}");
        page
    };
    let job_page = format!("/dashboard/jobs/{}", job.id);
    assert!(get(&job_page).contains("not started"), "job page, reserved");
    assert!(get("/dashboard").contains("reserved (not started)"), "running list");
    let token = round.reserved[0].lease_token;
    let start = [(job.id, token, api.queue.now())];
    let started = api.queue.prefetch_round("p", &start, &[], 0, lease).unwrap();
    assert!(started.started[0].is_ok(), "{:?}", started.started);
    assert!(!get(&job_page).contains("not started"), "job page, started");
    let overview = get("/dashboard");
    assert!(!overview.contains("reserved (not started)"), "running list, started");
    assert!(overview.contains("started "), "the start is shown");
}
}

both! {
fn bulk_form_counts_each_job_once_and_refuses_what_the_api_refuses(db) {
    let api = start_on(&db);
    let a = api.queue.enqueue(NewJob::new("email.send", json!(1))).unwrap();
    let cookie = sign_in(&api, &api.admin);
    let token = csrf(&api, &cookie);
    let bulk = |form: &str| {
        let form = format!("csrf={token}&{form}");
        post(&api, "/dashboard/jobs/bulk", &cookie, Some("same-origin"), &form)
    };
    let flash = || {
        let (status, _, page) = call(&api, "GET", "/dashboard/jobs", &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{page}");
        page
    };
    let missing = "00000000-0000-7000-8000-000000000000";
    assert_eq!(bulk(&format!("action=cancel_selected&id={}&id={}&id={missing}", a.id, a.id)), 303);
    let page = flash();
    assert!(page.contains("1 job cancelled; 1 not found."), "{page}");
    assert_eq!(api.queue.get(a.id).unwrap().status, JobStatus::Cancelled);
    let b = api.queue.enqueue(NewJob::new("email.send", json!(2))).unwrap();
    assert_eq!(bulk(&format!("action=retry_selected&id={}", b.id)), 303);
    let page = flash();
    assert!(page.contains("0 jobs retried; 1 could not be"), "a pending job: {page}");
    api.queue.cancel(b.id).unwrap();
    for form in [
        "action=cancel_selected&id=nothex".to_string(),
        "action=cancel_matching&status=failed".into(),
        "action=retry_matching&status=pending".into(),
        "action=retry_matching&queue=default&queue=other".into(),
    ] {
        assert_eq!(bulk(&form), 400, "{form}");
    }
    let (status, _, page) = call(
        &api,
        "GET",
        "/dashboard/jobs?status=failed&status=completed",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(status, 400, "a repeated filter: {page}");
    let (_, _, page) = call(&api, "GET", "/dashboard/jobs?status=completed", &[("Cookie", &cookie)], "");
    assert!(!page.contains("retry_matching") && !page.contains("cancel_matching"), "no change moves completed jobs");
    // "All matching" asks first (a page, no change), then changes on the
    // confirmation's button.
    assert_eq!(bulk("action=retry_matching&status=cancelled"), 200);
    assert_eq!(api.queue.get(a.id).unwrap().status, JobStatus::Cancelled);
    let at = api.queue.now().0;
    assert_eq!(bulk(&format!("action=retry_matching&status=cancelled&confirm={at}")), 303);
    let page = flash();
    assert!(page.contains("Retried 2 matching jobs."), "{page}");
    assert_eq!(api.queue.get(a.id).unwrap().status, JobStatus::Pending);
    assert_eq!(bulk("action=retry_matching&status=cancelled&confirm=soon"), 400);
}
}

both! {
fn cancelling_all_matching_jobs_asks_first_and_spares_later_ones(db) {
    let api = start_on(&db);
    for i in 0..3 {
        api.queue.enqueue(NewJob::new("email.send", json!(i))).unwrap();
    }
    let cookie = sign_in(&api, &api.admin);
    let token = csrf(&api, &cookie);
    let form = format!("csrf={token}&action=cancel_matching");
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let (status, _, page) = call(&api, "POST", "/dashboard/jobs/bulk", &headers, &form);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Cancel 3 matching jobs?"), "{page}");
    assert!(page.contains("none: every job, in every queue"), "{page}");
    let stats = api.queue.stats().unwrap();
    assert_eq!(stats.by_status.pending, 3, "asking changed nothing");
    // The confirmation carries the time it was shown: a job enqueued after
    // it is left alone.
    let confirm = page
        .split("name=\"confirm\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the confirmation's time")
        .to_string();
    std::thread::sleep(Duration::from_millis(5));
    let later = api.queue.enqueue(NewJob::new("email.send", json!("later"))).unwrap();
    let (status, _, _) = call(
        &api,
        "POST",
        "/dashboard/jobs/bulk",
        &headers,
        &format!("{form}&confirm={confirm}"),
    );
    assert_eq!(status, 303);
    let stats = api.queue.stats().unwrap();
    assert_eq!((stats.by_status.cancelled, stats.by_status.pending), (3, 1));
    assert_eq!(api.queue.get(later.id).unwrap().status, JobStatus::Pending);
}
}

both! {
fn a_wrong_method_on_a_dashboard_page_is_405_with_allow(db) {
    let api = start_on(&db);
    let cookie = sign_in(&api, &api.admin);
    let id = "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01";
    let cases = [
        ("PUT", "/dashboard/jobs".to_string(), Some("GET, HEAD")),
        ("POST", format!("/dashboard/jobs/{id}"), Some("GET, HEAD")),
        ("GET", "/dashboard/logout".to_string(), Some("POST")),
        ("GET", format!("/dashboard/jobs/{id}/retry"), Some("POST")),
        ("DELETE", "/dashboard/login".to_string(), Some("GET, HEAD, POST")),
        ("GET", "/dashboard/nope".to_string(), None),
    ];
    for (method, path, allow) in cases {
        let (status, headers, _) = call(&api, method, &path, &[("Cookie", &cookie)], "");
        let want = if allow.is_some() { 405 } else { 404 };
        assert_eq!((status, header(&headers, "Allow")), (want, allow), "{method} {path}");
    }
}
}

both! {
fn the_timeline_marks_a_manual_retry_and_shows_the_new_run(db) {
    let api = start_on(&db);
    let job = api.queue.enqueue(NewJob::new("email.send", json!(1)).max_attempts(1)).unwrap();
    let lease = std::time::Duration::from_secs(60);
    let first = api.queue.claim("w", None, 1, lease).unwrap().pop().unwrap();
    let boom = jobq::JobError::Permanent("boom".into()).to_failure();
    api.queue.fail(job.id, first.lease_token, &boom).unwrap();
    api.queue.retry(job.id).unwrap();
    let second = api.queue.claim("w", None, 1, lease).unwrap().pop().unwrap();
    assert_eq!(second.attempts, 1, "a retry counts attempts from 1 again");
    let cookie = sign_in(&api, &api.admin);
    let (status, _, page) = call(&api, "GET", &format!("/dashboard/jobs/{}", job.id), &[("Cookie", &cookie)], "");
    assert_eq!(status, 200, "{page}");
    let start = page.find("<ol class=\"timeline\">").expect("a timeline");
    let timeline = &page[start..start + page[start..].find("</ol>").unwrap()];
    assert_eq!(timeline.matches("attempt 1 started").count(), 2, "{timeline}");
    assert_eq!(timeline.matches("attempt 1 failed").count(), 1, "{timeline}");
    let retried = timeline.find("retried by hand").expect(timeline);
    assert!(timeline.find("attempt 1 failed").unwrap() < retried, "{timeline}");
    assert!(retried < timeline.rfind("attempt 1 started").unwrap(), "{timeline}");
}
}
