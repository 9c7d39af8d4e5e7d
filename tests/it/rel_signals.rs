//! Stop signals to `jobq work`: signals that arrive together (GNU `timeout`
//! signals the program and then its process group) are one graceful stop; a
//! second signal later forces the exit.

use std::process::{Command, Stdio};
use std::time::Duration;

use jobq::{JobStatus, Queue};

use crate::util::{jobq_bin, signal, wait_exit, wait_for, Sandbox};

const PATIENCE: Duration = Duration::from_secs(30);

/// A sandbox whose `slow` jobs run 20 s, with the given shutdown grace.
fn sandbox(grace: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.config(&format!(
        "[workers]\npoll_interval = \"50ms\"\nshutdown_grace = \"{grace}\"\n\n\
         [handlers.slow]\ncommand = [\"sleep\", \"20\"]\n"
    ));
    sb
}

fn running(sb: &Sandbox, id: &str) -> bool {
    sb.json(&["show", id])["status"] == "in_progress"
}

fn status_and_attempts(sb: &Sandbox, id: &str) -> (JobStatus, u32) {
    let q = Queue::open(sb.db()).unwrap();
    let job = q.get(id.parse().unwrap()).unwrap();
    (job.status, job.attempts)
}

#[test]
fn two_signals_close_together_are_one_graceful_stop() {
    let sb = sandbox("100ms");
    let id = sb.ok(&["enqueue", "slow"]);
    let mut work = sb.spawn(&["work"], "work");
    wait_for("the job to run", PATIENCE, || running(&sb, &id));
    signal(&work, libc::SIGTERM);
    // Far enough apart that both are delivered (a pending signal sent again
    // is merged), close enough to be one stop.
    std::thread::sleep(Duration::from_millis(30));
    signal(&work, libc::SIGTERM);
    assert_eq!(wait_exit(&mut work, PATIENCE), 0, "{}", sb.log("work"));
    assert!(
        !sb.log("work").contains("second signal"),
        "{}",
        sb.log("work")
    );
    assert_eq!(status_and_attempts(&sb, &id), (JobStatus::Pending, 0));
}

#[test]
fn gnu_timeout_around_work_stops_it_gracefully() {
    let sb = sandbox("100ms");
    let id = sb.ok(&["enqueue", "slow"]);
    let out = Command::new("timeout")
        .arg("3")
        .arg(jobq_bin())
        .arg("work")
        .current_dir(sb.path())
        .env_remove("JOBQ_CONFIG")
        .env_remove("RUST_LOG")
        .env("JOBQ_DB", sb.location())
        .stdin(Stdio::null())
        .output()
        .expect("GNU timeout (coreutils) runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "timed out: {log}");
    assert!(!log.contains("second signal"), "{log}");
    assert_eq!(status_and_attempts(&sb, &id), (JobStatus::Pending, 0));
}

#[test]
fn a_later_second_signal_exits_at_once() {
    let sb = sandbox("30s");
    let id = sb.ok(&["enqueue", "slow"]);
    let mut work = sb.spawn(&["work"], "work");
    wait_for("the job to run", PATIENCE, || running(&sb, &id));
    signal(&work, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(600));
    signal(&work, libc::SIGTERM);
    assert_eq!(wait_exit(&mut work, PATIENCE), 1, "{}", sb.log("work"));
    assert!(
        sb.log("work").contains("second signal"),
        "{}",
        sb.log("work")
    );
    // Not handed back: it comes back when its lease expires.
    assert_eq!(status_and_attempts(&sb, &id).0, JobStatus::InProgress);
}
