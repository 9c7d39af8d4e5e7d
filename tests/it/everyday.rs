//! Everyday use: nothing waits silently (handlers that cannot run, due jobs no
//! pool serves, jobs waiting out a backoff), a dead pool's jobs handed back at
//! once, a user's own jobs over HTTP, progress from any handler, and error
//! history that tells runs apart across manual retries.

use std::sync::Arc;
use std::time::Duration;

use jobq::{Clock, JobStatus, ManualClock, NewJob, SystemClock};
use serde_json::{json, Value};

use crate::backends::both;
use crate::util::{signal, wait_exit, wait_for, Sandbox, TEST_CONFIG};

#[test]
fn a_handler_that_cannot_run_is_refused_at_start_and_by_check() {
    let sb = Sandbox::new();
    sb.config(&format!(
        "{TEST_CONFIG}\n[handlers.broken]\ncommand = [\"/nonexistent/bin/resize\"]\n\n[handlers.typo]\ncommand = [\"catt\"]\n"
    ));
    for args in [
        &["work", "--drain"][..],
        &["serve", "--addr", "127.0.0.1:0"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("handler broken cannot run"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("/nonexistent/bin/resize"),
            "{}",
            run.stderr
        );
    }
    let check = sb.run(&["check"]);
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert!(
        check.stdout.contains("`catt` is not found on PATH"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("does not exist"), "{}", check.stdout);
    assert!(!check.stdout.contains("config ok"), "{}", check.stdout);
    assert!(
        check.stderr.contains("2 handlers cannot run"),
        "{}",
        check.stderr
    );
    let good = Sandbox::new();
    good.config(TEST_CONFIG);
    let ok = good.run(&["check"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.contains("echo") && ok.stdout.contains("config ok"),
        "{}",
        ok.stdout
    );
}

both! {
fn due_jobs_no_pool_serves_are_said_out_loud(db) {
    let sb = Sandbox::on(&db);
    sb.config(TEST_CONFIG);
    sb.ok(&["enqueue", "echo"]);
    sb.ok(&["enqueue", "echo", "--queue", "mail"]);
    let stats = sb.json(&["stats"]);
    let unserved = stats["unserved"].as_array().unwrap();
    assert_eq!(
        unserved.len(),
        2,
        "no live pool: every due job is unserved: {stats}"
    );
    let mut mail_only = sb.spawn(&["work", "--queues", "mail"], "mail");
    wait_for("the mail pool ran its job", Duration::from_secs(30), || {
        sb.json(&["list", "--queue", "mail"])["jobs"][0]["status"] == "completed"
    });
    wait_for("the pool registered", Duration::from_secs(30), || {
        sb.json(&["workers"])
            .as_array()
            .is_some_and(|w| w.len() == 1)
    });
    let stats = sb.json(&["stats"]);
    assert_eq!(
        stats["unserved"],
        json!([{"job_type": "echo", "queue": "default", "ready": 1, "later": 0, "next_due": null, "paused": false}])
    );
    assert!(sb
        .ok(&["stats"])
        .contains("served by no live worker: 1 echo (queue default)"));
    // Logged beside the pool's start (the count reads every pending job).
    wait_for("the pool logged what it does not serve", Duration::from_secs(30), || {
        sb.log("mail").contains("this pool does not serve")
    });
    let log = sb.log("mail");
    assert!(log.contains("1 echo (queue default)"), "{log}");
    // Its start line names the queues it serves.
    assert!(log.contains("in queues [\"mail\"]"), "{log}");
    signal(&mail_only, libc::SIGTERM);
    assert_eq!(wait_exit(&mut mail_only, Duration::from_secs(30)), 0);
    assert_eq!(sb.json(&["workers"]), json!([]), "a clean stop unregisters");
    let drain = sb
        .cmd(&["work", "--drain", "--queues", "mail"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&drain.stderr);
    assert!(
        text.contains("left that this pool does not serve: 1 echo (queue default)"),
        "{text}"
    );
}
}

both! {
fn drain_says_what_waits_out_a_backoff_and_wait_waits_for_it(db) {
    let sb = Sandbox::on(&db);
    let marker = sb.path().join("failed-once");
    sb.config(&format!(
        "[workers]\npoll_interval = \"50ms\"\ndurability = \"normal\"\n\n[handlers.flaky]\ncommand = [\"sh\", \"-c\", \"[ -e {m} ] || {{ touch {m}; exit 75; }}\"]\nbackoff = [\"1s\"]\n",
        m = marker.display()
    ));
    let id = sb.ok(&["enqueue", "flaky"]);
    let drain = sb.cmd(&["work", "--drain"]).output().unwrap();
    let text = String::from_utf8_lossy(&drain.stderr);
    assert!(
        text.contains("1 job waits out a delay or a backoff, the next due at"),
        "{text}"
    );
    assert_eq!(sb.json(&["show", &id])["status"], json!("pending"));
    let wait = sb.cmd(&["work", "--drain", "--wait"]).output().unwrap();
    assert!(wait.status.success());
    assert_eq!(sb.json(&["show", &id])["status"], json!("completed"));
}
}

both! {
fn drain_wait_serves_while_it_waits(db) {
    // While `--drain --wait` waits for a job due later, it is a working
    // pool: a job enqueued meanwhile runs at once (not when the delayed
    // one is due), and the pool is listed among the workers.
    let sb = Sandbox::on(&db);
    sb.config(
        "[workers]\npoll_interval = \"50ms\"\ndurability = \"normal\"\n\n[handlers.echo]\ncommand = [\"cat\"]\n",
    );
    let later = sb.ok(&["enqueue", "echo", "--delay", "8s"]);
    let mut waiter = sb.spawn(&["work", "--drain", "--wait"], "waiter");
    wait_for("the drain waiting", Duration::from_secs(30), || {
        sb.log("waiter").contains("waiting for it")
    });
    let now = sb.ok(&["enqueue", "echo"]);
    wait_for("the job enqueued during the wait", Duration::from_secs(5), || {
        sb.json(&["show", &now])["status"] == json!("completed")
    });
    assert_eq!(sb.json(&["show", &later])["status"], json!("pending"));
    assert_eq!(sb.json(&["workers"]).as_array().map(Vec::len), Some(1));
    assert_eq!(wait_exit(&mut waiter, Duration::from_secs(60)), 0);
    assert_eq!(sb.json(&["show", &later])["status"], json!("completed"));
    let log = sb.log("waiter");
    assert_eq!(log.matches(" started: ").count(), 0, "{log}");
    // Two passes (the wait between them is not one), which ran both jobs.
    assert_eq!(log.matches("drain ended after 2 passes").count(), 1, "{log}");
    assert_eq!(log.matches("drained: ").count(), 2, "{log}");
}
}

both! {
fn a_dead_pools_jobs_come_back_at_once_keeping_their_place(db) {
    let q = db.open(|o| o);
    let early = q.enqueue(NewJob::new("job", Value::Null)).unwrap();
    let out = [("JOBQ_TEST_OUT", db.dir().display().to_string())];
    let loc = db.location();
    let mut child = crate::child::spawn_child("slow_worker", std::path::Path::new(&loc), &out);
    let marker = db.dir().join("started");
    wait_for("the child started the job", Duration::from_secs(30), || {
        marker.exists()
    });
    let worker = q
        .workers()
        .unwrap()
        .pop()
        .expect("the child's pool is registered");
    assert!(worker.alive && worker.running == 1, "{worker:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let refused = q.recover_worker(&worker.id, false).unwrap_err();
    assert!(
        matches!(refused, jobq::Error::WorkerAlive { .. }),
        "{refused}"
    );
    // Later (by a clock 20 s ahead) its heartbeat is stale: --now takes it.
    let later = ManualClock::new(SystemClock.now().plus(Duration::from_secs(20)));
    let q2 = db.open(|o| o.clock(Arc::new(later)));
    assert!(!q2.workers().unwrap()[0].alive);
    assert_eq!(q2.recover_dead_workers().unwrap(), 1);
    let back = q2.get(early.id).unwrap();
    assert_eq!(back.status, JobStatus::Pending);
    assert_eq!(
        back.next_retry, early.next_retry,
        "it keeps its place in the run order"
    );
    let msg = back.error_message.unwrap();
    assert!(msg.contains("stopped (recovered by hand)"), "{msg}");
    // The dead pool it recovered is off the list.
    assert!(q2.workers().unwrap().is_empty(), "{:?}", q2.workers());
}
}

both! {
fn a_dead_pool_holding_nothing_is_forgotten_an_hour_after_its_last_heartbeat(db) {
    let q = db.open(|o| o);
    let out = [("JOBQ_TEST_OUT", db.dir().display().to_string())];
    let loc = db.location();
    let mut child = crate::child::spawn_child("slow_worker", std::path::Path::new(&loc), &out);
    wait_for("the child's pool is registered", Duration::from_secs(30), || {
        !q.workers().unwrap().is_empty()
    });
    let dead = q.workers().unwrap().pop().unwrap().id;
    child.kill().unwrap();
    child.wait().unwrap();
    let listed = |q: &jobq::Queue, id: &str| q.workers().unwrap().iter().any(|w| w.id == id);
    let live_pool = |q: &jobq::Queue| {
        let mut reg = jobq::Registry::new();
        reg.register("t", |_: &jobq::JobContext, v: Value| Ok(v));
        let cfg = jobq::WorkerConfig {
            worker_id: "live".into(),
            ..jobq::WorkerConfig::default()
        };
        jobq::WorkerPool::start(q.clone(), reg, cfg).unwrap()
    };
    // 59 minutes on, a live pool's heartbeats leave it listed (not alive).
    let soon = ManualClock::new(SystemClock.now().plus(Duration::from_secs(59 * 60)));
    let q1 = db.open(|o| o.clock(Arc::new(soon.clone())));
    let pool = live_pool(&q1);
    soon.advance(Duration::from_secs(1));
    wait_for("the live pool has beaten once", Duration::from_secs(30), || {
        q1.workers()
            .unwrap()
            .iter()
            .any(|w| w.id == "live" && w.heartbeat_at > w.started_at)
    });
    assert!(listed(&q1, &dead) && listed(&q1, "live"));
    pool.shutdown(Duration::from_secs(5));
    // An hour and a minute on, the next heartbeat forgets it.
    let later = ManualClock::new(SystemClock.now().plus(Duration::from_secs(61 * 60)));
    let q2 = db.open(|o| o.clock(Arc::new(later)));
    let pool = live_pool(&q2);
    wait_for("the dead pool is forgotten", Duration::from_secs(30), || !listed(&q2, &dead));
    assert!(listed(&q2, "live"));
    pool.shutdown(Duration::from_secs(5));
}
}

both! {
fn error_history_tells_runs_apart_across_manual_retries(db) {
    let q = db.open(|o| o);
    let job = q
        .enqueue(NewJob::new("t", Value::Null).max_attempts(1))
        .unwrap();
    let lease = Duration::from_secs(60);
    for _ in 0..2 {
        let c = q.claim("w", None, 1, lease).unwrap().pop().unwrap();
        let f = jobq::Failure::new("boom", jobq::ErrorClass::Retryable);
        q.fail(c.id, c.lease_token, &f).unwrap();
        if q.get(job.id).unwrap().status == JobStatus::Failed {
            q.retry(job.id).unwrap();
        }
    }
    let ctx = q.get(job.id).unwrap().error_context.unwrap();
    let errors = ctx["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (errors[0]["attempt"].clone(), errors[1]["attempt"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        (errors[0]["run"].clone(), errors[1]["run"].clone()),
        (json!(1), json!(2))
    );
}
}

both! {
fn an_exec_program_reports_progress_on_stderr(db) {
    let sb = Sandbox::on(&db);
    let gate = sb.path().join("gate");
    sb.config(&format!(
        "[workers]\npoll_interval = \"50ms\"\ndurability = \"normal\"\n\n[handlers.long]\ncommand = [\"sh\", \"-c\", \"echo 'JOBQ_PROGRESS 0.25 reading' >&2; echo 'JOBQ_PROGRESS NaN' >&2; echo 'JOBQ_PROGRESS 1.5 over' >&2; while [ ! -e {g} ]; do sleep 0.05; done; echo done >&2; exit 3\"]\nmax_attempts = 1\n",
        g = gate.display()
    ));
    let id = sb.ok(&["enqueue", "long"]);
    let mut work = sb.spawn(&["work"], "work");
    wait_for("the progress report", Duration::from_secs(30), || {
        sb.json(&["show", &id])["progress"]["fraction"] == json!(0.25)
    });
    assert_eq!(
        sb.json(&["show", &id])["progress"]["message"],
        json!("reading")
    );
    std::fs::write(&gate, "").unwrap();
    wait_for("the job to end", Duration::from_secs(30), || {
        sb.json(&["show", &id])["status"] == "failed"
    });
    let msg = sb.json(&["show", &id])["error_message"]
        .as_str()
        .unwrap()
        .to_string();
    // The valid report is kept out of the error text; lines whose fraction is
    // outside 0-1 are not reports: they stay in it and change no progress.
    assert!(
        msg.contains("done") && !msg.contains("JOBQ_PROGRESS 0.25"),
        "{msg}"
    );
    assert!(
        msg.contains("JOBQ_PROGRESS NaN") && msg.contains("JOBQ_PROGRESS 1.5 over"),
        "{msg}"
    );
    let progress = &sb.json(&["show", &id])["progress"];
    assert_eq!(
        (&progress["fraction"], &progress["message"]),
        (&json!(0.25), &json!("reading"))
    );
    signal(&work, libc::SIGTERM);
    assert_eq!(wait_exit(&mut work, Duration::from_secs(30)), 0);
}
}

both! {
fn an_exec_programs_last_progress_report_is_stored_however_fast_it_writes_them(db) {
    // Reports are stored at most every 100 ms (the latest each time), so a
    // program that writes thousands does not wait on the database; the last
    // one is always stored before the attempt ends.
    let sb = Sandbox::on(&db);
    sb.config(
        "[workers]\npoll_interval = \"50ms\"\ndurability = \"normal\"\n\n[handlers.busy]\ncommand = [\"sh\", \"-c\", \"i=0; while [ $i -lt 3000 ]; do echo \\\"JOBQ_PROGRESS 0.5 step $i\\\" >&2; i=$((i+1)); done; echo 'JOBQ_PROGRESS 1 finished' >&2; echo '{}'\"]\nmax_attempts = 1\n",
    );
    let id = sb.ok(&["enqueue", "busy"]);
    sb.ok(&["work", "--drain"]);
    let job = sb.json(&["show", &id]);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (&job["progress"]["fraction"], &job["progress"]["message"]),
        (&json!(1.0), &json!("finished")),
        "{job}"
    );
}
}

both! {
fn a_users_own_jobs_over_http_list_cancel_and_report_progress(db) {
    let api = crate::http_util::start_on(&db);
    let post = |token: &str, body: Value| {
        api.call(
            "POST",
            "/api/v1/jobs",
            Some(token),
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    let mine = post(&api.alice, json!({"job_type": "email.send", "payload": 1}));
    post(&api.alice, json!({"job_type": "email.send", "payload": 2}));
    let theirs = post(&api.bob, json!({"job_type": "email.send"}));
    let list = api.get("/api/v1/jobs?limit=10", Some(&api.alice));
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["total"], json!(2));
    assert!(list.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["owner"] == "alice"));
    let snoop = api.get("/api/v1/jobs?owner=bob", Some(&api.alice));
    assert_eq!(snoop.status, 400);
    let mine_id = mine.body["id"].as_str().unwrap();
    let theirs_id = theirs.body["id"].as_str().unwrap();
    let cancel = api.call(
        "DELETE",
        &format!("/api/v1/jobs/{mine_id}"),
        Some(&api.alice),
        None,
    );
    assert_eq!(
        (cancel.status, &cancel.body["status"]),
        (200, &json!("cancelled"))
    );
    let other = api.call(
        "DELETE",
        &format!("/api/v1/jobs/{theirs_id}"),
        Some(&api.alice),
        None,
    );
    assert_eq!(
        other.status, 404,
        "someone else's job answers like a missing one"
    );
    // Progress for a running attempt, fenced by its lease token.
    let claimed = api
        .queue
        .claim("w", None, 1, Duration::from_secs(60))
        .unwrap()
        .pop()
        .unwrap();
    let owner_token = if claimed.owner.as_deref() == Some("bob") {
        &api.bob
    } else {
        &api.alice
    };
    let report = |token: i64| {
        let body = json!({"lease_token": token, "fraction": 0.5, "message": "half"});
        api.call(
            "POST",
            &format!("/api/v1/jobs/{}/progress", claimed.id),
            Some(owner_token),
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    let ok = report(claimed.lease_token);
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["progress"]["message"], json!("half"));
    assert_eq!(
        report(claimed.lease_token + 7).status,
        409,
        "a stale attempt is refused"
    );
    // Without the token, the error says which field is missing and where a
    // webhook finds it; with a token that is not an integer, that it is invalid.
    for (body, says) in [
        (json!({"fraction": 0.5}), "missing lease_token"),
        (json!({"lease_token": "x", "fraction": 0.5}), "invalid lease_token"),
    ] {
        let r = api.call(
            "POST",
            &format!("/api/v1/jobs/{}/progress", claimed.id),
            Some(owner_token),
            Some(("application/json", body.to_string().as_bytes())),
        );
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.text.contains(says), "{}", r.text);
    }
}
}

both! {
fn a_live_pool_recovered_as_dead_registers_again_and_keeps_its_jobs(db) {
    // Pool "p" lives, but its heartbeat looked stale (here: seen from a clock
    // 20 s ahead) when it was recovered by hand, which removes its row. Its
    // next heartbeat registers it again, so it is alive on the list and
    // `recover --now` leaves the job it then runs alone.
    let q = db.open(|o| o);
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, r) = (open.clone(), running.clone());
    let mut reg = jobq::Registry::new();
    reg.register("slow", move |_: &jobq::JobContext, _: Value| {
        r.store(true, std::sync::atomic::Ordering::SeqCst);
        let start = std::time::Instant::now();
        while !g.load(std::sync::atomic::Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(json!("ok"))
    });
    let cfg = jobq::WorkerConfig {
        worker_id: "p".into(),
        workers: 1,
        ..jobq::WorkerConfig::default()
    };
    let pool = jobq::WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let ahead = ManualClock::new(SystemClock.now().plus(Duration::from_secs(20)));
    let q_ahead = db.open(|o| o.clock(Arc::new(ahead)));
    assert_eq!(q_ahead.recover_worker("p", false).unwrap(), 0);
    assert!(q.workers().unwrap().iter().all(|w| w.id != "p"), "removed");
    wait_for("p registers again", Duration::from_secs(30), || {
        q.workers().unwrap().iter().any(|w| w.id == "p" && w.alive)
    });
    let id = q.enqueue(NewJob::new("slow", Value::Null)).unwrap().id;
    wait_for("p runs the job", Duration::from_secs(30), || {
        running.load(std::sync::atomic::Ordering::SeqCst)
    });
    let stolen = q.recover_dead_workers().unwrap();
    let again = q.claim("other", None, 1, Duration::from_secs(60)).unwrap();
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    pool.shutdown(Duration::from_secs(5));
    assert_eq!(stolen, 0, "a live pool's running job was recovered");
    assert!(again.is_empty(), "job {id} claimed twice");
    assert_eq!(q.get(id).unwrap().status, JobStatus::Completed);
}
}

#[test]
fn recovering_a_dead_pool_that_holds_nothing_by_name_is_not_unknown() {
    // A registered pool whose heartbeat is stale (written by a clock 60 s
    // behind): `recover --worker` removes it, and that is not exit 3.
    let s = Sandbox::new();
    let behind = ManualClock::new(SystemClock.now().minus(Duration::from_secs(60)));
    let q = jobq::Queue::open_with(jobq::QueueOptions::new(s.location()).clock(Arc::new(behind)))
        .unwrap();
    let mut reg = jobq::Registry::new();
    reg.register("t", |_: &jobq::JobContext, v: Value| Ok(v));
    let cfg = jobq::WorkerConfig {
        worker_id: "idle".into(),
        workers: 1,
        ..jobq::WorkerConfig::default()
    };
    let pool = jobq::WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let listed = s.json(&["workers"]);
    assert_eq!(listed[0]["id"], json!("idle"), "{listed}");
    assert_eq!(listed[0]["alive"], json!(false), "{listed}");
    let run = s.run(&["recover", "--worker", "idle"]);
    pool.shutdown(Duration::from_secs(5));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("recovered 0 jobs"), "{run:?}");
}
