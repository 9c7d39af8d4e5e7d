//! The `jobq` commands, their output and their exit codes.

use crate::backends::{both, Db};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use jobq::{Job, JobPage, Stats};
use serde_json::json;

use crate::util::{signal, wait_exit, wait_for, Sandbox};

use crate::util::TEST_CONFIG as CONFIG;

fn sandbox(db: &Db) -> Sandbox {
    let s = Sandbox::on(db);
    s.config(CONFIG);
    s
}

both! {
fn enqueue_show_work_and_the_json_forms(db) {
    let s = sandbox(&db);
    let id = s.ok(&[
        "enqueue",
        "echo",
        "--payload",
        r#"{"msg":"héllo 🎉"}"#,
        "--priority",
        "-3",
        "--max-attempts",
        "2",
        "--entity",
        "document:42",
        "--owner",
        "ana",
    ]);
    let job: Job = serde_json::from_value(s.json(&["show", &id])).unwrap();
    assert_eq!(job.id.to_string(), id);
    assert_eq!((job.priority, job.max_attempts), (-3, 2));
    for entity in ["document:42", "document"] {
        let page: JobPage = serde_json::from_value(s.json(&["list", "--entity", entity])).unwrap();
        assert_eq!(page.jobs.len(), 1, "--entity {entity}");
        assert_eq!(page.jobs[0].id, job.id);
    }
    assert_eq!(job.entity_id.as_deref(), Some("42"));
    assert_eq!(job.owner.as_deref(), Some("ana"));
    let table = s.ok(&["show", &id]);
    assert!(
        table.contains("pending") && table.contains("document:42"),
        "{table}"
    );

    s.ok(&["work", "--drain"]);
    let job: Job = serde_json::from_value(s.json(&["show", &id])).unwrap();
    assert_eq!(job.result, Some(json!({"msg": "héllo 🎉"})));
    let stats: Stats = serde_json::from_value(s.json(&["stats"])).unwrap();
    assert_eq!(stats.by_status.completed, 1);
    assert_eq!(stats.by_type["echo"].completed, 1);
    assert!(s.ok(&["stats"]).contains("echo"));
}
}

both! {
fn a_delayed_job_is_scheduled_not_ready(db) {
    let s = sandbox(&db);
    s.ok(&["enqueue", "echo", "--delay", "1h"]);
    let at = "2099-01-01T00:00:00Z";
    let id = s.ok(&["enqueue", "echo", "--run-at", at]);
    let job: Job = serde_json::from_value(s.json(&["show", &id])).unwrap();
    assert_eq!(job.next_retry.to_rfc3339(), "2099-01-01T00:00:00.000Z");
    let stats: Stats = serde_json::from_value(s.json(&["stats"])).unwrap();
    assert_eq!((stats.pending.scheduled, stats.pending.ready), (2, 0));
}
}

both! {
fn list_filters_and_pages_without_repeats(db) {
    let s = sandbox(&db);
    let mut ids: Vec<String> = (0..5).map(|_| s.ok(&["enqueue", "echo"])).collect();
    s.ok(&["enqueue", "fails", "--owner", "bo"]);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["list", "--type", "echo", "--limit", "2"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page: JobPage = serde_json::from_value(s.json(&args)).unwrap();
        assert_eq!(page.total, 5);
        seen.extend(page.jobs.iter().map(|j| j.id.to_string()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    let page: JobPage = serde_json::from_value(s.json(&["list", "--owner", "bo"])).unwrap();
    assert_eq!(page.jobs[0].job_type, "fails");
    let table = s.ok(&["list", "--status", "pending"]);
    assert!(table.contains("6 of 6 jobs"), "{table}");
}
}

both! {
fn exit_codes_usage_not_found_conflict_runtime(db) {
    let s = sandbox(&db);
    s.ok(&["enqueue", "echo"]); // the database exists: read commands need one
    let missing = "01234567-89ab-7def-8123-456789abcdef";
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec![], 2, "Usage"),
        (vec!["show", "not-an-id"], 2, "not a job id"),
        (
            vec!["enqueue", "echo", "--payload", "{oops"],
            2,
            "not valid JSON",
        ),
        (
            vec!["enqueue", "echo", "--delay", "soon"],
            2,
            "invalid duration",
        ),
        (
            vec!["enqueue", "Bad!"],
            2,
            "invalid job_type: must be 1-64 characters",
        ),
        (
            vec!["enqueue", "nope"],
            2,
            "\"nope\" is not declared; declared types:",
        ),
        (vec!["list", "--limit", "0"], 2, "limit"),
        (vec!["list", "--entity", ":7"], 2, "expected TYPE:ID or TYPE"),
        (vec!["list", "--entity", "doc:"], 2, "expected TYPE:ID or TYPE"),
        (vec!["list", "--entity", ""], 2, "expected TYPE:ID or TYPE"),
        (
            vec!["prune", "--older-than", "1d", "--status", "pending"],
            2,
            "cannot be pruned",
        ),
        (vec!["show", missing], 3, "not found"),
        (vec!["cancel", missing], 3, "not found"),
        (vec!["retry", missing], 3, "not found"),
    ];
    for (args, code, words) in cases {
        let run = s.run(&args);
        assert_eq!(run.code, code, "jobq {args:?}: {}", run.stderr);
        assert!(run.stderr.contains(words), "jobq {args:?}: {}", run.stderr);
    }
    let id = s.ok(&["enqueue", "echo"]);
    let run = s.run(&["retry", &id]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim().lines().count(),
        1,
        "one line: {}",
        run.stderr
    );
    assert!(run.stderr.contains("it is pending"), "{}", run.stderr);
    std::fs::write(s.path().join("text.db"), "just some text, not a database\n").unwrap();
    let run = s.run(&["--db", "text.db", "stats"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not a jobq database"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}
}

both! {
fn an_undeclared_type_is_refused_naming_the_declared_ones(db) {
    let s = sandbox(&db);
    let run = s.run(&["enqueue", "send_email"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("echo, fails, jobq.prune"),
        "{}",
        run.stderr
    );
    let bare = Sandbox::on(&db);
    let run = bare.run(&["enqueue", "echo"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("declared types: jobq.prune"),
        "{}",
        run.stderr
    );
}
}

both! {
fn cancel_retry_and_prune(db) {
    let s = sandbox(&db);
    let id = s.ok(&["enqueue", "echo", "--delay", "1h"]);
    assert!(s.ok(&["cancel", &id]).contains("cancelled"));
    assert_eq!(s.ok(&["cancel", &id]), format!("job {id} is cancelled"));
    let job: Job = serde_json::from_value(s.json(&["retry", &id])).unwrap();
    assert_eq!((job.status.as_str(), job.attempts), ("pending", 0));
    let failing = s.ok(&["enqueue", "fails"]);
    s.ok(&["work", "--drain"]);
    let job: Job = serde_json::from_value(s.json(&["show", &failing])).unwrap();
    assert_eq!(
        job.status.as_str(),
        "failed",
        "permanent: {:?}",
        job.error_message
    );
    assert_eq!(s.run(&["cancel", &failing]).code, 4);
    assert_eq!(s.ok(&["prune", "--older-than", "1d"]), "deleted 0 jobs");
    assert_eq!(s.ok(&["prune"]), "deleted 0 jobs", "7 and 30 days by default");
    // Without --older-than each status keeps its configured age: the
    // completed job goes, the failed one (30 days) stays.
    s.config(&format!("{CONFIG}\n[prune]\nretention = \"0s\"\n"));
    assert_eq!(s.ok(&["prune"]), "deleted 1 job");
    assert_eq!(s.json(&["show", &failing])["status"], "failed");
    assert_eq!(
        s.ok(&["prune", "--older-than", "0s", "--status", "failed"]),
        "deleted 1 job"
    );
    assert_eq!(s.run(&["show", &failing]).code, 3);
    assert_eq!(s.ok(&["recover"]), "recovered 0 jobs");
}
}

both! {
fn jsonl_enqueues_all_or_none_naming_the_first_bad_line(db) {
    let s = sandbox(&db);
    let good =
        "{\"job_type\":\"echo\",\"payload\":{\"n\":1}}\n\n{\"job_type\":\"echo\",\"priority\":2}\n";
    std::fs::write(s.path().join("good.jsonl"), good).unwrap();
    assert_eq!(s.ok(&["enqueue", "--jsonl", "good.jsonl"]), "2");
    let bad = [
        "{\"job_type\":\"echo\"}\n{\"job_type\":\"echo\"}\n{\"job_type\":\"echo\",\"colour\":1}\n",
        "{\"job_type\":\"echo\"}\n{\"job_type\":\"nope\"}\n",
        "{\"job_type\":\"echo\"}\n{\"job_type\":\"echo\",\"max_attempts\":0}\n",
        "{\"job_type\":\"echo\"}\nnot json\n",
    ];
    let lines = ["line 3", "line 2", "line 2", "line 2"];
    for (text, line) in bad.iter().zip(lines) {
        std::fs::write(s.path().join("bad.jsonl"), text).unwrap();
        let run = s.run(&["enqueue", "--jsonl", "bad.jsonl"]);
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("bad.jsonl: {line}:")),
            "{}",
            run.stderr
        );
    }
    let out = with_stdin(&s, &["enqueue", "--jsonl", "-"], good.as_bytes());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    let stats: Stats = serde_json::from_value(s.json(&["stats"])).unwrap();
    assert_eq!(stats.total, 4, "the bad files enqueued nothing");
}
}

both! {
fn sigterm_stops_work_gracefully(db) {
    let s = sandbox(&db);
    let id = s.ok(&["enqueue", "echo"]);
    let mut child = s.spawn(&["work", "--workers", "2"], "work");
    wait_for("the job to complete", Duration::from_secs(20), || {
        let job: Job = serde_json::from_value(s.json(&["show", &id])).unwrap();
        job.status.as_str() == "completed"
    });
    signal(&child, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)),
        0,
        "{}",
        s.log("work")
    );
    let schedules = s.json(&["schedule", "list"]);
    let prune = &schedules[0];
    assert_eq!(
        prune["name"], "jobq.prune",
        "the built-in daily prune schedule"
    );
    assert_eq!(prune["cron"], "17 3 * * *");
    assert!(prune["next_fire"]
        .as_str()
        .unwrap()
        .ends_with(":17:00.000Z"));
    // Work saw it (its start point is stored) but it enqueued no job: no
    // last fire.
    assert!(prune["last_fire"].is_null(), "no fire yet: {prune}");
    assert!(prune["last_job_id"].is_null(), "{prune}");
}
}

#[test]
fn help_is_everywhere() {
    let s = Sandbox::new();
    for cmd in [
        "enqueue", "show", "list", "stats", "retry", "cancel", "recover", "prune", "work", "serve",
    ] {
        let out = s.ok(&[cmd, "--help"]);
        assert!(out.contains("Usage: jobq"), "{cmd}: {out}");
    }
}

/// Regression: `list` or `stats` on a mistyped `--db` created an empty database
/// and printed "0 of 0 jobs"; a directory was reported as "too short".
#[test]
fn read_commands_do_not_create_a_database_and_a_directory_is_named_as_such() {
    let s = sandbox(&Db::sqlite());
    for args in [&["list"][..], &["stats"], &["token", "list"], &["recover"]] {
        let r = s.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("no such database"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!s.db().exists(), "{args:?} created the database");
    }
    let dir = s.path().join("adir");
    std::fs::create_dir(&dir).unwrap();
    let r = s.run(&["--db", dir.to_str().unwrap(), "stats"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    s.ok(&["enqueue", "echo"]);
    assert!(s.db().exists(), "enqueue creates the database");
}

both! {
/// Regression: `jobq recover` used the default backoff instead of the type's
/// schedule from jobq.toml.
fn recover_from_the_cli_uses_the_configured_backoff(db) {
    let s = Sandbox::on(&db);
    s.config("[handlers.slowpoke]\ncommand = [\"cat\"]\nbackoff = [\"7s\"]\n");
    let id: jobq::JobId = s.ok(&["enqueue", "slowpoke"]).parse().unwrap();
    let queue = jobq::Queue::open(s.location()).unwrap();
    let lease = std::time::Duration::from_millis(1);
    assert_eq!(queue.claim("gone", None, 1, lease).unwrap().len(), 1);
    wait_for(
        "the lease to expire",
        std::time::Duration::from_secs(10),
        || queue.now() > queue.get(id).unwrap().lease_expires_at.unwrap(),
    );
    assert!(s.ok(&["recover"]).contains('1'));
    let job = queue.get(id).unwrap();
    assert_eq!(job.status, jobq::JobStatus::Pending);
    assert_eq!(
        job.next_retry.as_millis() - job.updated_at.as_millis(),
        7000
    );
}
}

/// `--payload-file -` reads the payload from standard input, as `--jsonl -`
/// reads its lines (it looked for a file named `-`; found by a fresh-user
/// pass).
#[test]
fn a_payload_file_of_dash_is_standard_input() {
    let s = Sandbox::new();
    s.config("[handlers.echo]\ncommand = [\"cat\"]\n");
    let out = with_stdin(
        &s,
        &["enqueue", "echo", "--payload-file", "-"],
        br#"{"from": "stdin"}"#,
    );
    assert!(out.status.success());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        s.json(&["show", &id])["payload"],
        serde_json::json!({"from": "stdin"})
    );
}

/// Runs jobq with `args`, `input` on its standard input.
fn with_stdin(s: &Sandbox, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = s
        .cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
