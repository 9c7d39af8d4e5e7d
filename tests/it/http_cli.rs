//! `jobq serve` and `jobq token`: the real binary on a free port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{signal, wait_exit, wait_for, Sandbox};

const PATIENCE: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
[workers]
poll_interval = "100ms"
durability = "normal"

[handlers.echo]
command = ["cat"]
priority = 4
"#;

/// `jobq serve --addr 127.0.0.1:0` with `env`; returns the child and its base URL.
fn serve(s: &Sandbox, env: &[(&str, &str)]) -> (Child, String) {
    let log = std::fs::File::create(s.path().join("serve.log")).unwrap();
    let mut cmd = s.cmd(&["serve", "--addr", "127.0.0.1:0"]);
    cmd.env_remove("JOBQ_CRON_SECRET")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let mut base = String::new();
    wait_for("serve to listen", PATIENCE, || {
        let log = std::fs::read_to_string(s.path().join("serve.log")).unwrap_or_default();
        let found = log.lines().find_map(|l| l.split("serving ").nth(1));
        if let Some(url) = found {
            base = url.split_whitespace().next().unwrap_or("").to_string();
        }
        !base.is_empty()
    });
    (child, base)
}

fn stop(mut child: Child) {
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, PATIENCE), 0);
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let res = match body {
        Some(b) => {
            let req = req.header("Content-Type", "application/json");
            agent.run(req.body(serde_json::to_vec(b).unwrap()).unwrap())
        }
        None => agent.run(req.body(()).unwrap()),
    };
    let mut res = res.unwrap();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (
        res.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[test]
fn tokens_are_printed_once_listed_without_secrets_and_revoked() {
    let s = Sandbox::new();
    let secret = s.ok(&["token", "create", "--user", "alice"]);
    assert!(
        secret.starts_with("jobq_") && secret.len() == 69,
        "{secret}"
    );
    s.ok(&["token", "create", "--user", "ops", "--admin"]);
    let table = s.ok(&["token", "list"]);
    assert!(
        table.contains("alice") && table.contains("admin"),
        "{table}"
    );
    let listed = s.json(&["token", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!table.contains(&secret[5..]) && !listed.to_string().contains(&secret[5..]));
    assert_eq!(s.ok(&["token", "revoke", "1"]), "revoked 1 token");
    assert_eq!(s.run(&["token", "revoke", "1"]).code, 3);
    assert_eq!(s.run(&["token", "revoke", "--user", "nobody"]).code, 3);
    assert_eq!(s.run(&["token", "create", "--user", "a b"]).code, 2);
    assert_eq!(s.run(&["token", "revoke"]).code, 2);
}

#[test]
fn serve_runs_workers_and_the_api_with_tokens_and_the_cron_secret() {
    let s = Sandbox::new();
    s.config(CONFIG);
    let alice = s.ok(&["token", "create", "--user", "alice"]);
    let admin = s.ok(&["token", "create", "--user", "ops", "--admin"]);
    let (child, base) = serve(&s, &[("JOBQ_CRON_SECRET", "tick")]);

    let (status, job) = call(
        "POST",
        &format!("{base}/api/v1/jobs"),
        Some(&alice),
        Some(&json!({"job_type": "echo", "payload": {"n": 1}})),
    );
    assert_eq!(
        (status, job["owner"].as_str(), job["priority"].as_i64()),
        (201, Some("alice"), Some(4))
    );
    let url = format!("{base}/api/v1/jobs/{}", job["id"].as_str().unwrap());
    wait_for("the workers to run the job", PATIENCE, || {
        call("GET", &url, Some(&alice), None).1["status"] == "completed"
    });
    assert_eq!(
        call("GET", &url, Some(&alice), None).1["result"],
        json!({"n": 1})
    );

    let (status, err) = call(
        "POST",
        &format!("{base}/api/v1/jobs"),
        Some(&alice),
        Some(&json!({"job_type": "sms"})),
    );
    assert_eq!(status, 422);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("echo, jobq.prune"));
    assert_eq!(
        call(
            "GET",
            &format!("{base}/api/v1/admin/jobs"),
            Some(&alice),
            None
        )
        .0,
        403
    );
    assert_eq!(
        call(
            "GET",
            &format!("{base}/api/v1/admin/jobs/stats"),
            Some(&admin),
            None
        )
        .0,
        200
    );
    let (status, ran) = call(
        "POST",
        &format!("{base}/api/v1/cron/jobs"),
        Some("tick"),
        None,
    );
    assert_eq!((status, ran["processed"].is_u64()), (200, true));

    s.ok(&["token", "revoke", "--user", "alice"]);
    assert_eq!(call("GET", &url, Some(&alice), None).0, 401);
    stop(child);
}

#[test]
fn serve_works_without_a_config_and_keeps_cron_off_without_a_secret() {
    let s = Sandbox::new();
    let token = s.ok(&["token", "create", "--user", "alice"]);
    let admin = s.ok(&["token", "create", "--user", "root", "--admin"]);
    let (child, base) = serve(&s, &[]);
    assert_eq!(
        call("GET", &format!("{base}/healthz"), None, None),
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        call("POST", &format!("{base}/api/v1/cron/jobs"), Some("x"), None).0,
        404
    );
    let prune = json!({"job_type": "jobq.prune"});
    let url = format!("{base}/api/v1/jobs");
    assert_eq!(call("POST", &url, Some(&token), Some(&prune)).0, 403);
    assert_eq!(call("POST", &url, Some(&admin), Some(&prune)).0, 201);
    stop(child);
}

#[test]
fn serve_on_a_taken_address_fails_with_one_line() {
    let s = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = s.run(&["serve", "--addr", &addr]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&addr), "{}", run.stderr);
    let errors = run.stderr.lines().filter(|l| l.starts_with("jobq: "));
    assert_eq!(errors.count(), 1, "{}", run.stderr);
}

/// Threads of process `pid`: the `Threads:` line of /proc/PID/status.
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A connection to `base` that had `GET /healthz` answered and stays open.
fn idle_keep_alive(base: &str) -> TcpStream {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    while !got.ends_with(br#"{"status":"ok"}"#) {
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(!head.contains("connection: close"), "{head}");
    s
}

/// Regression: the guard in front of tiny_http used about 3 threads per open
/// connection (10 idle keep-alive clients took the server from 21 to 41 threads).
#[test]
fn an_idle_keep_alive_connection_costs_at_most_one_thread() {
    let s = Sandbox::new();
    let (child, base) = serve(&s, &[]);
    let _first = idle_keep_alive(&base);
    let before = threads_of(child.id());
    let idle: Vec<TcpStream> = (0..10).map(|_| idle_keep_alive(&base)).collect();
    let after = threads_of(child.id());
    stop(child);
    assert!(
        after <= before + idle.len(),
        "{before} threads, then {after} with {} more idle keep-alive connections",
        idle.len()
    );
}
