//! The example programs behave as their docs say: `embedded` runs its jobs and
//! exits (or serves until Ctrl-C with `--forever`); `http_api` answers the API
//! with the admin token it prints and stops when its stdin closes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::http_util::{body_of, raw, status_of};
use crate::util::{example_bin, signal, wait_exit, wait_for};

const PATIENCE: Duration = Duration::from_secs(60);

/// An example started in a fresh directory, its stderr in `stderr.log` there.
fn start(name: &str, args: &[&str], dir: &tempfile::TempDir) -> Child {
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    Command::new(example_bin(name))
        .args(args)
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn the example")
}

fn stderr_of(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
}

#[test]
fn embedded_runs_its_jobs_and_exits_when_they_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start("embedded", &[], &dir);
    assert_eq!(wait_exit(&mut child, PATIENCE), 0, "{}", stderr_of(&dir));
    let log = stderr_of(&dir);
    assert!(log.contains("exits when they are done"), "says so: {log}");
    let stats = log
        .lines()
        .find_map(|l| l.split_once("stats: ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("final stats in {log}"));
    let stats: Value = serde_json::from_str(stats).unwrap();
    assert_eq!(stats["by_status"]["completed"], 5, "{stats}");
    assert_eq!(stats["by_status"]["pending"], 0, "{stats}");
    assert_eq!(stats["by_status"]["in_progress"], 0, "{stats}");
}

#[test]
fn embedded_forever_serves_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start("embedded", &["--forever"], &dir);
    wait_for("the pool to serve", PATIENCE, || {
        stderr_of(&dir).contains("serving until Ctrl-C")
    });
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, PATIENCE), 0, "{}", stderr_of(&dir));
    assert!(stderr_of(&dir).contains("stopped: "), "{}", stderr_of(&dir));
}

/// The value after `prefix` on the next line of `out` that starts with it.
fn line_after(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no line {prefix}");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_string();
        }
    }
}

fn request(addr: SocketAddr, head: &str, token: &str, body: &str) -> (u16, Value) {
    let text = format!(
        "{head} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(addr, text.as_bytes(), PATIENCE);
    (status_of(&answer), body_of(&answer))
}

#[test]
fn http_api_runs_a_job_with_its_printed_token_and_stops_when_stdin_closes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start("http_api", &["q.db", "127.0.0.1:0"], &dir);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let addr: SocketAddr = line_after(&mut out, "listening on http://")
        .parse()
        .unwrap();
    let token = line_after(&mut out, "admin token: ");
    assert!(
        line_after(&mut out, "").contains("Ctrl-C"),
        "says how to stop"
    );

    let job = r#"{"job_type": "echo", "payload": {"hello": "world"}}"#;
    let (status, created) = request(addr, "POST /api/v1/jobs", &token, job);
    assert_eq!(status, 201, "{created}");
    let path = format!("GET /api/v1/jobs/{}", created["id"].as_str().unwrap());
    let mut shown = Value::Null;
    wait_for("the job to complete", PATIENCE, || {
        shown = request(addr, &path, &token, "").1;
        shown["status"] == "completed"
    });
    assert_eq!(shown["result"]["echo"]["hello"], "world", "{shown}");
    let (status, refused) = request(addr, "POST /api/v1/jobs", &token, r#"{"job_type": "nope"}"#);
    assert_eq!(status, 422, "a type nothing runs is refused: {refused}");

    drop(child.stdin.take());
    assert_eq!(wait_exit(&mut child, PATIENCE), 0, "{}", stderr_of(&dir));
}
