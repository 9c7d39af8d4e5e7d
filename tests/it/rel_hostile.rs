//! Reliability: hostile input through the binary. Each case is refused with one
//! clear line (exit 2) or stored verbatim; never a panic.

use jobq::{Job, JobPage};
use serde_json::{json, Value};

use crate::util::{Run, Sandbox};

const CONFIG: &str = r#"
[handlers.echo]
command = ["cat"]
"#;

const SQL: &str = "x'); DROP TABLE jobs; -- \" OR 1=1; SELECT * FROM sqlite_master";

fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.config(CONFIG);
    s
}

/// Exit 2 with a clear message: one `jobq: ` line, or clap's usage error (an
/// `error: ` line and a hint).
fn refused(run: &Run, words: &str, what: &str) {
    assert_eq!(run.code, 2, "{what}: {}", run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    if first.starts_with("jobq: ") {
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "{what}: {}",
            run.stderr
        );
    } else {
        assert!(first.starts_with("error: "), "{what}: {}", run.stderr);
    }
    assert!(
        run.stderr.to_lowercase().contains(&words.to_lowercase()),
        "{what}: want {words:?} in {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
}

fn show(s: &Sandbox, id: &str) -> Job {
    serde_json::from_value(s.json(&["show", id])).unwrap()
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn hostile_payloads_are_refused_clearly_or_stored_verbatim() {
    let s = sandbox();
    let huge = format!(r#"{{"blob":"{}"}}"#, "a".repeat(10 << 20));
    std::fs::write(s.path().join("huge.json"), &huge).unwrap();
    std::fs::write(s.path().join("deep.json"), nested(10_000)).unwrap();
    std::fs::write(s.path().join("latin1.json"), b"\"caf\xe9\"").unwrap();
    std::fs::write(
        s.path().join("latin1.jsonl"),
        b"{\"job_type\":\"echo\"}\n\xff\n",
    )
    .unwrap();
    let refusals: [(&[&str], &str); 9] = [
        (&["--payload", "{\"a\":"], "not valid JSON"),
        (&["--payload", "{'a': 1}"], "not valid JSON"),
        (&["--payload", r#""\ud800""#], "not valid JSON"),
        (&["--payload", r#"{"k":"\udc00 tail"}"#], "not valid JSON"),
        (&["--payload", "\"raw \u{1} control\""], "not valid JSON"),
        (&["--payload-file", "huge.json"], "payload too large"),
        (&["--payload-file", "deep.json"], "recursion limit"),
        (
            &["--payload-file", "missing.json"],
            "--payload-file missing.json: No such file",
        ),
        (
            &["--payload-file", "latin1.json"],
            "--payload-file latin1.json: not valid UTF-8",
        ),
    ];
    for (args, words) in refusals {
        let mut all = vec!["enqueue", "echo"];
        all.extend_from_slice(args);
        refused(&s.run(&all), words, &format!("{args:?}"));
    }
    let run = s.run(&["enqueue", "--jsonl", "missing.jsonl"]);
    refused(&run, "--jsonl missing.jsonl: No such file", "--jsonl");
    let run = s.run(&["enqueue", "--jsonl", "latin1.jsonl"]);
    refused(
        &run,
        "latin1.jsonl: line 2: not valid UTF-8 text (JSON must be UTF-8) (nothing was enqueued)",
        "--jsonl not UTF-8",
    );
    let page: JobPage = serde_json::from_value(s.json(&["list"])).unwrap();
    assert_eq!(page.total, 0, "nothing was stored");

    let verbatim = [
        json!("NUL \u{0} inside"),
        json!({"sql": SQL, "nul\u{0}key": [SQL, "\u{0}"]}),
        json!({"pair": "\u{1F600}", "bidi": "\u{202E}abc", "bom": "\u{FEFF}"}),
        serde_json::from_str::<Value>(&nested(100)).unwrap(),
        json!([i64::MIN, u64::MAX, 1.5e300, -0.0]),
    ];
    for payload in verbatim {
        let text = payload.to_string();
        let id = s.ok(&["enqueue", "echo", "--payload", &text]);
        assert_eq!(show(&s, &id).payload, payload, "{text}");
    }
}

#[test]
fn hostile_flags_and_ids_are_refused_clearly() {
    let s = sandbox();
    // The ids and filters below are checked against an existing database
    // (no refused flag creates one).
    s.ok(&["work", "--drain"]);
    let long = "f".repeat(100_000);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["enqueue", "echo", "--priority", "2147483648"],
            "priority",
        ),
        (
            vec!["enqueue", "echo", "--priority", "-2147483649"],
            "priority",
        ),
        (
            vec!["enqueue", "echo", "--max-attempts", "-1"],
            "unexpected argument '-1'",
        ),
        (
            vec!["enqueue", "echo", "--max-attempts", "0"],
            "0 is not in 1..=2147483647",
        ),
        (
            vec!["enqueue", "echo", "--max-attempts", "2147483648"],
            "2147483648 is not in 1..=2147483647",
        ),
        (
            vec!["enqueue", "echo", "--max-attempts", "99999999999"],
            "max-attempts",
        ),
        (vec!["enqueue", SQL], "invalid job_type"),
        (vec!["enqueue", "echo", "--entity", "nocolon"], "TYPE:ID"),
        (vec!["show", "not-a-uuid"], "not a job id"),
        (vec!["show", SQL], "not a job id"),
        (vec!["show", ""], "not a job id"),
        (vec!["show", &long], "not a job id"),
        (vec!["cancel", "1 OR 1=1"], "not a job id"),
        (vec!["retry", "../../etc/passwd"], "not a job id"),
        (vec!["list", "--cursor", SQL], "cursor"),
        (vec!["list", "--status", "pending'--"], "status"),
        (vec!["list", "--limit", "-5"], "unexpected argument '-5'"),
    ];
    for (args, words) in cases {
        refused(&s.run(&args), words, &format!("{args:?}"));
    }
    let low = s.ok(&["enqueue", "echo", "--priority", "-2147483648"]);
    let high = s.ok(&["enqueue", "echo", "--priority", "2147483647"]);
    let many = s.ok(&["enqueue", "echo", "--max-attempts", "2147483647"]);
    assert_eq!(show(&s, &low).priority, i32::MIN);
    assert_eq!(show(&s, &high).priority, i32::MAX);
    assert_eq!(show(&s, &many).max_attempts, jobq::MAX_ATTEMPTS);
    let sneaky = s.ok(&[
        "enqueue",
        "echo",
        "--owner",
        SQL,
        "--entity",
        &format!("doc:{SQL}"),
    ]);
    let job = show(&s, &sneaky);
    assert_eq!(
        (job.owner.as_deref(), job.entity_id.as_deref()),
        (Some(SQL), Some(SQL))
    );
    let page: JobPage = serde_json::from_value(s.json(&["list", "--owner", SQL])).unwrap();
    assert_eq!(page.jobs.len(), 1, "the SQL-looking owner is a plain value");
    assert_eq!(page.jobs[0].id, job.id);
    let page: JobPage = serde_json::from_value(s.json(&["list"])).unwrap();
    assert_eq!(page.total, 4, "the table is still there");
}

#[test]
fn hostile_jsonl_lines_are_refused_naming_the_line() {
    let s = sandbox();
    let lines = [
        (r#"{"job_type":"echo","colour":"red"}"#, "unknown field"),
        (
            r#"{"job_type":"echo","priority":2147483648}"#,
            "invalid priority: expected an integer from -2147483648 to 2147483647",
        ),
        (r#"{"job_type":"echo","priority":-1.5}"#, "invalid priority"),
        (
            r#"{"job_type":"echo","max_attempts":-1}"#,
            "invalid max_attempts: expected an integer from 1",
        ),
        (r#"{"job_type":"echo","max_attempts":0}"#, "max_attempts"),
        (r#"{"job_type":"echo","payload":"\ud800"}"#, "hex escape"),
        (
            "{\"job_type\":\"echo\",\"payload\":\"raw\u{0}nul\"}",
            "control character",
        ),
        (
            r#"{"job_type":"echo","job_type":"echo"}"#,
            "invalid job_type: given more than once",
        ),
        (r#"["echo"]"#, "expected a JSON object"),
        (r#"{"job_type":"echo""#, "EOF"),
        (
            r#"{"job_type":"ECHO; DROP TABLE jobs"}"#,
            "invalid job_type: must be 1-64 characters",
        ),
        (r#"{"job_type":"unknown"}"#, "\"unknown\" is not declared"),
        (
            r#"{"job_type":"echo","entity_type":"doc","entity_id":"\u0000"}"#,
            "invalid entity_id: must be 1-255 bytes, without NUL characters",
        ),
    ];
    for (line, words) in lines {
        let text = format!("{{\"job_type\":\"echo\"}}\n{line}\n");
        std::fs::write(s.path().join("bad.jsonl"), text).unwrap();
        let run = s.run(&["enqueue", "--jsonl", "bad.jsonl"]);
        refused(&run, words, line);
        assert!(run.stderr.contains("bad.jsonl: line 2:"), "{}", run.stderr);
    }
    let deep = format!("{{\"job_type\":\"echo\",\"payload\":{}}}\n", nested(10_000));
    std::fs::write(s.path().join("deep.jsonl"), deep).unwrap();
    refused(
        &s.run(&["enqueue", "--jsonl", "deep.jsonl"]),
        "recursion limit",
        "deep",
    );
    let stored = json!({"job_type": "echo", "payload": {"q": SQL, "n": "\u{0}"}, "owner": SQL,
                        "entity_type": "doc", "entity_id": SQL, "priority": i32::MIN});
    std::fs::write(s.path().join("ok.jsonl"), format!("{stored}\n")).unwrap();
    assert_eq!(s.ok(&["enqueue", "--jsonl", "ok.jsonl"]), "1");
    let page: JobPage = serde_json::from_value(s.json(&["list"])).unwrap();
    assert_eq!(page.total, 1, "only the good file was enqueued");
    let job = &page.jobs[0];
    assert_eq!(job.payload, stored["payload"]);
    assert_eq!(job.owner.as_deref(), Some(SQL));
    assert_eq!(job.entity_id.as_deref(), Some(SQL));
}

#[test]
fn a_database_in_a_missing_directory_is_named_as_such() {
    let s = sandbox();
    let nodir = s.path().join("nodir").join("x.db");
    let file = s.path().join("plain");
    std::fs::write(&file, "").unwrap();
    let cases = [
        (nodir.clone(), "does not exist"),
        (file.join("x.db"), "is not a directory"),
    ];
    for (db, words) in cases {
        let db = db.to_str().unwrap();
        for args in [&["enqueue", "echo"][..], &["work", "--drain"][..]] {
            let run = s.run(&[&["--db", db][..], args].concat());
            assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
            assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
            assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        }
    }
    assert!(!nodir.parent().unwrap().exists(), "no directory was made");
}
