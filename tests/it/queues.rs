//! Named queues across processes: concurrency and rate limits hold exactly for
//! every process on the file, a pause survives restarts, one busy queue does
//! not starve another, and bad input is refused with nothing changed.

use crate::backends::both;
use std::io::Write;
use std::process::Child;
use std::time::Duration;

use jobq::{Clock, Job, Queue};
use serde_json::{json, Value};

use crate::util::{all_of, signal, wait_exit, wait_for, Sandbox};

/// Enqueues `n` jobs of `job_type` from one JSONL file.
fn enqueue_n(sb: &Sandbox, job_type: &str, n: usize) {
    let path = sb.path().join(format!("{job_type}.jsonl"));
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..n {
        writeln!(
            f,
            r#"{{"job_type": "{job_type}", "payload": {{"i": {i}}}}}"#
        )
        .unwrap();
    }
    sb.ok(&["enqueue", "--jsonl", path.to_str().unwrap()]);
}

fn completed(sb: &Sandbox, job_type: &str) -> u64 {
    sb.json(&["stats"])["by_type"][job_type]["completed"]
        .as_u64()
        .unwrap_or(0)
}

fn stop_all(children: Vec<Child>) {
    for c in &children {
        signal(c, libc::SIGTERM);
    }
    for mut c in children {
        assert_eq!(wait_exit(&mut c, Duration::from_secs(60)), 0);
    }
}

/// The most jobs in progress at any instant, from their claim and end times
/// (an end and a start in the same ms: the end came first).
fn max_overlap(jobs: &[Job]) -> usize {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for j in jobs {
        events.push((j.started_at.unwrap().0, 1));
        events.push((j.completed_at.unwrap().0, -1));
    }
    events.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap()
}

both! {
fn a_concurrency_limit_holds_across_four_processes(db) {
    let sb = Sandbox::on(&db);
    sb.config(
        r#"
[workers]
count = 4
poll_interval = "50ms"
durability = "normal"

[queues.limited]
concurrency = 3

[handlers.work]
command = ["sh", "-c", "sleep 0.03"]
queue = "limited"
"#,
    );
    enqueue_n(&sb, "work", 300);
    let workers: Vec<Child> = (0..4)
        .map(|i| sb.spawn(&["work"], &format!("w{i}")))
        .collect();
    wait_for("300 jobs completed", Duration::from_secs(120), || {
        completed(&sb, "work") == 300
    });
    stop_all(workers);
    let jobs = all_of(&Queue::open(sb.location()).unwrap(), "work");
    assert_eq!(jobs.len(), 300);
    assert!(jobs.iter().all(|j| j.attempts == 1 && j.queue == "limited"));
    let most = max_overlap(&jobs);
    assert!(
        (2..=3).contains(&most),
        "{most} at once: at most 3, and more than one slot used"
    );
}
}

both! {
fn a_rate_limit_holds_in_every_sliding_second(db) {
    let sb = Sandbox::on(&db);
    sb.config(
        r#"
[workers]
count = 4
poll_interval = "20ms"
durability = "normal"

[queues.rated]
rate_limit = "20/1s"

[handlers.tick]
command = ["true"]
queue = "rated"
"#,
    );
    enqueue_n(&sb, "tick", 200);
    let workers: Vec<Child> = (0..2)
        .map(|i| sb.spawn(&["work"], &format!("r{i}")))
        .collect();
    wait_for("200 jobs completed", Duration::from_secs(120), || {
        completed(&sb, "tick") == 200
    });
    stop_all(workers);
    let mut starts: Vec<i64> = all_of(&Queue::open(sb.location()).unwrap(), "tick")
        .iter()
        .map(|j| j.started_at.unwrap().0)
        .collect();
    starts.sort_unstable();
    let most = starts
        .iter()
        .map(|&s| starts.iter().filter(|&&t| t > s - 1000 && t <= s).count())
        .max()
        .unwrap();
    assert!(most <= 20, "a sliding second held {most} starts");
    // 200 starts at no more than 20 a second span at least 9 s (without the
    // limit they all start within a few hundred ms).
    let span = starts.last().unwrap() - starts.first().unwrap();
    assert!(span >= 9_000, "200 starts within {span} ms");
}
}

/// Start times (ms) the handler of `sb` logged.
fn logged_starts(sb: &Sandbox) -> Vec<i64> {
    let text = std::fs::read_to_string(sb.path().join("starts.log")).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn now_ms() -> i64 {
    jobq::SystemClock.now().0
}

both! {
fn a_pause_holds_for_every_process_across_restarts_until_resumed(db) {
    let sb = Sandbox::on(&db);
    let log = sb.path().join("starts.log");
    sb.config(&format!(
        r#"
[workers]
count = 2
poll_interval = "50ms"
durability = "normal"
shutdown_grace = "5s"

[handlers.slowq]
command = ["sh", "-c", "echo $(($(date +%s%N) / 1000000)) >> {}; sleep 0.2"]
queue = "p"
"#,
        log.display()
    ));
    enqueue_n(&sb, "slowq", 30);
    let spawn = |tag: &str| -> Vec<Child> {
        (0..2)
            .map(|i| sb.spawn(&["work"], &format!("{tag}{i}")))
            .collect()
    };
    let first = spawn("a");
    wait_for("a few jobs done", Duration::from_secs(60), || {
        completed(&sb, "slowq") >= 4
    });
    let paused = sb.json(&["queue", "pause", "p"]);
    assert_eq!(paused["paused"], json!(true));
    let t0 = now_ms();
    stop_all(first);
    let second = spawn("b");
    wait_for(
        "the restarted workers polling",
        Duration::from_secs(30),
        || sb.log("b0").contains("started") && sb.log("b1").contains("started"),
    );
    std::thread::sleep(Duration::from_millis(1500)); // time in which nothing may start
    let listed = sb.json(&["queue", "list"]);
    let p = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "p")
        .unwrap()
        .clone();
    assert_eq!(
        (p["paused"].clone(), p["running"].clone()),
        (json!(true), json!(0))
    );
    let t1 = now_ms();
    sb.ok(&["queue", "resume", "p"]);
    wait_for("all 30 completed", Duration::from_secs(60), || {
        completed(&sb, "slowq") == 30
    });
    stop_all(second);
    let late: Vec<i64> = logged_starts(&sb)
        .into_iter()
        .filter(|&s| s > t0 + 500 && s < t1)
        .collect();
    assert!(
        late.is_empty(),
        "jobs started while the queue was paused: {late:?}"
    );
}
}

both! {
fn a_busy_queue_does_not_starve_another_and_priorities_hold_within_a_queue(db) {
    let q = Queue::open(db.location()).unwrap();
    let mut busy: Vec<jobq::NewJob> = (0..30)
        .map(|i| jobq::NewJob::new("t", json!({"q": "busy", "i": i})).queue("busy"))
        .collect();
    for j in busy.iter_mut().skip(20) {
        j.priority = Some(5);
    }
    q.enqueue_many(busy).unwrap();
    for i in 0..3 {
        q.enqueue(jobq::NewJob::new("t", json!({"q": "other", "i": i})).queue("other"))
            .unwrap();
    }
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = order.clone();
    let mut reg = jobq::Registry::new();
    reg.register("t", move |_: &jobq::JobContext, p: Value| {
        seen.lock().unwrap().push(p);
        Ok(Value::Null)
    });
    let cfg = jobq::WorkerConfig {
        workers: 1,
        drain: true,
        ..jobq::WorkerConfig::default()
    };
    let pool = jobq::WorkerPool::start(q.clone(), reg, cfg).unwrap();
    assert!(pool.wait(Duration::from_secs(60)));
    pool.shutdown(Duration::from_secs(1));
    let order = order.lock().unwrap();
    assert_eq!(order.len(), 33);
    let last_other = order.iter().rposition(|p| p["q"] == "other").unwrap();
    assert!(
        last_other < 8,
        "the other queue waited for the busy one: {last_other}"
    );
    let busy_prios: Vec<bool> = order
        .iter()
        .filter(|p| p["q"] == "busy")
        .map(|p| p["i"].as_u64().unwrap() >= 20)
        .collect();
    assert!(
        busy_prios[..10].iter().all(|high| *high),
        "priority 5 first in its queue"
    );
}
}

both! {
fn bad_queue_input_is_refused_and_changes_nothing(db) {
    let sb = Sandbox::on(&db);
    sb.config(crate::util::TEST_CONFIG);
    sb.ok(&["enqueue", "echo", "--queue", "mail"]);
    let cases: [(&[&str], &str); 12] = [
        (&["queue", "pause", "Not A Name"], "invalid queue"),
        (
            &["queue", "pause", "nosuchqueue"],
            "unknown queue \"nosuchqueue\" (a queue is known while it has a pending or running job, once it has settings stored, or when it is declared: [queues.nosuchqueue] in jobq.toml, Catalog::declare_queue in Rust)",
        ),
        (
            &["queue", "set", "mail", "--concurrency", "0"],
            "from 1 to 2147483647",
        ),
        (
            &["queue", "set", "mail", "--concurrency", "-2"],
            "concurrency",
        ),
        (
            &["queue", "set", "mail", "--rate-limit", "100/"],
            "\"100/\"",
        ),
        (
            &["queue", "set", "mail", "--rate-limit", "x/1m"],
            "\"x/1m\"",
        ),
        (&["queue", "set", "mail"], "--concurrency or --rate-limit"),
        (
            &["enqueue", "echo", "--queue", "Bad Queue"],
            "invalid queue",
        ),
        (&["list", "--queue", "Bad Queue"], "invalid queue"),
        (&["list", "--type", "Bad Type"], "invalid job_type"),
        (&["retry", "--type", "x y"], "invalid job_type"),
        (&["cancel", "--type", "E"], "invalid job_type"),
    ];
    for (args, words) in cases {
        let run = sb.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
    }
    let queues = sb.json(&["queue", "list"]);
    for q in queues.as_array().unwrap() {
        assert_eq!(
            (&q["concurrency"], &q["rate_limit"], &q["paused"]),
            (&Value::Null, &Value::Null, &json!(false)),
            "{q}"
        );
    }
    for (key, value) in [
        ("concurrency", "0"),
        ("rate_limit", "\"100/\""),
        ("rate_limit", "\"x/1m\""),
    ] {
        let bad = Sandbox::on(&db);
        bad.config(&format!("[queues.mail]\n{key} = {value}\n"));
        let run = bad.run(&["enqueue", "jobq.prune"]);
        assert_eq!(run.code, 2, "{key} = {value}: {}", run.stderr);
        assert!(run.stderr.contains("jobq.toml:2"), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("queues.mail.{key}")),
            "{}",
            run.stderr
        );
    }
}
}

both! {
fn queues_over_http_list_pause_resume_and_change_limits(db) {
    let api = crate::http_util::start_on(&db);
    let admin = Some(api.admin.as_str());
    let patch = |name: &str, body: Value| {
        api.call(
            "PATCH",
            &format!("/api/v1/admin/queues/{name}"),
            admin,
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    let set = patch("default", json!({"concurrency": 2, "rate_limit": "10/1s"}));
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(
        (&set.body["concurrency"], &set.body["rate_limit"]),
        (&json!(2), &json!("10/1s"))
    );
    let cleared = patch("default", json!({"concurrency": null}));
    assert_eq!(
        (&cleared.body["concurrency"], &cleared.body["rate_limit"]),
        (&Value::Null, &json!("10/1s"))
    );
    for (body, status) in [
        (json!({"concurrency": 0}), 422),
        (json!({"concurrency": -1}), 422),
        (json!({"rate_limit": "x/1m"}), 422),
        (json!({"rate_limit": 5}), 422),
        (json!({"rate_limit": "5/1h 30m"}), 422),
        (json!({"colour": "red"}), 422),
        (json!({"concurrency": 1.5}), 422),
        (json!({"concurrency": 3.0}), 200),
    ] {
        assert_eq!(patch("default", body.clone()).status, status, "{body}");
    }
    assert_eq!(patch("nosuchqueue", json!({"concurrency": 1})).status, 404);
    let pause = api.call(
        "POST",
        "/api/v1/admin/queues/default/pause",
        admin,
        Some(("application/json", br#"{"for_s": 600}"#)),
    );
    assert_eq!(pause.status, 200, "{}", pause.text);
    assert_eq!(pause.body["paused"], json!(true));
    assert!(pause.body["paused_until"].is_string());
    let list = api.get("/api/v1/admin/queues", admin);
    let default = list.body["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "default")
        .unwrap()
        .clone();
    assert_eq!(default["paused"], json!(true));
    let resume = api.call("POST", "/api/v1/admin/queues/default/resume", admin, None);
    assert_eq!(
        (resume.status, &resume.body["paused"]),
        (200, &json!(false))
    );
    let alice = api.get("/api/v1/admin/queues", Some(&api.alice));
    assert_eq!(alice.status, 403);
    let bad = api.call("POST", "/api/v1/admin/queues/Bad%20Name/pause", admin, None);
    assert_eq!(bad.status, 422, "{}", bad.text);
    let encoded = api.call("POST", "/api/v1/admin/queues/no%3Asuch/resume", admin, None);
    assert_eq!(encoded.status, 404, "a %3A is a colon: {}", encoded.text);
}
}

both! {
fn stats_and_list_by_queue(db) {
    let sb = Sandbox::on(&db);
    sb.config(crate::util::TEST_CONFIG);
    sb.ok(&["enqueue", "echo", "--queue", "mail"]);
    sb.ok(&["enqueue", "echo", "--queue", "mail"]);
    sb.ok(&["enqueue", "echo"]);
    let stats = sb.json(&["stats"]);
    assert_eq!(stats["by_queue"]["mail"]["pending"], json!(2));
    assert_eq!(stats["by_queue"]["default"]["pending"], json!(1));
    let page = sb.json(&["list", "--queue", "mail"]);
    assert_eq!(page["total"], json!(2));
    let human = sb.ok(&["stats"]);
    assert!(human.contains("QUEUE"), "{human}");
}
}

both! {
fn a_snoozing_job_runs_again_without_using_an_attempt(db) {
    let sb = Sandbox::on(&db);
    let marker = sb.path().join("snoozed-once");
    sb.config(&format!(
        r#"
[workers]
poll_interval = "50ms"
durability = "normal"

[handlers.later]
command = ["sh", "-c", "if [ -e {m} ]; then echo '{{\"ok\": true}}'; else touch {m}; echo 0s; exit 79; fi"]
"#,
        m = marker.display()
    ));
    let once = sb.ok(&["enqueue", "later"]);
    sb.ok(&["work", "--drain", "--wait"]);
    let done = sb.json(&["show", &once]);
    assert_eq!(
        (&done["status"], &done["attempts"], &done["snoozes"]),
        (&json!("completed"), &json!(1), &json!(1))
    );
}


fn a_snooze_waits_at_least_its_minimum_and_stops_at_the_limit(db) {
    let clock = jobq::ManualClock::new(jobq::Timestamp(1_764_504_000_000));
    let q = db.open(|o| o.clock(std::sync::Arc::new(clock.clone())));
    let id = q
        .enqueue(jobq::NewJob::new("forever", json!(null)))
        .unwrap()
        .id;
    let lease = std::time::Duration::from_secs(60);
    for n in 1..=jobq::state::MAX_SNOOZES {
        let job = q.claim("w", None, 1, lease).unwrap().pop().expect("due");
        // A zero delay (or a Retry-After date already past) waits the minimum.
        let status = q.snooze(id, job.lease_token, std::time::Duration::ZERO);
        assert_eq!(status.unwrap(), jobq::JobStatus::Pending, "snooze {n}");
        let back = q.get(id).unwrap();
        assert_eq!(back.next_retry, clock.now().plus(jobq::state::MIN_SNOOZE));
        assert!(
            q.claim("w", None, 1, lease).unwrap().is_empty(),
            "not due yet"
        );
        clock.advance(jobq::state::MIN_SNOOZE);
    }
    let job = q.claim("w", None, 1, lease).unwrap().pop().expect("due");
    let status = q.snooze(id, job.lease_token, std::time::Duration::ZERO);
    assert_eq!(status.unwrap(), jobq::JobStatus::Failed);
    let stuck = q.get(id).unwrap();
    assert_eq!(
        (stuck.snoozes, stuck.attempts),
        (jobq::state::MAX_SNOOZES, 1)
    );
    let msg = stuck.error_message.unwrap();
    assert!(msg.contains("snoozed 100 times"), "{msg}");
}
}

both! {
/// `--drain --wait` waits "until none it serves is pending": a due job that a
/// queue's concurrency limit holds back (another process runs the queue's one
/// allowed job) is waited for, not left behind; plain `--drain` stops.
fn a_drain_with_wait_waits_for_a_due_job_a_queues_limit_holds(db) {
    use std::time::Duration;
    let sb = Sandbox::on(&db);
    let (started, gate) = (sb.path().join("started"), sb.path().join("gate"));
    // A job runs until the test opens the gate.
    sb.config(&format!(
        r#"
[workers]
poll_interval = "50ms"
durability = "normal"

[handlers.slow]
command = ["sh", "-c", "cat > /dev/null; touch {s}; while [ ! -e {g} ]; do sleep 0.05; done"]
queue = "one"

[queues.one]
concurrency = 1
"#,
        s = started.display(),
        g = gate.display()
    ));
    let first = sb.ok(&["enqueue", "slow"]);
    let second = sb.ok(&["enqueue", "slow"]);
    let mut holder = sb.spawn(&["work", "--workers", "1"], "holder");
    crate::util::wait_for("the first job to start", Duration::from_secs(30), || {
        started.exists()
    });
    // The queue's one slot is taken: a plain drain claims nothing and stops.
    let plain = sb.run(&["work", "--drain"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.stderr.contains("1 due job it serves left"), "{}", plain.stderr);
    assert_eq!(sb.json(&["show", &second])["status"], "pending");
    // With --wait it looks again (every 50 ms here) while the slot is taken:
    // a second pass, with its own report...
    let mut waiter = sb.spawn(&["work", "--drain", "--wait"], "waiter");
    crate::util::wait_for("--wait to look again", Duration::from_secs(30), || {
        sb.log("waiter").matches("drained: ").count() >= 2
    });
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "--wait ended with a job it serves pending: {}",
        sb.log("waiter")
    );
    // ...and ends once the job has left pending (run by either process).
    std::fs::write(&gate, b"open").unwrap();
    assert_eq!(crate::util::wait_exit(&mut waiter, Duration::from_secs(60)), 0);
    // The pools the passes started are told once, at the drain's end.
    let log = sb.log("waiter");
    assert_eq!(log.matches(" started: ").count(), 0, "{log}");
    assert_eq!(log.matches("drain ended after ").count(), 1, "{log}");
    assert_ne!(sb.json(&["show", &second])["status"], "pending");
    assert_ne!(sb.json(&["show", &first])["status"], "pending");
    crate::util::signal(&holder, libc::SIGTERM);
    assert_eq!(crate::util::wait_exit(&mut holder, Duration::from_secs(30)), 0);
}
}

both! {
fn a_paused_queues_jobs_are_named_as_paused_everywhere_and_not_waited_for(db) {
    let sb = Sandbox::on(&db);
    sb.config(
        r#"
[workers]
poll_interval = "50ms"
durability = "normal"

[handlers.r]
command = ["cat"]
queue = "images"

[handlers.echo]
command = ["cat"]
"#,
    );
    let id = sb.ok(&["enqueue", "r"]);
    sb.ok(&["enqueue", "r", "--delay", "1h"]);
    sb.ok(&["queue", "pause", "images"]);
    // A drain, even with --wait, ends at once and names what the pause holds.
    let run = sb.run(&["work", "--drain", "--wait"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("jobs left in paused queues, not waited for")
            && run.stderr.contains("2 r (queue images)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("does not serve"), "{}", run.stderr);
    let show = sb.json(&["show", &id]);
    assert_eq!(show["status"], "pending");
    assert!(sb.ok(&["list"]).contains("ready, queue paused"));
    let stats = sb.json(&["stats"]);
    assert_eq!(stats["unserved"], json!([]), "{stats}");
    assert_eq!(stats["paused"][0]["queue"], "images", "{stats}");
    assert_eq!(stats["paused"][0]["ready"], 1, "{stats}");
    assert_eq!(stats["paused"][0]["paused"], true, "{stats}");
    let text = sb.ok(&["stats"]);
    assert!(
        text.contains("due in paused queues (`jobq queue resume NAME`): 1 r (queue images)"),
        "{text}"
    );
    assert!(!text.contains("served by no live worker"), "{text}");
    sb.ok(&["queue", "resume", "images"]);
    assert!(!sb.ok(&["list"]).contains("paused"));
    sb.ok(&["work", "--drain"]);
    assert_eq!(sb.json(&["show", &id])["status"], "completed");
    assert_eq!(sb.json(&["stats"])["paused"], json!([]));
}
}

both! {
    /// The largest `max_attempts` and concurrency are stored exactly as given
    /// on both backends (PostgreSQL keeps them in an `integer`), and one more
    /// is refused with nothing changed, by the library and by the CLI.
    fn the_largest_counts_are_stored_exactly_and_one_more_is_refused(db) {
        use jobq::{LimitsChange, NewJob, MAX_ATTEMPTS, MAX_CONCURRENCY};
        assert_eq!((MAX_ATTEMPTS, MAX_CONCURRENCY), (2_147_483_647, 2_147_483_647));
        let q = db.open(|o| o);
        let job = NewJob::new("t", json!(1)).queue("big").max_attempts(MAX_ATTEMPTS);
        let job = q.enqueue(job).unwrap();
        assert_eq!(q.get(job.id).unwrap().max_attempts, MAX_ATTEMPTS);
        let over = q.enqueue(NewJob::new("t", json!(2)).max_attempts(MAX_ATTEMPTS + 1));
        assert!(
            matches!(over, Err(jobq::Error::Invalid { field: "max_attempts", .. })),
            "{over:?}"
        );
        let limit = |n| LimitsChange {
            concurrency: Some(Some(n)),
            rate_limit: None,
        };
        let info = q.set_queue_limits("big", limit(MAX_CONCURRENCY)).unwrap();
        assert_eq!(info.concurrency, Some(MAX_CONCURRENCY));
        let over = q.set_queue_limits("big", limit(MAX_CONCURRENCY + 1));
        assert!(
            matches!(over, Err(jobq::Error::Invalid { field: "concurrency", .. })),
            "{over:?}"
        );
        assert_eq!(q.queue_info("big").unwrap().concurrency, Some(MAX_CONCURRENCY));
        assert_eq!(q.list(&Default::default(), 10, None).unwrap().total, 1);
        // A rate limit built from its public fields is checked as `new` checks it.
        let rate = jobq::RateLimit {
            count: jobq::RateLimit::MAX_COUNT + 1,
            period: Duration::from_secs(1),
        };
        let over = q.set_queue_limits(
            "big",
            LimitsChange {
                concurrency: None,
                rate_limit: Some(Some(rate)),
            },
        );
        assert!(
            matches!(over, Err(jobq::Error::Invalid { field: "rate_limit", .. })),
            "{over:?}"
        );
        assert_eq!(q.queue_info("big").unwrap().rate_limit, None);
        let declared = jobq::QueueSpec::new("big").rate_limit(rate);
        assert!(jobq::Catalog::any_type().declare_queue(declared).is_err());

        let sb = Sandbox::on(&db);
        let out = sb.run(&["enqueue", "t", "--max-attempts", "2147483648"]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("1..=2147483647"), "{}", out.stderr);
        let out = sb.run(&["queue", "set", "big", "--concurrency", "2147483648"]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("from 1 to 2147483647"), "{}", out.stderr);
        assert_eq!(q.queue_info("big").unwrap().concurrency, Some(MAX_CONCURRENCY));
    }
}
