//! The upgrade from version 8 through 9 (no `jobs_created`, `jobs_claim` ending
//! with the type) and 10 (no `jobs_type`: running and finished jobs are found by
//! type through `jobs_status`) on a file written at version 8:
//! every job reads back with the same JSON, listings are in the key's order
//! (as documented: a job written before version 9 is placed by its id's time),
//! reads by type find every status, and new jobs' ids carry their `created_at`.

use std::path::Path;

use jobq::{JobFilter, JobStatus, NewJob, Queue};
use rusqlite::Connection;
use serde_json::json;

use crate::store_upgrade::{jobs_in_every_status, json_by_id, SCHEMA_V8};

/// A version-8 file holding the jobs of `from` column for column.
fn version_8_copy(from: &Path, v8: &Path) {
    let conn = Connection::open(v8).unwrap();
    conn.execute_batch(&format!(
        "{SCHEMA_V8}
         PRAGMA application_id = 1246708305;
         PRAGMA user_version = 8;"
    ))
    .unwrap();
    conn.execute("ATTACH ?1 AS new", [from.to_str().unwrap()])
        .unwrap();
    conn.execute_batch(
        "INSERT INTO main.jobs SELECT * FROM new.jobs;
         DETACH new;",
    )
    .unwrap();
}

fn indexes(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The ms a UUID v7 text carries.
fn id_ms(id: &str) -> i64 {
    i64::from_str_radix(&id.replace('-', "")[..12], 16).unwrap()
}

#[test]
fn a_version_8_file_upgrades_with_every_job_unchanged_and_listed_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let (made, v8) = (dir.path().join("made.db"), dir.path().join("v8.db"));
    let q = Queue::open(&made).unwrap();
    jobs_in_every_status(&q);
    drop(q);
    // The newest job (`never`) with a created_at an hour before its id's time, as an
    // imported job or one made under another clock may have.
    Connection::open(&made)
        .unwrap()
        .execute(
            "UPDATE jobs SET created_at = created_at - 3600000 WHERE job_type = 'never'",
            [],
        )
        .unwrap();
    let before = json_by_id(&Queue::open(&made).unwrap());
    version_8_copy(&made, &v8);
    assert!(indexes(&Connection::open(&v8).unwrap()).contains(&"jobs_created".to_string()));

    let q = Queue::open(&v8).unwrap();
    let conn = Connection::open(&v8).unwrap();
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 11);
    let names = indexes(&conn);
    for gone in ["jobs_created", "jobs_type"] {
        assert!(!names.contains(&gone.to_string()), "{gone}: {names:?}");
    }
    for ix in ["jobs_claim", "jobs_owner", "jobs_status", "jobs_unique"] {
        assert!(names.contains(&ix.to_string()), "{ix}: {names:?}");
    }
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    let after = json_by_id(&q);
    assert_eq!(after, before, "every job's JSON is unchanged");
    let statuses: Vec<&str> = after
        .values()
        .filter_map(|v| v["status"].as_str())
        .collect();
    for s in JobStatus::ALL {
        assert!(statuses.contains(&s.as_str()), "no {s} job: {statuses:?}");
    }

    // Listed newest first by id, the job with the older created_at included.
    let listed: Vec<String> = q
        .list(&JobFilter::default(), 500, None)
        .unwrap()
        .jobs
        .iter()
        .map(|j| j.id.to_string())
        .collect();
    let mut by_id = listed.clone();
    by_id.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(listed, by_id, "the listing is in key order");
    let never = after
        .iter()
        .find(|(_, v)| v["job_type"] == json!("never"))
        .unwrap()
        .0;
    assert_eq!(listed.first(), Some(never), "placed by its id's time");
    // Two-job pages walk the same order without repeats or gaps.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (jobs, next) = q.page(&JobFilter::default(), 2, cursor.as_deref()).unwrap();
        paged.extend(jobs.iter().map(|j| j.id.to_string()));
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, listed);

    // Reads by type find the jobs of every status (two indexes now).
    for (id, job) in &after {
        let t = job["job_type"].as_str().unwrap();
        let by_type = JobFilter {
            job_type: Some(t.to_string()),
            ..JobFilter::default()
        };
        let (jobs, _) = q.page(&by_type, 100, None).unwrap();
        assert!(
            jobs.iter().any(|j| j.id.to_string() == *id),
            "{t} finds {id}"
        );
        let want =
            u64::try_from(after.values().filter(|v| v["job_type"] == json!(t)).count()).unwrap();
        assert_eq!(q.count(&by_type, 100).unwrap().n, want, "count of {t}");
    }

    // A new job's id carries its created_at, and it lists first.
    let new = q.enqueue(NewJob::new("plain", json!({}))).unwrap().job;
    assert_eq!(id_ms(&new.id.to_string()), new.created_at.0);
    let first = q.list(&JobFilter::default(), 1, None).unwrap().jobs;
    assert_eq!(first[0].id, new.id);
}
