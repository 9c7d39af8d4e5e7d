//! `list --watch`, `stats --watch` and `show --follow` through the real binary:
//! on a pseudo-terminal they redraw until Ctrl-C (SIGINT), exit 0 and give the
//! cursor back; anywhere else they print once; `--follow` prints a line per
//! change until the job ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq::{ErrorClass, Failure, NewJob, Queue, QueueOptions};
use serde_json::json;

use crate::pty::Pty;
use crate::util::{retry_at_once, signal, wait_exit, wait_for, Sandbox, TEST_CONFIG};

const PATIENCE: Duration = Duration::from_secs(20);
/// What every redrawn frame's title line says.
const TITLE: &str = "Ctrl-C stops";

fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.config(TEST_CONFIG);
    s
}

/// `jobq ARGS` with its stdout on `pty`.
fn on_terminal(s: &Sandbox, pty: &Pty, args: &[&str]) -> Child {
    let mut cmd = s.cmd(args);
    cmd.stdout(pty.slave()).stderr(Stdio::null());
    cmd.spawn().expect("spawn jobq")
}

/// Sends Ctrl-C's signal; the command must end cleanly and show the cursor again.
fn ctrl_c_stops(mut child: Child, pty: &Pty) {
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, PATIENCE), 0, "exit 0 after Ctrl-C");
    wait_for("the cursor to be shown again", PATIENCE, || {
        pty.output().ends_with("\x1b[?25h")
    });
}

#[test]
fn list_watch_redraws_on_a_terminal_until_ctrl_c() {
    let s = sandbox();
    let first = s.ok(&["enqueue", "echo"]);
    let pty = Pty::open(40, 200);
    let child = on_terminal(&s, &pty, &["list", "--watch"]);
    wait_for("the first frame", PATIENCE, || {
        pty.output().contains(&first[..8])
    });
    assert!(
        !pty.output().contains(&first),
        "short ids by default: {}",
        pty.output()
    );
    s.ok(&["enqueue", "fails", "--priority", "7"]);
    wait_for("a frame with the new job", PATIENCE, || {
        pty.output().contains("fails")
    });
    assert!(pty.output().matches(TITLE).count() >= 2, "redrawn in place");
    assert!(pty.output().contains("\x1b[H"), "frames start at the top");
    ctrl_c_stops(child, &pty);
}

#[test]
fn stats_watch_redraws_on_a_terminal_until_ctrl_c() {
    let s = sandbox();
    s.ok(&["enqueue", "echo"]);
    let pty = Pty::open(40, 200);
    let child = on_terminal(&s, &pty, &["stats", "--watch"]);
    wait_for("the first frame", PATIENCE, || {
        pty.output().contains("echo")
    });
    assert!(!pty.output().contains("fails"));
    s.ok(&["enqueue", "fails"]);
    wait_for("a frame counting the new job", PATIENCE, || {
        pty.output().contains("fails")
    });
    ctrl_c_stops(child, &pty);
}

#[test]
fn a_frame_is_cut_to_the_terminal_width() {
    let s = sandbox();
    let id = s.ok(&["enqueue", "echo"]);
    let pty = Pty::open(10, 30);
    let child = on_terminal(&s, &pty, &["list", "--watch", "--full-ids"]);
    wait_for("the first frame", PATIENCE, || {
        pty.output().contains(&id[..30])
    });
    assert!(!pty.output().contains(&id), "cut at 30 columns");
    ctrl_c_stops(child, &pty);
}

#[test]
fn watch_prints_once_when_stdout_is_not_a_terminal() {
    let s = sandbox();
    s.ok(&["enqueue", "echo"]);
    for cmd in ["list", "stats"] {
        let watched = s.run(&[cmd, "--watch"]);
        assert_eq!(watched.code, 0, "{watched:?}");
        assert!(!watched.stdout.contains('\x1b'), "no terminal codes");
        let once = s.ok(&[cmd]);
        let drop_time = |t: &str| t.lines().filter(|l| !l.starts_with("at ")).count();
        assert_eq!(drop_time(watched.stdout.trim()), drop_time(&once), "{cmd}");
        let json = s.run(&[cmd, "--watch", "--json"]);
        assert_eq!(json.code, 2, "--watch and --json do not mix: {json:?}");
    }
}

/// Lines of a child's stdout, collected by a thread.
fn lines_of(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (sink, out) = (lines.clone(), child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn wait_line(lines: &Mutex<Vec<String>>, label: &str, text: &str) {
    wait_for(label, PATIENCE, || {
        lines.lock().unwrap().iter().any(|l| l.contains(text))
    });
}

#[test]
fn follow_prints_each_change_until_the_job_ends() {
    let s = sandbox();
    let opts = QueueOptions::new(s.db()).catalog(retry_at_once("echo"));
    let queue = Queue::open_with(opts).unwrap();
    let job = queue
        .enqueue(NewJob::new("echo", json!({})).max_attempts(3))
        .unwrap();
    let short = queue.short_id(job.id).unwrap();
    let mut child = s.cmd(&["show", &short, "--follow"]);
    let mut child = child.stdout(Stdio::piped()).spawn().unwrap();
    let lines = lines_of(&mut child);
    wait_line(&lines, "the job named", &job.id.to_string());
    wait_line(&lines, "pending", "pending: due now");

    let lease = Duration::from_secs(60);
    let claimed = queue.claim("w", None, 1, lease).unwrap().remove(0);
    wait_line(&lines, "the start", "in_progress: attempt 1 of 3");
    queue
        .progress(job.id, claimed.lease_token, 0.5, "halfway")
        .unwrap();
    wait_line(&lines, "the progress", "attempt 1 of 3, 50% halfway");
    let failure = Failure::new("upstream temporarily unavailable", ErrorClass::Retryable);
    queue.fail(job.id, claimed.lease_token, &failure).unwrap();
    wait_line(
        &lines,
        "the failed attempt",
        "pending: attempt 1 of 3 failed: upstream temporarily unavailable",
    );
    let claimed = queue.claim("w", None, 1, lease).unwrap().remove(0);
    wait_line(&lines, "the retry", "in_progress: attempt 2 of 3");
    queue
        .complete(job.id, claimed.lease_token, &json!({"done": 1}))
        .unwrap();
    assert_eq!(wait_exit(&mut child, PATIENCE), 0, "ends with the job");
    wait_line(&lines, "the end", r#"completed: result {"done":1}"#);
    let lines = lines.lock().unwrap();
    let progress = lines.iter().filter(|l| l.contains("50% halfway"));
    assert_eq!(progress.count(), 1, "a line per change: {lines:?}");
}

#[test]
fn follow_json_prints_the_job_at_each_change() {
    let s = sandbox();
    let id = s.ok(&["enqueue", "echo"]);
    let mut child = s.cmd(&["show", &id[..13], "--follow", "--json"]);
    let mut child = child.stdout(Stdio::piped()).spawn().unwrap();
    let lines = lines_of(&mut child);
    wait_line(&lines, "the pending job", r#""status":"pending""#);
    s.ok(&["work", "--drain"]);
    assert_eq!(wait_exit(&mut child, PATIENCE), 0);
    wait_line(&lines, "the completed job", r#""status":"completed""#);
    for line in lines.lock().unwrap().iter() {
        let job: jobq::Job = serde_json::from_str(line).expect("each line is a job");
        assert_eq!(job.id.to_string(), id);
    }
}

#[test]
fn ctrl_c_stops_follow_cleanly() {
    let s = sandbox();
    let id = s.ok(&["enqueue", "echo"]);
    let mut child = s.cmd(&["show", &id, "--follow"]);
    let mut child = child.stdout(Stdio::piped()).spawn().unwrap();
    let lines = lines_of(&mut child);
    wait_line(&lines, "the pending job", "pending: due now");
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, PATIENCE), 0, "exit 0 after Ctrl-C");
    let job = s.json(&["show", &id]);
    assert_eq!(job["status"], "pending", "following changed nothing");
}
