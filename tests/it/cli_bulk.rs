//! `jobq retry` and `jobq cancel` by filter, through the real binary: counts
//! printed, the confirmation above 100 jobs (refused without a terminal, asked
//! on one), --yes, --dry-run, --older-than, and the usage errors; on both
//! backends.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use rusqlite::Connection;

use crate::backends::{both, Db};
use crate::util::{Sandbox, TEST_CONFIG};

/// A sandbox with 150 pending `echo` jobs (queue default) and 20 pending
/// `fails` jobs in queue `emails`.
fn with_jobs(db: &Db) -> Sandbox {
    let s = Sandbox::on(db);
    s.config(TEST_CONFIG);
    let mut lines = String::new();
    for i in 0..150 {
        lines.push_str(&format!(
            "{{\"job_type\":\"echo\",\"payload\":{{\"n\":{i}}}}}\n"
        ));
    }
    for i in 0..20 {
        lines.push_str(&format!(
            "{{\"job_type\":\"fails\",\"queue\":\"emails\",\"payload\":{{\"n\":{i}}}}}\n"
        ));
    }
    std::fs::write(s.path().join("jobs.jsonl"), lines).unwrap();
    assert_eq!(s.ok(&["enqueue", "--jsonl", "jobs.jsonl"]), "170");
    s
}

/// How many jobs `jobq list` counts with these filters.
fn total(s: &Sandbox, filters: &[&str]) -> u64 {
    let mut args = vec!["list"];
    args.extend_from_slice(filters);
    s.json(&args)["total"].as_u64().expect("total")
}

both! {
fn over_100_jobs_without_a_terminal_are_refused_and_yes_changes_them_all(db) {
    let s = with_jobs(&db);
    let run = s.run(&["cancel", "--type", "echo"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("150 jobs"), "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(total(&s, &["--status", "pending", "--type", "echo"]), 150);

    assert_eq!(
        s.ok(&["cancel", "--type", "echo", "--dry-run"]),
        "would cancel 150 jobs"
    );
    assert_eq!(total(&s, &["--status", "pending"]), 170);

    assert_eq!(
        s.ok(&["cancel", "--type", "echo", "--yes"]),
        "cancelled 150 jobs"
    );
    assert_eq!(total(&s, &["--status", "cancelled", "--type", "echo"]), 150);
    assert_eq!(total(&s, &["--status", "pending", "--queue", "emails"]), 20);

    let out = s.json(&["retry", "--status", "cancelled", "--type", "echo", "-y"]);
    assert_eq!(out["count"], 150);
    assert_eq!(total(&s, &["--status", "pending", "--type", "echo"]), 150);
    let job = &s.json(&["list", "--type", "echo", "--limit", "1"])["jobs"][0];
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );
}
}

both! {
fn a_few_jobs_change_without_asking_and_only_those_matching(db) {
    let s = with_jobs(&db);
    assert_eq!(s.ok(&["cancel", "--queue", "emails"]), "cancelled 20 jobs");
    assert_eq!(total(&s, &["--status", "cancelled"]), 20);
    assert_eq!(total(&s, &["--status", "pending", "--type", "echo"]), 150);
    // Nothing left to cancel in that queue; retry takes them back.
    assert_eq!(s.ok(&["cancel", "--queue", "emails"]), "cancelled 0 jobs");
    assert_eq!(
        s.ok(&["retry", "--queue", "emails", "--type", "fails"]),
        "retried 20 jobs"
    );
    assert_eq!(total(&s, &["--status", "pending"]), 170);
}
}

both! {
fn older_than_leaves_newer_jobs_alone(db) {
    let s = with_jobs(&db);
    // Make the `fails` jobs two hours old.
    let age = "UPDATE {jobs} SET created_at = created_at - 7200000 WHERE job_type = 'fails'";
    let n = if db.is_postgres() {
        let mut c = postgres::Client::connect(&db.location(), postgres::NoTls).unwrap();
        c.execute(&age.replace("{jobs}", "jobq.jobs"), &[]).unwrap()
    } else {
        let conn = Connection::open(s.db()).unwrap();
        conn.execute(&age.replace("{jobs}", "jobs"), []).unwrap() as u64
    };
    assert_eq!(n, 20);
    assert_eq!(
        s.ok(&["cancel", "--status", "pending", "--older-than", "1h"]),
        "cancelled 20 jobs"
    );
    assert_eq!(total(&s, &["--status", "cancelled", "--type", "fails"]), 20);
    assert_eq!(total(&s, &["--status", "pending", "--type", "echo"]), 150);
    assert_eq!(s.ok(&["retry", "--older-than", "3h"]), "retried 0 jobs");
}
}

both! {
fn ids_still_work_one_or_many(db) {
    let s = Sandbox::on(&db);
    s.config(TEST_CONFIG);
    let a = s.ok(&["enqueue", "echo"]);
    let b = s.ok(&["enqueue", "echo"]);
    assert_eq!(
        s.ok(&["cancel", &a, &b]),
        format!("job {a} is cancelled\njob {b} is cancelled")
    );
    assert_eq!(s.ok(&["retry", &a]), format!("job {a} is pending"));
}
}

both! {
fn a_retry_that_would_duplicate_a_unique_job_is_skipped_not_fatal(db) {
    let s = Sandbox::on(&db);
    s.config(TEST_CONFIG);
    let held = s.ok(&["enqueue", "echo", "--unique-key", "k"]);
    let plain = s.ok(&["enqueue", "echo"]);
    assert_eq!(s.ok(&["cancel", "--type", "echo"]), "cancelled 2 jobs");
    let holder = s.ok(&["enqueue", "echo", "--unique-key", "k"]);
    assert_ne!(holder, held);
    assert_eq!(
        s.ok(&["retry", "--status", "cancelled", "--dry-run"]),
        "would retry 2 jobs"
    );
    assert_eq!(
        s.ok(&["retry", "--status", "cancelled"]),
        "retried 1 job; 1 job left as it was (changed meanwhile, or a retry would make a second live holder of a unique key)"
    );
    assert_eq!(s.json(&["show", &plain])["status"], "pending");
    assert_eq!(s.json(&["show", &held])["status"], "cancelled");
}
}

both! {
fn bulk_usage_errors_exit_2(db) {
    let s = with_jobs(&db);
    let id = s.json(&["list", "--limit", "1"])["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["retry"], "name job ids, or a filter"),
        (&["cancel"], "name job ids, or a filter"),
        (&["retry", "--status", "pending"], "never pending"),
        (&["cancel", "--status", "completed"], "never completed"),
        (&["cancel", &id, "--type", "echo"], "cannot be used with"),
    ];
    for (args, says) in cases {
        let run = s.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert_eq!(total(&s, &["--status", "pending"]), 170);
}
}

/// A pseudo-terminal: (the side a test writes to, the side a child reads from).
fn pty() -> (File, File) {
    let (mut master, mut slave) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two fresh descriptors that nothing else owns.
    let own = |fd| File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    (own(master), own(slave))
}

/// `jobq ARGS` with its standard input on a terminal where `answer` is typed.
fn on_terminal(s: &Sandbox, args: &[&str], answer: &str) -> crate::util::Run {
    let (mut master, slave) = pty();
    let mut cmd = s.cmd(args);
    cmd.stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn jobq");
    drop(cmd); // Our copy of the terminal's child side.
    master.write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    crate::util::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

both! {
fn on_a_terminal_over_100_jobs_are_asked_about_first(db) {
    let s = with_jobs(&db);
    let no = on_terminal(&s, &["cancel", "--type", "echo"], "n\n");
    assert_eq!(no.code, 1, "{}", no.stderr);
    assert!(
        no.stderr.contains("cancel 150 jobs (type echo)? [y/N]"),
        "{}",
        no.stderr
    );
    assert!(no.stderr.contains("not confirmed"), "{}", no.stderr);
    assert_eq!(total(&s, &["--status", "pending", "--type", "echo"]), 150);

    let yes = on_terminal(&s, &["cancel", "--type", "echo"], "y\n");
    assert_eq!(yes.code, 0, "{}", yes.stderr);
    assert_eq!(yes.stdout.trim(), "cancelled 150 jobs");
    assert_eq!(total(&s, &["--status", "cancelled", "--type", "echo"]), 150);
}
}

both! {
fn named_ids_are_each_changed_and_each_failure_reported(db) {
    let s = Sandbox::on(&db);
    s.config(TEST_CONFIG);
    let a = s.ok(&["enqueue", "echo", "--delay", "1h"]);
    let b = s.ok(&["enqueue", "echo", "--delay", "1h"]);
    s.ok(&["cancel", &b]);
    let unknown = "00000000-0000-7000-8000-000000000000";
    // a is pending (a retry is exit 4), the unknown id is exit 3; b still
    // changes.
    let run = s.run(&["retry", &a, unknown, &b]);
    assert_eq!(run.code, 4, "the first error's code: {run:?}");
    assert!(run.stdout.contains(&format!("job {b} is pending")), "{run:?}");
    assert!(run.stderr.contains(&format!("jobq: {a}: ")), "{run:?}");
    assert!(run.stderr.contains(&format!("jobq: {unknown}: ")), "{run:?}");
    assert!(run.stderr.contains("2 of 3 jobs not retried"), "{run:?}");
    assert_eq!(s.json(&["show", &b])["status"], "pending");
    // One id: its own error, as before.
    let one = s.run(&["retry", unknown]);
    assert_eq!(one.code, 3, "{one:?}");
    assert!(!one.stderr.contains("jobs not"), "{one:?}");
}
}
