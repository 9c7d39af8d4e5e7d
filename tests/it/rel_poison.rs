//! One unreadable row stops nothing: rows written by hand (or by another tool,
//! or a newer version) whose values do not fit their columns list, show and end
//! `failed` once, while every other job lists, shows and runs.

use std::time::Duration;

use rusqlite::params;
use serde_json::{json, Value};

use crate::util::{Sandbox, TEST_CONFIG};

/// A job id as jobq's schema stores it: the UUID's 16 bytes.
fn stored(id: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec()
}

/// Inserts a pending, due `echo` job by hand with the given column values.
fn insert(db: &std::path::Path, id: &str, payload: &str, extra: &str, value: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let id = stored(id);
    let sql = format!(
        "INSERT INTO jobs (id, job_type, payload, next_retry, created_at, updated_at{}) \
         VALUES (?1, 'echo', ?2, 0, 1, 1{})",
        if extra.is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        },
        if extra.is_empty() { "" } else { ", ?3" },
    );
    if extra.is_empty() {
        conn.execute(&sql, params![id, payload]).unwrap();
    } else {
        conn.execute(&sql, params![id, payload, value]).unwrap();
    }
}

const BAD_PAYLOAD: &str = "0193a4f2-8c1e-7d3a-9b2f-000000000001";
const BAD_HISTORY: &str = "0193a4f2-8c1e-7d3a-9b2f-000000000002";
const BAD_PROGRESS: &str = "0193a4f2-8c1e-7d3a-9b2f-000000000003";
const BAD_MAX: &str = "0193a4f2-8c1e-7d3a-9b2f-000000000004";
const BAD_RESULT: &str = "0193a4f2-8c1e-7d3a-9b2f-000000000005";

fn job(sb: &Sandbox, id: &str) -> Value {
    sb.json(&["show", id])
}

#[test]
fn one_unreadable_row_stalls_nothing_and_ends_failed_once() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    let good: Vec<String> = (0..5)
        .map(|i| sb.ok(&["enqueue", "echo", "--payload", &format!("{{\"n\": {i}}}")]))
        .collect();
    let db = sb.db();
    insert(&db, BAD_PAYLOAD, "{not json", "", "");
    insert(&db, BAD_HISTORY, "{}", "error_context", "<<garbage>>");
    insert(&db, BAD_PROGRESS, "{}", "progress", "[1,");
    insert(&db, BAD_MAX, "{}", "max_attempts", "lots");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO jobs (id, job_type, status, payload, result, next_retry, created_at, \
             updated_at, completed_at) VALUES (?1, 'echo', 'completed', '{}', 'oops', 0, 1, 1, 1)",
            params![stored(BAD_RESULT)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO jobs (id, job_type, payload, next_retry, created_at, updated_at) \
             VALUES ('not-a-uuid', 'echo', '{}', 0, 1, 1)",
            [],
        )
        .unwrap();
    }
    // Reads work for every job, bad ones included, with the stored text shown.
    let page = sb.json(&["list", "--limit", "500"]);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 11, "{page}");
    let human = sb.run(&["list"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    let bad = job(&sb, BAD_PAYLOAD);
    assert_eq!(bad["payload"], json!("{not json"));
    assert!(bad["unreadable"][0]
        .as_str()
        .unwrap()
        .starts_with("payload is not valid JSON"));
    assert_eq!(job(&sb, BAD_RESULT)["result"], json!("oops"));
    assert_eq!(sb.run(&["show", BAD_RESULT]).code, 0);
    assert_eq!(sb.run(&["stats"]).code, 0);

    // Work: the good jobs run, the bad ones end failed once; nothing loops.
    let run = sb
        .cmd(&["work", "--drain"])
        .timeout_output(Duration::from_secs(60));
    assert_eq!(run.0, Some(0), "work --drain: {}", run.1);
    assert!(
        !run.1.contains("retrying every"),
        "the pool stalled: {}",
        run.1
    );
    for id in &good {
        assert_eq!(job(&sb, id)["status"], json!("completed"), "{id}");
    }
    for id in [BAD_HISTORY, BAD_PROGRESS] {
        assert_eq!(
            job(&sb, id)["status"],
            json!("completed"),
            "history does not stop a run"
        );
    }
    let bad = job(&sb, BAD_PAYLOAD);
    assert_eq!(
        (&bad["status"], &bad["attempts"]),
        (&json!("failed"), &json!(1)),
        "{bad}"
    );
    let msg = bad["error_message"].as_str().unwrap();
    assert!(msg.starts_with("payload is not valid JSON"), "{msg}");
    assert_eq!(bad["error_context"]["class"], json!("permanent"));
    let max = job(&sb, BAD_MAX);
    assert_eq!(max["status"], json!("failed"));
    assert!(max["error_message"]
        .as_str()
        .unwrap()
        .contains("max_attempts is not an integer"));
    let listed = sb.json(&["list", "--status", "failed"]);
    let failed = listed["jobs"].as_array().unwrap();
    assert_eq!(
        failed.len(),
        3,
        "bad payload, bad max_attempts, bad id: {listed}"
    );
    assert!(failed.iter().any(|j| j["unreadable"][0]
        .as_str()
        .unwrap_or("")
        .starts_with("id is not a UUID")));
    // A second drain finds nothing to do: the bad jobs ended once.
    let again = sb
        .cmd(&["work", "--drain"])
        .timeout_output(Duration::from_secs(60));
    assert_eq!(again.0, Some(0));
    assert_eq!(job(&sb, BAD_PAYLOAD)["attempts"], json!(1));
}

#[test]
fn the_schema_refuses_unknown_statuses_and_nulls() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    sb.ok(&["enqueue", "echo"]);
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    let bad = [
        "INSERT INTO jobs (id, job_type, status, next_retry, created_at, updated_at) \
         VALUES ('x1', 'echo', 'bogus', 0, 1, 1)",
        "INSERT INTO jobs (id, job_type, payload, next_retry, created_at, updated_at) \
         VALUES ('x2', 'echo', NULL, 0, 1, 1)",
        "INSERT INTO jobs (id, job_type, next_retry, created_at, updated_at) \
         VALUES ('x3', NULL, 0, 1, 1)",
    ];
    for sql in bad {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(
            err.to_string().contains("constraint failed"),
            "{sql}: {err}"
        );
    }
}

/// Runs a command to its end or kills it after a timeout.
trait TimeoutOutput {
    fn timeout_output(&mut self, limit: Duration) -> (Option<i32>, String);
}

impl TimeoutOutput for std::process::Command {
    fn timeout_output(&mut self, limit: Duration) -> (Option<i32>, String) {
        let mut child = self
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut s).ok();
            s
        });
        let deadline = std::time::Instant::now() + limit;
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().ok();
        }
        let status = child.wait().unwrap();
        let code = if finished { status.code() } else { None };
        (code, reader.join().unwrap())
    }
}
