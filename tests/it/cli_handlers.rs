//! The exec and webhook handlers, declared in a config and run by `jobq work`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use jobq::Job;
use serde_json::{json, Value};

use crate::util::{wait_exit, wait_for, Sandbox};

fn show(s: &Sandbox, id: &str) -> Job {
    serde_json::from_value(s.json(&["show", id])).unwrap()
}

fn last_error(job: &Job) -> Value {
    job.error_context
        .as_ref()
        .map_or(Value::Null, |c| c["errors"][0].clone())
}

#[test]
fn exec_outcomes() {
    let s = Sandbox::new();
    s.config(
        r#"
[handlers.json_out]
command = ["cat"]
[handlers.text_out]
command = ["sh", "-c", "cat >/dev/null; printf 'attempt %s of %s' \"$JOBQ_ATTEMPT\" \"$JOBQ_JOB_TYPE\""]
[handlers.tempfail]
command = ["sh", "-c", "echo 'user not found' >&2; exit 75"]
max_attempts = 1
[handlers.missing]
command = ["sh", "-c", "echo 'warming up' >&2; echo 'file not found: x.txt' >&2; exit 1"]
max_attempts = 3
[handlers.flaky]
command = ["sh", "-c", "echo 'connection reset by peer' >&2; exit 1"]
max_attempts = 1
[handlers.hangs]
command = ["sh", "-c", "sleep 30"]
timeout = "300ms"
max_attempts = 1
"#,
    );
    let payload = r#"{"text":"ünïcödé 🎉","n":[1,2]}"#;
    let ids: HashMap<&str, String> = [
        "json_out", "text_out", "tempfail", "missing", "flaky", "hangs",
    ]
    .into_iter()
    .map(|t| (t, s.ok(&["enqueue", t, "--payload", payload])))
    .collect();
    s.ok(&["work", "--drain"]);

    let job = show(&s, &ids["json_out"]);
    assert_eq!(
        job.result,
        Some(serde_json::from_str::<Value>(payload).unwrap())
    );
    let job = show(&s, &ids["text_out"]);
    assert_eq!(job.result, Some(json!({"stdout": "attempt 1 of text_out"})));

    let job = show(&s, &ids["tempfail"]);
    assert_eq!(job.status.as_str(), "failed");
    assert_eq!(
        last_error(&job)["class"],
        "retryable",
        "exit 75 is retryable whatever stderr says"
    );

    let job = show(&s, &ids["missing"]);
    assert_eq!(
        (job.status.as_str(), job.attempts),
        ("failed", 1),
        "permanent: no retry"
    );
    assert!(job.error_message.unwrap().contains("file not found: x.txt"));

    let job = show(&s, &ids["flaky"]);
    assert_eq!(last_error(&job)["class"], "retryable");

    let job = show(&s, &ids["hangs"]);
    assert_eq!(job.status.as_str(), "failed");
    assert_eq!(job.error_message.as_deref(), Some("timed out after 0.3 s"));
    assert_eq!(last_error(&job)["class"], "retryable");
}

/// (job id, body) of each request the hook server saw.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A server answering by path: /ok 200 JSON, /text 200 text, /gone 410, /busy 503.
fn hook_server() -> (String, Seen) {
    let srv = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", srv.server_addr().to_ip().expect("ip"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        for mut req in srv.incoming_requests() {
            let (id, body) = crate::util::read_hook_request(&mut req);
            log.lock().unwrap().push((id, body));
            let (code, text) = match req.url() {
                "/ok" => (200, r#"{"stored":true}"#),
                "/text" => (202, "accepted"),
                "/gone" => (410, "gone"),
                _ => (503, "busy"),
            };
            req.respond(tiny_http::Response::from_string(text).with_status_code(code))
                .ok();
        }
    });
    (base, seen)
}

#[test]
fn webhook_outcomes() {
    let (base, seen) = hook_server();
    let s = Sandbox::new();
    s.config(&format!(
        r#"
[handlers.ok]
url = "{base}/ok"
[handlers.text]
url = "{base}/text"
[handlers.gone]
url = "{base}/gone"
max_attempts = 3
[handlers.busy]
url = "{base}/busy"
max_attempts = 2
backoff = ["10ms"]
"#
    ));
    let ids: HashMap<&str, String> = ["ok", "text", "gone", "busy"]
        .into_iter()
        .map(|t| (t, s.ok(&["enqueue", t, "--payload", r#"{"x":"é"}"#])))
        .collect();
    crate::util::wait_for(
        "the busy job to use its attempts",
        std::time::Duration::from_secs(20),
        || {
            s.ok(&["work", "--drain"]);
            show(&s, &ids["busy"]).status.as_str() == "failed"
        },
    );
    assert_eq!(show(&s, &ids["ok"]).result, Some(json!({"stored": true})));
    assert_eq!(
        show(&s, &ids["text"]).result,
        Some(json!({"body": "accepted"}))
    );
    let gone = show(&s, &ids["gone"]);
    assert_eq!((gone.status.as_str(), gone.attempts), ("failed", 1));
    let busy = show(&s, &ids["busy"]);
    assert_eq!(busy.attempts, 2);
    assert!(busy.error_message.unwrap().contains("503"));
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&(ids["ok"].clone(), r#"{"x":"é"}"#.to_string())));
}

/// Regression: a SIGKILLed worker's exec program ran on (reparented), so the
/// attempt that recovery started later could run beside it.
#[test]
fn an_exec_program_dies_with_its_killed_worker() {
    let s = Sandbox::new();
    let pidfile = s.path().join("child.pid");
    s.config(&format!(
        "[handlers.hold]\ncommand = [\"sh\", \"-c\", \"echo $$ > '{}'; exec sleep 60\"]\n",
        pidfile.display()
    ));
    s.ok(&["enqueue", "hold"]);
    let mut work = s.spawn(&["work", "--workers", "1"], "work");
    wait_for("the program to start", Duration::from_secs(30), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|t| t.ends_with('\n'))
    });
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.split(' ').nth(2).is_none_or(|st| st != "Z"))
    };
    assert!(alive(), "the program runs while its worker does");
    work.kill().unwrap();
    wait_exit(&mut work, Duration::from_secs(10));
    wait_for(
        "the program to die with its worker",
        Duration::from_secs(10),
        || !alive(),
    );
}

/// A `PATH` in a handler's `env` is the program's own: the program is still
/// found on jobq's `PATH`, as `jobq check` found it (it failed for good with
/// "program not found" while `check` said ok).
#[test]
fn a_path_in_a_handlers_env_is_the_programs_not_where_it_is_found() {
    let s = Sandbox::new();
    s.config(
        r#"
[handlers.own_path]
command = ["sh", "-c", "printf '{\"path\": \"%s\"}' \"$PATH\""]
env = { PATH = "/opt/mytool/bin" }

[handlers.bare]
command = ["sh", "-c", "printf '{\"path\": \"%s\"}' \"$PATH\""]
inherit_env = false
env = { PATH = "/nowhere" }
"#,
    );
    let check = s.run(&["check"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let a = s.ok(&["enqueue", "own_path"]);
    let b = s.ok(&["enqueue", "bare"]);
    s.ok(&["work", "--drain"]);
    for (id, path) in [(a, "/opt/mytool/bin"), (b, "/nowhere")] {
        let job = show(&s, &id);
        assert_eq!(
            job.status,
            jobq::JobStatus::Completed,
            "{:?}",
            job.error_message
        );
        assert_eq!(job.result, Some(json!({ "path": path })));
    }
}

/// Regression: a program that went missing after the pool started (a deploy
/// replacing it) failed its jobs for good on their first attempt. It is a
/// retryable failure: the job runs again by its backoff.
#[test]
fn a_program_missing_at_run_time_is_a_retryable_failure() {
    let s = Sandbox::new();
    let program = s.path().join("tool.sh");
    std::fs::write(&program, "#!/bin/sh\necho '{}'\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    s.config(&format!(
        "[handlers.tool]\ncommand = [{:?}]\n",
        program.display().to_string()
    ));
    assert_eq!(s.run(&["check"]).code, 0);
    // The pool starts while the program is there (its start check passes),
    // then the program goes.
    let mut work = s.spawn(&["work"], "work");
    crate::util::wait_for("the pool to start", Duration::from_secs(30), || {
        s.log("work").contains("started")
    });
    std::fs::remove_file(&program).unwrap();
    let id = s.ok(&["enqueue", "tool"]);
    crate::util::wait_for("the failed attempt", Duration::from_secs(30), || {
        let job = show(&s, &id);
        job.attempts == 1 && job.status == jobq::JobStatus::Pending
    });
    crate::util::signal(&work, libc::SIGTERM);
    wait_exit(&mut work, Duration::from_secs(30));
    let job = show(&s, &id);
    assert_eq!(
        job.status,
        jobq::JobStatus::Pending,
        "{:?}",
        job.error_message
    );
    let message = job.error_message.unwrap_or_default();
    assert!(message.contains("program not found"), "{message}");
    assert_eq!(job.error_context.unwrap()["class"], "retryable");
}

/// A drain right after another pool was killed mid-job says that pool still
/// holds the job (and how it comes back), rather than only "none is
/// running", which read as if nothing were left (found by a fresh-user pass).
#[test]
fn a_drain_names_the_jobs_another_pool_still_holds() {
    let s = Sandbox::new();
    s.config("[handlers.hold]\ncommand = [\"sleep\", \"60\"]\n");
    let id = s.ok(&["enqueue", "hold"]);
    let mut work = s.spawn(&["work", "--workers", "1"], "work");
    wait_for("the job to start", Duration::from_secs(30), || {
        s.json(&["show", &id])["status"] == serde_json::json!("in_progress")
    });
    let holder = s.json(&["show", &id])["locked_by"]
        .as_str()
        .unwrap()
        .to_string();
    work.kill().unwrap();
    wait_exit(&mut work, Duration::from_secs(10));
    let drain = s.run(&["work", "--drain"]);
    assert_eq!(drain.code, 0, "{}", drain.stderr);
    assert!(
        drain.stderr.contains(&format!(
            "1 job is in progress in other pools, not waited for: {holder} (1 running)"
        )),
        "{}",
        drain.stderr
    );
    assert!(
        drain.stderr.contains("jobq recover --worker NAME"),
        "{}",
        drain.stderr
    );
    assert_eq!(
        s.json(&["show", &id])["status"],
        serde_json::json!("in_progress")
    );
}
