//! A NUL character, which PostgreSQL's text cannot hold, is treated the same
//! on both backends: in a handler's error text it is replaced (and the pool
//! goes on), in a result or a progress message it is kept (JSON escapes it),
//! and in a job's or a filter's text fields it is refused, never a 500.

use std::time::Duration;

use jobq::{JobError, JobFilter, JobStatus, NewJob, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::backends::both;
use crate::http_util::start_on;

both! {
fn nul_in_a_handlers_error_or_result_stalls_nothing(db) {
    let q = db.open(|o| o);
    let bad = q.enqueue(NewJob::new("nul.fail", json!({}))).unwrap();
    let odd = q.enqueue(NewJob::new("nul.result", json!({}))).unwrap();
    let ok: Vec<_> = (0..5)
        .map(|i| q.enqueue(NewJob::new("ok", json!({ "i": i }))).unwrap().id)
        .collect();
    let mut reg = Registry::new();
    reg.register("nul.fail", |_: &jobq::JobContext, _: Value| {
        Err(JobError::Permanent("bad\0thing".into()))
    });
    reg.register("nul.result", |ctx: &jobq::JobContext, _: Value| {
        ctx.progress(0.5, "half\0way").map_err(|e| JobError::Retryable(e.to_string()))?;
        Ok(json!({ "text": "a\0b" }))
    });
    reg.register("ok", |_: &jobq::JobContext, v: Value| Ok(v));
    let cfg = WorkerConfig {
        workers: 4,
        drain: true,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    crate::util::wait_for("the pool drains", Duration::from_secs(30), || pool.is_finished());
    pool.shutdown(Duration::from_secs(5));
    let failed = q.get(bad.id).unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error_message.as_deref(), Some("bad\u{FFFD}thing"));
    let done = q.get(odd.id).unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error_message);
    assert_eq!(done.result, Some(json!({ "text": "a\0b" })), "a result keeps its NUL");
    let progress = done.progress.unwrap();
    assert_eq!(
        progress["message"],
        json!("half\u{FFFD}way"),
        "a progress message is stored as error text is"
    );
    for id in ok {
        assert_eq!(q.get(id).unwrap().status, JobStatus::Completed);
    }
}
}

both! {
fn nul_in_a_jobs_or_filters_text_is_refused_naming_the_field(db) {
    let api = start_on(&db);
    for field in ["entity_type", "entity_id"] {
        let mut body = json!({"job_type": "email.send", "entity_type": "t", "entity_id": "i"});
        body[field] = json!("a\u{0}b");
        let a = api.post_json("/api/v1/jobs", Some(&api.alice), &body);
        assert_eq!(a.status, 422, "{field}: {}", a.text);
        assert!(a.text.contains(field), "{}", a.text);
    }
    let lib = NewJob::new("email.send", json!({})).entity("t", "a\0b");
    let e = api.queue.enqueue(lib).unwrap_err();
    assert!(matches!(e, jobq::Error::Invalid { field: "entity_id", .. }), "{e}");
    for query in [
        "entity_type=%00",
        "entity_id=a%00b",
        "owner=%00",
        "job_type=Bad%20Name",
        "queue=BAD",
    ] {
        let a = api.get(&format!("/api/v1/admin/jobs?{query}"), Some(&api.admin));
        assert_eq!(a.status, 400, "{query}: {}", a.text);
        assert_eq!(a.body["error"]["code"], "bad_query", "{query}: {}", a.text);
    }
    let a = api.get("/api/v1/jobs?queue=BAD", Some(&api.alice));
    assert_eq!(a.status, 400, "{}", a.text);
    let bulk = api.post_json(
        "/api/v1/admin/jobs/cancel",
        Some(&api.admin),
        &json!({"entity_type": "a\u{0}"}),
    );
    assert_eq!(bulk.status, 422, "{}", bulk.text);
    let filter = JobFilter {
        entity_id: Some("\0".into()),
        ..JobFilter::default()
    };
    assert!(api.queue.cancel_matching(&filter).is_err());
    assert!(api.queue.count(&filter, 10).is_err());
    let good = api.get("/api/v1/admin/jobs?entity_type=t&queue=default", Some(&api.admin));
    assert_eq!(good.status, 200, "{}", good.text);
}
}
