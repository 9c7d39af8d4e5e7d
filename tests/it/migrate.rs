//! `jobq migrate` through the real binary: a varied queue goes SQLite ->
//! PostgreSQL -> SQLite and every field of every job, token, queue setting and
//! schedule comes back; live leases are refused (and handed back with
//! `--release-leases`); a target that is not empty is refused; 5,000 realistic
//! jobs move and verify. Without PostgreSQL installed (and not required) the
//! middle database is a second SQLite file.

use std::sync::Arc;
use std::time::Duration;

use jobq::{
    ApiToken, Backoff, Catalog, ErrorClass, Failure, Job, JobFilter, JobStatus, JobType,
    LimitsChange, ManualClock, NewJob, Queue, QueueInfo, QueueOptions, RateLimit, Schedule,
    ScheduleInfo, Timestamp, Unique,
};
use serde_json::json;

use crate::util::{jobq_bin, Run};

/// 2025-11-30T12:00:00Z: leases taken then have long expired by the real clock.
const T0: i64 = 1_764_504_000_000;
const LEASE: Duration = Duration::from_secs(300);

fn catalog() -> Catalog {
    let mut c = Catalog::any_type();
    let steps = vec![Duration::from_millis(10), Duration::from_millis(20)];
    c.declare(JobType::new("flaky").backoff(Backoff::new(steps).unwrap()))
        .unwrap();
    c.declare_schedule(Schedule::new("nightly", "0 3 * * *", "report").unwrap())
        .unwrap();
    c
}

fn open_at(location: &str, clock: &ManualClock) -> Queue {
    let o = QueueOptions::new(location)
        .clock(Arc::new(clock.clone()))
        .catalog(catalog());
    Queue::open_with(o).expect("open queue")
}

/// `jobq migrate ARGS`, run in `dir` with no config.
fn migrate(dir: &std::path::Path, args: &[&str]) -> Run {
    let out = std::process::Command::new(jobq_bin())
        .current_dir(dir)
        .arg("migrate")
        .args(args)
        .env_remove("JOBQ_DB")
        .env_remove("JOBQ_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run jobq");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn claim(q: &Queue, job_type: &str) -> Job {
    let types = [job_type.to_string()];
    q.claim("w1", Some(&types[..]), 1, LEASE)
        .unwrap()
        .pop()
        .expect("a due job")
}

fn enqueue(q: &Queue, new: NewJob) -> Job {
    q.enqueue(new).unwrap().job
}

/// Jobs in every status and shape, tokens, a paused queue with limits, a fired schedule.
fn fill(q: &Queue, clock: &ManualClock) {
    let big = NewJob::from_json(
        r#"{"job_type":"plain","payload":{"z":1,"a":12345678901234567890123,"d":1.50,"t":"héllo ✓ 🚀"},"priority":7,"entity_type":"doc","entity_id":"d-1"}"#,
    )
    .unwrap();
    enqueue(q, big.owner("alice"));
    enqueue(
        q,
        NewJob::new("plain", json!(null)).delay(Duration::from_secs(3600)),
    );
    enqueue(q, NewJob::new("mailer", json!({"to": "x"})).queue("mail"));
    enqueue(
        q,
        NewJob::new("uniq", json!(1)).unique(Unique::by_key("k1")),
    );
    let u = enqueue(
        q,
        NewJob::new("uniq2", json!(2))
            .unique(Unique::by_key("k2").also_in(&[JobStatus::Completed])),
    );
    let c = claim(q, "uniq2");
    assert_eq!(c.id, u.id);
    q.complete(c.id, c.lease_token, &json!({"ok": [1, 2.50]}))
        .unwrap();
    enqueue(q, NewJob::new("running", json!({})));
    let r = claim(q, "running");
    q.progress(r.id, r.lease_token, 0.4, "halfway").unwrap();
    enqueue(q, NewJob::new("stop", json!({})));
    let s = claim(q, "stop");
    q.cancel(s.id).unwrap();
    enqueue(q, NewJob::new("dead", json!({})).max_attempts(1));
    let d = claim(q, "dead");
    q.fail(
        d.id,
        d.lease_token,
        &Failure::new("boom", ErrorClass::Permanent),
    )
    .unwrap();
    let f = enqueue(q, NewJob::new("flaky", json!({"n": 1})).max_attempts(4));
    for _ in 0..2 {
        let c = claim(q, "flaky");
        q.fail(
            c.id,
            c.lease_token,
            &Failure::new("try again", ErrorClass::Retryable),
        )
        .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(q.get(f.id).unwrap().attempts, 2);
    enqueue(q, NewJob::new("nap", json!({})));
    let n = claim(q, "nap");
    q.snooze(n.id, n.lease_token, Duration::from_secs(60))
        .unwrap();
    let gone = enqueue(q, NewJob::new("plain", json!("cancel me")));
    q.cancel(gone.id).unwrap();
    q.fire_schedule("nightly").unwrap();
    clock.advance(Duration::from_secs(86_400));
    q.fire_schedule("nightly").unwrap();
    q.create_token("alice", false).unwrap();
    let t = q.create_token("bob", true).unwrap();
    q.revoke_token(t.token.id).unwrap();
    let rate = RateLimit::new(10, Duration::from_secs(60)).unwrap();
    q.set_queue_limits(
        "mail",
        LimitsChange {
            concurrency: Some(Some(2)),
            rate_limit: Some(Some(rate)),
        },
    )
    .unwrap();
    q.pause_queue("mail", None).unwrap();
}

/// Every job in id order, read a page at a time.
fn all_jobs(q: &Queue) -> Vec<Job> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = q
            .list(&JobFilter::default(), 500, cursor.as_deref())
            .unwrap();
        out.extend(page.jobs);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort_by_key(|j| j.id);
    out
}

type Everything = (Vec<Job>, Vec<ApiToken>, Vec<QueueInfo>, Vec<ScheduleInfo>);

fn everything(q: &Queue) -> Everything {
    (
        all_jobs(q),
        q.list_tokens(None).unwrap(),
        q.queues().unwrap(),
        q.schedules().unwrap(),
    )
}

/// A PostgreSQL database when PostgreSQL is there, else a second SQLite file.
fn middle(dir: &std::path::Path, test: &str) -> (String, Option<crate::pg::TestDb>) {
    match crate::pg::TestDb::new(test) {
        Some(db) => (db.url.clone(), Some(db)),
        None => (dir.join("middle.db").to_string_lossy().into_owned(), None),
    }
}

#[test]
fn a_round_trip_through_postgres_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db").to_string_lossy().into_owned();
    let last = dir.path().join("last.db").to_string_lossy().into_owned();
    let (mid, _pg) = middle(dir.path(), "migrate::round_trip");
    let clock = ManualClock::new(Timestamp(T0));
    let before = {
        let q = open_at(&first, &clock);
        fill(&q, &clock);
        everything(&q)
    };
    let statuses: std::collections::HashSet<JobStatus> =
        before.0.iter().map(|j| j.status).collect();
    assert_eq!(
        statuses.len(),
        5,
        "every status is in the set: {statuses:?}"
    );
    assert!(before
        .0
        .iter()
        .any(|j| j.progress.is_some() && j.unique.is_none()));
    assert!(before.0.iter().any(|j| j.cancel_requested));
    assert!(before
        .0
        .iter()
        .any(|j| j.backoff.is_some() && j.error_context.is_some()));

    for (from, to) in [(&first, &mid), (&mid, &last)] {
        let run = migrate(dir.path(), &["--from", from, "--to", to]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("verified"), "{run:?}");
    }
    for at in [&mid, &last] {
        let after = everything(&open_at(at, &clock));
        assert_eq!(after.0, before.0, "jobs on {at}");
        assert_eq!(after.1, before.1, "tokens on {at}");
        assert_eq!(after.2, before.2, "queues on {at}");
        assert_eq!(after.3, before.3, "schedules on {at}");
    }
    // New tokens on the target get ids after the copied ones.
    let q = open_at(&mid, &clock);
    let max = before.1.iter().map(|t| t.id).max().unwrap();
    assert!(q.create_token("carol", false).unwrap().token.id > max);
}

#[test]
fn live_leases_are_refused_unless_released_and_then_handed_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db").to_string_lossy().into_owned();
    let (dst, _pg) = middle(dir.path(), "migrate::live_leases");
    let q = Queue::open(&src).unwrap();
    let job = q.enqueue(NewJob::new("work", json!({}))).unwrap().job;
    let held = q.claim("w1", None, 1, Duration::from_secs(3600)).unwrap();
    assert_eq!(held.len(), 1);

    let refused = migrate(dir.path(), &["--from", &src, "--to", &dst]);
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("live lease"), "{refused:?}");
    assert!(refused.stderr.contains("--release-leases"), "{refused:?}");
    assert_eq!(q.get(job.id).unwrap().status, JobStatus::InProgress);
    assert_eq!(Queue::open(&dst).unwrap().stats().unwrap().total, 0);
    // Refused before the target is opened: a new SQLite target is not created.
    let new = dir.path().join("new.db");
    let refused = migrate(dir.path(), &["--from", &src, "--to", new.to_str().unwrap()]);
    assert_eq!(refused.code, 4, "{refused:?}");
    let made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("new.db"))
        .collect();
    assert!(made.is_empty(), "the refusal created {made:?}");
    // The same file twice, through another path, is named as such.
    let again = dir.path().join(".").join("src.db");
    let same = migrate(
        dir.path(),
        &["--from", &src, "--to", again.to_str().unwrap()],
    );
    assert_eq!(same.code, 2, "{same:?}");
    assert!(same.stderr.contains("the same database"), "{same:?}");

    let run = migrate(
        dir.path(),
        &["--from", &src, "--to", &dst, "--release-leases"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 job(s) handed back"), "{run:?}");
    for at in [&src, &dst] {
        let j = Queue::open(at).unwrap().get(job.id).unwrap();
        assert_eq!(j.status, JobStatus::Pending, "on {at}");
        assert_eq!(j.attempts, 0, "the attempt is not counted on {at}");
        assert_eq!(j.locked_by, None);
    }
}

#[test]
fn a_target_that_is_not_empty_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db").to_string_lossy().into_owned();
    let (dst, _pg) = middle(dir.path(), "migrate::not_empty");
    let s = Queue::open(&src).unwrap();
    s.enqueue(NewJob::new("a", json!(1))).unwrap();
    let t = Queue::open(&dst).unwrap();
    let there = t.enqueue(NewJob::new("b", json!(2))).unwrap().job;

    let run = migrate(dir.path(), &["--from", &src, "--to", &dst]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("not empty"), "{run:?}");
    let jobs = all_jobs(&t);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, there.id);

    let missing = dir.path().join("nope.db").to_string_lossy().into_owned();
    let run = migrate(dir.path(), &["--from", &missing, "--to", &dst]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!std::path::Path::new(&missing).exists());
}

/// 5,000 jobs shaped like a real application's (payloads of 100 bytes to 5 KB,
/// non-ASCII text, owners, entities, priorities), some finished.
fn five_thousand(q: &Queue) {
    let types = [
        "document.process",
        "embedding.generate",
        "board.sync",
        "import.rows",
    ];
    let jobs: Vec<NewJob> = (0..5_000u32)
        .map(|i| {
            let text = "ünïcødé 🚀 ".repeat(1 + (i as usize * 37) % 300);
            let mut j = NewJob::new(types[i as usize % 4], json!({"i": i, "text": text}))
                .priority((i % 5) as i32 - 2)
                .owner(format!("user{}", i % 17));
            if i % 3 == 0 {
                j = j.entity("doc", format!("d{i}"));
            }
            if i % 5 == 0 {
                j = j.max_attempts(3);
            }
            j
        })
        .collect();
    for chunk in jobs.chunks(1_000) {
        q.enqueue_many(chunk.to_vec()).unwrap();
    }
    for _ in 0..10 {
        for c in q.claim("w1", None, 100, LEASE).unwrap() {
            q.complete(c.id, c.lease_token, &json!({"done": c.id.to_string()}))
                .unwrap();
        }
    }
}

#[test]
fn five_thousand_jobs_move_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db").to_string_lossy().into_owned();
    let (dst, _pg) = middle(dir.path(), "migrate::five_thousand");
    let q = Queue::open(&src).unwrap();
    five_thousand(&q);
    let before = all_jobs(&q);
    assert_eq!(before.len(), 5_000);

    let run = migrate(
        dir.path(),
        &["--from", &src, "--to", &dst, "--batch", "700"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let jobs_line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("jobs "))
        .unwrap();
    let counts: Vec<&str> = jobs_line.split_whitespace().collect();
    assert_eq!(counts, ["jobs", "5000", "5000"], "{}", run.stdout);
    assert!(run.stdout.contains("completed") && run.stdout.contains("verified"));
    assert!(run.stderr.contains("copying jobs: 5000/5000"), "{run:?}");
    assert_eq!(all_jobs(&Queue::open(&dst).unwrap()), before);
}

#[test]
fn a_live_worker_pool_is_refused_and_a_stopped_one_is_not() {
    let s = crate::util::Sandbox::new();
    s.config("[handlers.echo]\ncommand = [\"cat\"]\n");
    s.ok(&["enqueue", "echo"]);
    let dst = s.path().join("dst.db").to_string_lossy().into_owned();
    let src = s.location();
    let mut work = s.spawn(&["work"], "work");
    let q = Queue::open(&src).unwrap();
    crate::util::wait_for("the pool's row", Duration::from_secs(20), || {
        q.workers().unwrap().iter().any(|w| w.alive)
    });

    let refused = migrate(s.path(), &["--from", &src, "--to", &dst]);
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("1 live worker pool"), "{refused:?}");

    crate::util::signal(&work, libc::SIGTERM);
    assert_eq!(
        crate::util::wait_exit(&mut work, Duration::from_secs(30)),
        0
    );
    let run = migrate(s.path(), &["--from", &src, "--to", &dst]);
    assert_eq!(run.code, 0, "{run:?}\n{}", s.log("work"));
    assert_eq!(all_jobs(&Queue::open(&dst).unwrap()), all_jobs(&q));
}
