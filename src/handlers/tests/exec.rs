use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::attempt;
use crate::handlers::exec::{ExecHandler, MAX_STDOUT_BYTES};
use jobq::{Handler, HandlerResult, JobError};

fn sh(script: &str, timeout: Option<Duration>) -> ExecHandler {
    ExecHandler::new(vec!["sh".into(), "-c".into(), script.into()], timeout)
}

fn run(handler: &ExecHandler, payload: Value) -> HandlerResult {
    let a = attempt("exec_test");
    handler.run(&a.ctx, payload)
}

#[test]
fn stdout_json_is_the_result_and_the_payload_comes_on_stdin() {
    let out = run(
        &ExecHandler::new(vec!["cat".into()], None),
        json!({"a": [1, "é🎉"]}),
    );
    assert_eq!(out, Ok(json!({"a": [1, "é🎉"]})));
}

#[test]
fn plain_stdout_is_wrapped() {
    let out = run(&sh("echo hello", None), Value::Null);
    assert_eq!(out, Ok(json!({"stdout": "hello\n"})));
}

#[test]
fn the_environment_names_the_job() {
    let a = attempt("exec_env");
    let script = r#"printf '{"id":"%s","attempt":%s,"type":"%s","token":%s}' "$JOBQ_JOB_ID" "$JOBQ_ATTEMPT" "$JOBQ_JOB_TYPE" "$JOBQ_FENCING_TOKEN""#;
    let out = sh(script, None).run(&a.ctx, Value::Null).unwrap();
    assert_eq!(
        out,
        json!({"id": a.job.id.to_string(), "attempt": 1, "type": "exec_env",
               "token": a.job.lease_token})
    );
}

#[test]
fn exit_75_is_retryable() {
    let out = run(&sh("echo 'user not found' >&2; exit 75", None), Value::Null);
    match out {
        Err(JobError::Retryable(m)) => assert!(m.contains("status 75"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_exits_are_classified_from_the_end_of_stderr() {
    let table = [
        ("echo 'user not found' >&2; exit 1", true),
        ("echo 'connection refused' >&2; exit 1", false),
        ("exit 3", false),
        ("head -c 100000 /dev/zero | tr '\\0' x >&2; echo; echo 'HTTP 404 Not Found' >&2; exit 2", true),
    ];
    for (script, permanent) in table {
        match run(&sh(script, None), Value::Null) {
            Err(JobError::Permanent(m)) if permanent => assert!(m.contains("exited with status")),
            Err(JobError::Retryable(m)) if !permanent => assert!(m.contains("exited with status")),
            other => panic!("{script}: {other:?}"),
        }
    }
}

/// Retryable: the pool checked the program when it started, so one gone now
/// is most likely being replaced (see `spawn_error`).
#[test]
fn a_missing_program_is_retryable() {
    let out = run(
        &ExecHandler::new(vec!["/no/such/program".into()], None),
        Value::Null,
    );
    assert!(matches!(out, Err(JobError::Retryable(m)) if m.contains("not found")));
}

#[test]
fn past_the_timeout_the_program_and_its_children_are_killed() {
    let out = run(
        &sh(
            "sleep 30 & sleep 30; wait",
            Some(Duration::from_millis(300)),
        ),
        Value::Null,
    );
    assert_eq!(
        out,
        Err(JobError::Retryable("timed out after 0.3 s".into()))
    );
}

#[test]
fn cancelling_kills_the_program() {
    let a = attempt("exec_cancel");
    let cancel = a.cancel.clone();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        cancel.request(jobq::StopReason::Cancelled);
    });
    let out = sh("sleep 30", None).run(&a.ctx, Value::Null);
    setter.join().unwrap();
    assert_eq!(out, Err(JobError::Cancelled));
    assert_eq!(a.queue.get(a.job.id).unwrap().attempts, 1);
}

#[test]
fn a_chatty_program_never_deadlocks_and_stdout_is_capped() {
    let script =
        "head -c 3000000 /dev/zero >&2; head -c 3000000 /dev/zero | tr '\\0' y; cat >/dev/null";
    let big = json!({"blob": "z".repeat(500_000)});
    let out = run(&sh(script, None), big).unwrap();
    assert_eq!(out["stdout_truncated"], json!(true));
    assert_eq!(out["stdout"].as_str().unwrap().len(), MAX_STDOUT_BYTES);
}

#[test]
fn a_program_that_ignores_stdin_still_completes() {
    let big = json!({"blob": "z".repeat(900_000)});
    let out = run(&sh("echo '{\"ok\":true}'", None), big);
    assert_eq!(out, Ok(json!({"ok": true})));
}

#[test]
fn database_urls_with_a_password_are_told_apart() {
    use crate::handlers::exec::has_password;
    assert!(has_password("postgres://app:s3cret@db.internal:5432/jobs"));
    assert!(!has_password("postgres://app@db.internal/jobs"));
    assert!(!has_password("./jobq.db"));
    assert!(!has_password("/var/lib/jobq/a:b@c.db"));
    assert!(!has_password("sqlite:///tmp/x.db"));
}

#[test]
fn exit_79_with_a_delay_on_stdout_snoozes() {
    let table = [
        (
            "echo 30s; exit 79",
            Err(JobError::Snooze(Duration::from_secs(30))),
        ),
        (
            "echo 120; exit 79",
            Err(JobError::Snooze(Duration::from_secs(120))),
        ),
    ];
    for (script, want) in table {
        let a = attempt("exec_snooze");
        let h = ExecHandler::new(vec!["sh".into(), "-c".into(), script.into()], None);
        assert_eq!(h.run(&a.ctx, Value::Null), want, "{script}");
    }
    let a = attempt("exec_snooze_bad");
    let h = ExecHandler::new(
        vec!["sh".into(), "-c".into(), "echo soon; exit 79".into()],
        None,
    );
    match h.run(&a.ctx, Value::Null) {
        Err(JobError::Retryable(m)) => assert!(m.contains("no delay"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_grandchild_holding_stderr_open_does_not_cost_the_error_text() {
    // The grandchild is in a session of its own (kill_group does not reach
    // it) and keeps stderr open after the program exits: the reader never
    // sees the end, so the outcome is made of what was read by then.
    let script = "setsid sleep 8 >/dev/null & echo 'record 7: invalid date field' >&2; exit 1";
    match run(&sh(script, None), Value::Null) {
        Err(JobError::Permanent(m)) => assert!(m.contains("invalid date field"), "{m}"),
        other => panic!("{other:?}"),
    }
}
