//! Everyday commands through the real binary: what `list` says about pending,
//! running and retried jobs; `serve --workers`; completions and man pages.

use std::time::Duration;

use jobq::{NewJob, Queue};
use serde_json::json;

use crate::util::{signal, wait_exit, wait_for, Sandbox, TEST_CONFIG};

const PATIENCE: Duration = Duration::from_secs(30);

/// `again` fails permanently on its first run; later runs wait for the file
/// `go`, then complete. `hold` waits for `go` and records how many ran at once.
const CONFIG: &str = r#"
[workers]
count = 4
poll_interval = "100ms"
durability = "normal"

[handlers.echo]
command = ["cat"]

[handlers.again]
command = ["sh", "-c", """
if [ ! -e failed-once ]; then touch failed-once; echo 'record not found' >&2; exit 1; fi
while [ ! -e go ]; do sleep 0.05; done
echo '{}'
"""]
max_attempts = 1

[handlers.hold]
command = ["sh", "-c", """
touch running.$JOBQ_JOB_ID
ls running.* | wc -l >> concurrency
while [ ! -e go ]; do sleep 0.05; done
rm running.$JOBQ_JOB_ID
echo '{}'
"""]
"#;

fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.config(CONFIG);
    s
}

/// The `list --full-ids` row of job `id` (ids made within a minute share
/// their first 8 digits: short ids would not tell these rows apart).
fn row(s: &Sandbox, id: &str) -> String {
    let out = s.ok(&["list", "--full-ids"]);
    let found = out.lines().find(|l| l.starts_with(id));
    found.unwrap_or_else(|| panic!("{id} in {out}")).to_string()
}

fn status(s: &Sandbox, id: &str) -> String {
    s.json(&["show", id])["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Regression: after a manual retry, `list` showed the old error beside a job
/// that was pending or running again, as if the new run had failed.
#[test]
fn a_job_running_again_after_a_retry_shows_no_stale_error() {
    let s = sandbox();
    let id = s.ok(&["enqueue", "again"]);
    s.ok(&["work", "--drain"]);
    assert!(
        row(&s, &id).contains("record not found"),
        "failed: its error"
    );

    s.ok(&["retry", &id[..13]]);
    let pending = row(&s, &id);
    assert!(!pending.contains("record not found"), "{pending}");
    assert!(pending.contains("ready"), "{pending}");
    let shown = s.ok(&["show", &id]);
    let error_line = shown.lines().find(|l| l.starts_with("error ")).unwrap();
    assert!(error_line.ends_with(" -"), "{shown}");
    let earlier = shown.lines().find(|l| l.starts_with("earlier_error"));
    assert!(earlier.is_some_and(|l| l.contains("attempt 1 at ") && l.contains("record not found")));
    let json = s.json(&["show", &id]);
    assert_eq!(
        json["error_message"], "exited with status 1: record not found",
        "JSON as stored"
    );

    let mut work = s.spawn(&["work"], "work");
    wait_for("the job to run again", PATIENCE, || {
        status(&s, &id) == "in_progress"
    });
    let running = row(&s, &id);
    assert!(!running.contains("record not found"), "{running}");
    assert!(running.contains("running "), "{running}");
    std::fs::write(s.path().join("go"), "").unwrap();
    wait_for("the job to complete", PATIENCE, || {
        status(&s, &id) == "completed"
    });
    signal(&work, libc::SIGTERM);
    assert_eq!(wait_exit(&mut work, PATIENCE), 0);
}

#[test]
fn list_shows_when_pending_jobs_are_due_and_how_far_running_ones_are() {
    let s = sandbox();
    let later = s.ok(&["enqueue", "echo", "--delay", "3h"]);
    let now = s.ok(&["enqueue", "echo"]);
    let queue = Queue::open(s.db()).unwrap();
    let running = queue.enqueue(NewJob::new("echo", json!({}))).unwrap();
    let claimed = queue.claim("w", None, 1, Duration::from_secs(60)).unwrap();
    assert_eq!(claimed[0].id, now.parse().unwrap(), "the due job first");
    let claimed_too = queue.claim("w", None, 1, Duration::from_secs(60)).unwrap();
    queue
        .progress(running.id, claimed_too[0].lease_token, 0.4, "compressing")
        .unwrap();

    assert!(row(&s, &later).ends_with(" in 3h"), "{}", row(&s, &later));
    let reported = row(&s, &running.id.to_string());
    assert!(reported.ends_with(" 40% compressing"), "{reported}");
    assert!(
        row(&s, &now).contains(" running "),
        "no report yet: {}",
        row(&s, &now)
    );
    let header = s.ok(&["list"]).lines().next().unwrap().to_string();
    assert!(header.contains("DUE/PROGRESS"), "{header}");
}

#[test]
fn serve_runs_as_many_workers_as_asked() {
    let s = sandbox();
    for _ in 0..4 {
        s.ok(&["enqueue", "hold"]);
    }
    let mut serve = s.spawn(
        // A host name resolves (to its IPv4 address).
        &["serve", "--addr", "localhost:0", "--workers", "2"],
        "serve",
    );
    let queue = Queue::open(s.db()).unwrap();
    let counted = || std::fs::read_to_string(s.path().join("concurrency")).unwrap_or_default();
    // Both first jobs have counted the running ones before any may finish.
    wait_for("two jobs running and counted", PATIENCE, || {
        counted().lines().count() == 2
    });
    assert_eq!(queue.stats().unwrap().by_status.in_progress, 2);
    std::fs::write(s.path().join("go"), "").unwrap();
    wait_for("all jobs done", PATIENCE, || {
        queue.stats().unwrap().by_status.completed == 4
    });
    let seen = counted();
    let most = seen
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .max();
    assert_eq!(
        most,
        Some(2),
        "at most 2 at once though [workers] count = 4: {seen}"
    );
    signal(&serve, libc::SIGTERM);
    assert_eq!(wait_exit(&mut serve, PATIENCE), 0, "{}", s.log("serve"));
    assert!(s.log("serve").contains("2 workers"), "{}", s.log("serve"));
    assert!(s.log("serve").contains("127.0.0.1:"), "{}", s.log("serve"));
}

#[test]
fn serve_on_a_taken_address_fails_before_it_creates_the_database() {
    let s = sandbox();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = s.run(&["serve", "--addr", &addr]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&addr), "{}", run.stderr);
    assert!(!s.db().exists(), "a refused address left a database file");
    // With the address free, the same command serves on that file.
    drop(taken);
    let mut serve = s.spawn(&["serve", "--addr", &addr], "serve");
    wait_for("the server serving", PATIENCE, || {
        s.log("serve").contains("serving http://")
    });
    assert!(s.db().exists());
    signal(&serve, libc::SIGTERM);
    assert_eq!(wait_exit(&mut serve, PATIENCE), 0, "{}", s.log("serve"));
}

#[test]
fn completions_name_the_commands_for_each_shell() {
    // A bad config does not matter: completions and man read no config.
    let s = Sandbox::new();
    s.config("[workers]\nbogus = 1\n");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = s.ok(&["completions", shell]);
        for word in [
            "enqueue",
            "list",
            "show",
            "completions",
            "watch",
            "full-ids",
        ] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    let run = s.run(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn man_pages_describe_the_commands() {
    let s = Sandbox::new();
    let page = s.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH jobq 1"),
        "{page}"
    );
    for command in ["enqueue", "list", "serve", "completions", "man"] {
        assert!(page.contains(command), "jobq(1) lists {command}");
    }
    let list = s.ok(&["man", "list"]);
    assert!(list.contains(".TH jobq-list 1"), "{list}");
    assert!(list.contains(r"\-\-watch") && list.contains(r"\-\-full\-ids"));
    assert_eq!(s.run(&["man", "nosuch"]).code, 2);

    // The directory is made when it does not exist.
    let dir = s.path().join("share/man/man1");
    s.ok(&["man", "--out-dir", dir.to_str().unwrap()]);
    for name in [
        "jobq.1",
        "jobq-list.1",
        "jobq-queue-pause.1",
        "jobq-completions.1",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name} written");
    }
}

#[test]
fn help_names_the_new_flags() {
    let s = Sandbox::new();
    s.config(TEST_CONFIG);
    let list = s.ok(&["list", "--help"]);
    assert!(
        list.contains("--watch") && list.contains("--full-ids"),
        "{list}"
    );
    assert!(s.ok(&["show", "--help"]).contains("--follow"));
    assert!(s.ok(&["stats", "--help"]).contains("--watch"));
    assert!(s.ok(&["serve", "--help"]).contains("--workers"));
    assert!(s.ok(&["retry", "--help"]).contains("at least 8 hex digits"));
}

crate::backends::both! {
fn recover_worker_hands_a_killed_pools_job_back_and_refuses_an_unknown_name(db) {
    let s = Sandbox::on(&db);
    s.config("[handlers.hold]\ncommand = [\"sleep\", \"60\"]\n");
    let id = s.ok(&["enqueue", "hold"]);
    let mut work = s.spawn(&["work", "--workers", "1"], "work");
    wait_for("the job to start", PATIENCE, || {
        s.json(&["show", &id])["status"] == json!("in_progress")
    });
    let pool = s.json(&["workers"])[0]["id"]
        .as_str()
        .expect("the pool is registered")
        .to_string();
    work.kill().unwrap();
    wait_exit(&mut work, PATIENCE);

    let unknown = s.run(&["recover", "--worker", "no-such-pool"]);
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert!(
        unknown.stderr.contains("no worker pool named 'no-such-pool'"),
        "{unknown:?}"
    );
    let fresh = s.run(&["recover", "--worker", &pool]);
    assert_eq!(fresh.code, 4, "its heartbeat is still fresh: {fresh:?}");
    assert_eq!(s.json(&["show", &id])["status"], json!("in_progress"));

    assert_eq!(
        s.ok(&["recover", "--worker", &pool, "--force"]),
        "recovered 1 job"
    );
    let job = s.json(&["show", &id]);
    assert_eq!(job["status"], json!("pending"), "{job}");
    let error = job["error_message"].as_str().unwrap_or_default();
    assert!(error.contains("stopped (recovered by hand)"), "{job}");
    // A known pool with nothing left to hand back is not an error.
    assert_eq!(
        s.ok(&["recover", "--worker", &pool, "--force"]),
        "recovered 0 jobs"
    );
}
}

#[test]
fn a_new_database_logs_one_line_for_its_schema() {
    let s = Sandbox::new();
    s.config(TEST_CONFIG);
    // `work` logs at info by default.
    let run = s.run(&["work", "--drain"]);
    assert_eq!(run.code, 0, "{run:?}");
    let schema: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("schema"))
        .collect();
    assert_eq!(schema.len(), 1, "{}", run.stderr);
    assert!(
        schema[0].contains("created the database schema (version "),
        "{}",
        run.stderr
    );
    let again = s.run(&["work", "--drain"]);
    assert!(!again.stderr.contains("schema"), "{}", again.stderr);
}

#[test]
fn a_delay_period_or_pause_past_the_bound_and_a_zero_unique_period_are_refused() {
    let s = Sandbox::new();
    s.config(TEST_CONFIG);
    let run = s.run(&["enqueue", "echo", "--delay", "100000000000d"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("invalid --delay: at most"), "{run:?}");
    let run = s.run(&["enqueue", "echo", "--unique-period", "0s"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("'--unique-period <DURATION>': must be more than 0"),
        "{run:?}"
    );
    let run = s.run(&["enqueue", "echo", "--unique-period", "100000000000d"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("'--unique-period <DURATION>': at most 100000000000 s"),
        "as period_s in JSON: {run:?}"
    );
    // The bound is the library's too: a pause as long is refused the same way.
    let run = s.run(&["queue", "pause", "default", "--for", "100000000000d"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("invalid for: a pause lasts at most 100000000000 s"),
        "{run:?}"
    );
    let run = s.run(&["enqueue", "echo", "--unique-period", "1500ms"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("must be whole seconds"),
        "as period_s in JSON: {run:?}"
    );
    assert!(!s.db().exists() || s.json(&["stats"])["total"] == 0);
}
