//! The upgrade to schema version 8 (16-byte ids, WITHOUT ROWID, no jobs_lease)
//! on a file written at version 7: every job reads back with the same JSON,
//! the ids become blobs, and the upgraded file works.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jobq::{ErrorClass, Failure, JobFilter, JobStatus, NewJob, Queue, Unique};
use rusqlite::Connection;
use serde_json::{json, Value};

/// Version 8's schema, as it shipped.
pub(crate) const SCHEMA_V8: &str = include_str!("schema_v8.sql");

/// Version 7's schema: version 8's with the id as text in a rowid table and the
/// expired-lease index it dropped.
fn schema_v7() -> String {
    let v8 = SCHEMA_V8;
    let v7 = v8
        .replace("BLOB PRIMARY KEY NOT NULL", "TEXT PRIMARY KEY NOT NULL")
        .replace(") WITHOUT ROWID;", ");");
    assert_ne!(v7, v8);
    format!(
        "{v7}
        CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'in_progress';
        PRAGMA application_id = 1246708305;
        PRAGMA user_version = 7;"
    )
}

/// A version-8 id column as version 7 stored it: the UUID's hyphenated text.
const TEXT_ID: &str = "lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || \
     substr(hex(id), 13, 4) || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21))";

/// Jobs in every status, written by the queue.
pub(crate) fn jobs_in_every_status(q: &Queue) {
    let lease = Duration::from_secs(60);
    q.enqueue(NewJob::new("plain", json!({"n": 1, "s": "ünï"})).priority(3))
        .unwrap();
    q.enqueue(
        NewJob::new("full", json!([1, 2.5, "x"]))
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
        q.enqueue(NewJob::new(*t, json!({ "i": i })).priority(10))
            .unwrap();
    }
    let claimed = q.claim("w1", None, 5, lease).unwrap();
    let by_type = |t: &str| claimed.iter().find(|j| j.job_type == t).unwrap();
    let done = by_type("done");
    q.progress(done.id, done.lease_token, 0.5, "half").unwrap();
    q.complete(done.id, done.lease_token, &json!({"ok": true}))
        .unwrap();
    let fails = by_type("fails");
    let permanent = Failure::new("bad input", ErrorClass::Permanent);
    q.fail(fails.id, fails.lease_token, &permanent).unwrap();
    let retries = by_type("retries");
    let retryable = Failure::new("try later", ErrorClass::Retryable);
    q.fail(retries.id, retries.lease_token, &retryable).unwrap();
    let cancels = by_type("cancels");
    q.cancel(cancels.id).unwrap();
    q.complete(cancels.id, cancels.lease_token, &Value::Null)
        .unwrap();
    q.cancel(q.enqueue(NewJob::new("never", Value::Null)).unwrap().job.id)
        .unwrap();
}

/// Every job's JSON by id, as the queue lists them.
pub(crate) fn json_by_id(q: &Queue) -> BTreeMap<String, Value> {
    let page = q.list(&JobFilter::default(), 500, None).unwrap();
    page.jobs
        .iter()
        .map(|j| (j.id.to_string(), serde_json::to_value(j).unwrap()))
        .collect()
}

/// A version-7 file holding the jobs of `v8` column for column (ids as text),
/// and one row with an id that is not a UUID, as a hand-written row may have.
fn version_7_copy(v8: &Path, v7: &Path) {
    let conn = Connection::open(v7).unwrap();
    conn.execute_batch(&schema_v7()).unwrap();
    conn.execute("ATTACH ?1 AS new", [v8.to_str().unwrap()])
        .unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('jobs') WHERE name != 'id'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let columns = columns.join(", ");
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
    let dir = tempfile::tempdir().unwrap();
    let (v8, v7) = (dir.path().join("v8.db"), dir.path().join("v7.db"));
    let made = Queue::open(&v8).unwrap();
    jobs_in_every_status(&made);
    let before = json_by_id(&made);
    drop(made);
    let statuses: Vec<&str> = before
        .values()
        .filter_map(|v| v["status"].as_str())
        .collect();
    for s in JobStatus::ALL {
        assert!(statuses.contains(&s.as_str()), "no {s} job: {statuses:?}");
    }
    version_7_copy(&v8, &v7);
    let ids: i64 = Connection::open(&v7)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM jobs WHERE typeof(id) = 'text'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        ids,
        i64::try_from(before.len()).unwrap() + 1,
        "a version-7 file"
    );

    let q = Queue::open(&v7).unwrap();
    let mut after = json_by_id(&q);
    let odd = after.remove(&jobq::JobId::from_uuid(uuid::Uuid::nil()).to_string());
    assert_eq!(after, before, "every job's JSON is unchanged");
    let odd = odd.expect("the row whose id is not a UUID is still listed");
    assert_eq!(odd["job_type"], json!("odd"));
    assert!(odd["unreadable"][0]
        .as_str()
        .unwrap()
        .starts_with("id is not a UUID"));
    for (id, job) in &before {
        let got = serde_json::to_value(q.get(id.parse().unwrap()).unwrap()).unwrap();
        assert_eq!(&got, job, "get {id}");
    }
    let conn = Connection::open(&v7).unwrap();
    let kinds: Vec<(String, i64)> = conn
        .prepare("SELECT typeof(id), count(*) FROM jobs GROUP BY 1 ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let n = i64::try_from(before.len()).unwrap();
    assert_eq!(kinds, [("blob".into(), n), ("text".into(), 1)]);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let again = q.enqueue(NewJob::new("full", json!([1, 2.5, "x"])).unique(Unique::by_payload()));
    assert!(again.unwrap().duplicate, "the unique key is still held");
    let claimed = q.claim("w2", None, 10, Duration::from_secs(60)).unwrap();
    let types: Vec<&str> = claimed.iter().map(|j| j.job_type.as_str()).collect();
    assert_eq!(types, ["plain"], "the due pending job, not the delayed one");
}
