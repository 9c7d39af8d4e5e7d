//! The upgrade to version 8 (16-byte ids, WITHOUT ROWID) on a file written at
//! version 7: every job reads back with the same JSON, the ids become blobs,
//! and the upgraded file works (claims, unique keys, lookups by id).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::store::sqlite::migrate::{migrate_to, MIGRATIONS};
use crate::store::sqlite::row::{job_columns, job_from_row};
use crate::{ErrorClass, Failure, JobStatus, NewJob, Queue, Unique};

/// A version-8 id column as version 7 stored it: the UUID's hyphenated text.
const TEXT_ID: &str = "lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || \
     substr(hex(id), 13, 4) || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21))";

/// Jobs in every status, written by the queue itself (version 8).
fn jobs_in_every_status(q: &Queue) {
    let lease = Duration::from_secs(60);
    let new = |t: &str, p: Value| NewJob::new(t, p);
    q.enqueue(new("plain", json!({"n": 1, "s": "ünï"})).priority(3))
        .unwrap();
    q.enqueue(
        new("full", json!([1, 2.5, "x"]))
            .queue("other")
            .entity("doc", "7")
            .owner("alice")
            .max_attempts(2)
            .delay(Duration::from_secs(3600))
            .unique(Unique::by_payload()),
    )
    .unwrap();
    for (i, t) in ["done", "fails", "retries", "cancels", "runs"]
        .iter()
        .enumerate()
    {
        q.enqueue(new(t, json!({ "i": i })).priority(10)).unwrap();
    }
    let claimed = q.claim("w1", None, 5, lease).unwrap();
    let by_type = |t: &str| claimed.iter().find(|j| j.job_type == t).unwrap();
    let done = by_type("done");
    q.progress(done.id, done.lease_token, 0.5, "half").unwrap();
    q.complete(done.id, done.lease_token, &json!({"ok": true}))
        .unwrap();
    let permanent = Failure::new("bad input", ErrorClass::Permanent);
    let fails = by_type("fails");
    q.fail(fails.id, fails.lease_token, &permanent).unwrap();
    let retryable = Failure::new("try later", ErrorClass::Retryable);
    let retries = by_type("retries");
    q.fail(retries.id, retries.lease_token, &retryable).unwrap();
    let cancels = by_type("cancels");
    q.cancel(cancels.id).unwrap();
    q.complete(cancels.id, cancels.lease_token, &Value::Null)
        .unwrap();
    q.cancel(q.enqueue(new("never", Value::Null)).unwrap().job.id)
        .unwrap();
}

/// Every job's JSON by id, read straight from the table with the row decoder.
fn json_by_id(conn: &Connection) -> BTreeMap<String, Value> {
    let sql = concat!("SELECT ", job_columns!(), " FROM jobs");
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt.query_map([], job_from_row).unwrap();
    rows.map(|j| {
        let j = j.unwrap();
        let mut v = serde_json::to_value(&j).unwrap();
        if !j.unreadable.is_empty() {
            // The nil id of an unreadable one: tell them apart by type.
            v["id"] = json!(format!("unreadable {}", j.job_type));
        }
        (v["id"].as_str().unwrap().to_string(), v)
    })
    .collect()
}

/// A version-7 file holding the jobs of `v8` (ids as text), and one row with
/// an id that is not a UUID, as a hand-written row may have.
fn version_7_copy(v8: &Path, v7: &Path) {
    let mut conn = Connection::open(v7).unwrap();
    migrate_to(&mut conn, 7).unwrap();
    conn.execute("ATTACH ?1 AS new", [v8.to_str().unwrap()])
        .unwrap();
    let columns = job_columns!().replacen("id, ", "", 1);
    conn.execute_batch(&format!(
        "INSERT INTO main.jobs (id, {columns}) SELECT {TEXT_ID}, {columns} FROM new.jobs;
         DETACH new;
         INSERT INTO jobs (id, job_type, payload, next_retry, created_at, updated_at)
         VALUES ('not-a-uuid', 'odd', '{{}}', 0, 1, 1);"
    ))
    .unwrap();
}

#[test]
fn a_version_7_file_upgrades_in_place_with_every_job_unchanged() {
    assert_eq!(MIGRATIONS.len(), 8, "this test is of the step to 8");
    let dir = tempfile::tempdir().unwrap();
    let (v8, v7) = (dir.path().join("v8.db"), dir.path().join("v7.db"));
    let made = Queue::open(&v8).unwrap();
    jobs_in_every_status(&made);
    drop(made);
    version_7_copy(&v8, &v7);
    let before = json_by_id(&Connection::open(&v7).unwrap());
    let statuses: Vec<&str> = before
        .values()
        .filter_map(|v| v["status"].as_str())
        .collect();
    for s in JobStatus::ALL {
        assert!(statuses.contains(&s.as_str()), "no {s} job: {statuses:?}");
    }
    let mut written = before.clone();
    assert!(written.remove("unreadable odd").is_some());
    let v8_jobs = json_by_id(&Connection::open(&v8).unwrap());
    assert_eq!(written, v8_jobs, "version 7 holds what the queue wrote");

    let q = Queue::open(&v7).unwrap();
    let conn = Connection::open(&v7).unwrap();
    assert_eq!(json_by_id(&conn), before, "every job's JSON is unchanged");
    let kinds: Vec<(String, i64)> = conn
        .prepare("SELECT typeof(id), count(*) FROM jobs GROUP BY 1 ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let n = i64::try_from(before.len()).unwrap();
    assert_eq!(kinds, [("blob".into(), n - 1), ("text".into(), 1)]);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    for (id, job) in before
        .iter()
        .filter(|(id, _)| !id.starts_with("unreadable"))
    {
        let got = q.get(id.parse().unwrap()).unwrap();
        assert_eq!(&serde_json::to_value(&got).unwrap(), job, "get {id}");
    }
    let listed = q.list(&crate::JobFilter::default(), 500, None).unwrap();
    assert_eq!(listed.jobs.len(), before.len());
    let again = q.enqueue(NewJob::new("full", json!([1, 2.5, "x"])).unique(Unique::by_payload()));
    assert!(again.unwrap().duplicate, "the unique key is still held");
    let claimed = q.claim("w2", None, 10, Duration::from_secs(60)).unwrap();
    let types: Vec<&str> = claimed.iter().map(|j| j.job_type.as_str()).collect();
    assert_eq!(types, ["plain"], "the due pending job, not the delayed one");
}
