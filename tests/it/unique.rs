//! Unique jobs: one row however many processes enqueue the same job at once,
//! duplicates returned (not errors) by the library, `--jsonl`, the CLI and
//! HTTP, period buckets, and a manual retry that would make two live holders.

use std::time::Duration;

use jobq::{JobStatus, ManualClock, NewJob, Queue, Timestamp, Unique};
use serde_json::{json, Value};

use crate::backends::{both, Db};
use crate::util::{wait_exit, Sandbox, TEST_CONFIG};

/// Child: enqueues the same unique job `JOBQ_UNIQ_N` times and writes each id
/// it got back, one a line, to `JOBQ_UNIQ_OUT`.
pub fn child_uniq_enqueuer(db: &std::path::Path) {
    let n: usize = std::env::var("JOBQ_UNIQ_N").unwrap().parse().unwrap();
    let out = std::env::var("JOBQ_UNIQ_OUT").unwrap();
    let q = Queue::open(db).unwrap();
    let mut ids = String::new();
    for _ in 0..n {
        let job =
            NewJob::new("sync", json!({"entity": 42, "kind": "full"})).unique(Unique::by_payload());
        ids.push_str(&format!("{}\n", q.enqueue(job).unwrap().id));
    }
    std::fs::write(out, ids).unwrap();
}

both! {
fn eight_processes_enqueueing_one_unique_job_make_one_row_and_all_get_its_id(db) {
    let dir = db.dir();
    drop(db.open(|o| o));
    let loc = db.location();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let out = dir.join(format!("ids{i}"));
            let extra = [
                ("JOBQ_UNIQ_N", "125".to_string()),
                ("JOBQ_UNIQ_OUT", out.display().to_string()),
            ];
            crate::child::spawn_child("uniq_enqueuer", std::path::Path::new(&loc), &extra)
        })
        .collect();
    for mut c in children {
        assert_eq!(wait_exit(&mut c, Duration::from_secs(120)), 0);
    }
    let q = db.open(|o| o);
    assert_eq!(q.stats().unwrap().total, 1, "exactly one row");
    let mut ids = std::collections::BTreeSet::new();
    let mut answers = 0;
    for i in 0..8 {
        let text = std::fs::read_to_string(dir.join(format!("ids{i}"))).unwrap();
        for line in text.lines() {
            ids.insert(line.to_string());
            answers += 1;
        }
    }
    assert_eq!(answers, 1000, "every caller got an answer");
    assert_eq!(ids.len(), 1, "every caller got the one job's id: {ids:?}");
}
}

fn clock_queue(db: &Db, start: i64) -> (Queue, ManualClock) {
    let clock = ManualClock::new(Timestamp(start));
    let q = db.open(|o| o.clock(std::sync::Arc::new(clock.clone())));
    (q, clock)
}

both! {
fn a_period_bucket_holds_the_key_only_within_it(db) {
    let (q, clock) = clock_queue(&db, 3_600_000 * 100 + 3_598_000); // 1.998 s before an hour
    let hourly = || {
        NewJob::new("t", json!(1)).unique(Unique::by_payload().period(Duration::from_secs(3600)))
    };
    let a = q.enqueue(hourly()).unwrap();
    clock.advance(Duration::from_millis(1000));
    let same = q.enqueue(hourly()).unwrap();
    assert!(
        same.duplicate && same.id == a.id,
        "inside one bucket: one job"
    );
    clock.advance(Duration::from_millis(1000)); // across the boundary
    let b = q.enqueue(hourly()).unwrap();
    assert!(!b.duplicate && b.id != a.id, "the next bucket is a new job");
    assert_eq!(q.stats().unwrap().total, 2);
}
}

both! {
fn duplicates_in_one_batch_and_the_states_that_hold_a_key(db) {
    let (q, _clock) = clock_queue(&db, 1_000_000);
    let rule = Unique::by_key("report:7").also_in(&[JobStatus::Completed]);
    let batch: Vec<NewJob> = (0..3)
        .map(|i| NewJob::new("r", json!({"i": i})).unique(rule.clone()))
        .collect();
    let out = q.enqueue_batch(batch).unwrap();
    assert_eq!(
        out.iter().map(|e| e.duplicate).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert!(out.iter().all(|e| e.id == out[0].id));
    // Completed holds the key too (it is in the rule's states).
    let c = q
        .claim("w", None, 1, Duration::from_secs(60))
        .unwrap()
        .pop()
        .unwrap();
    q.complete(c.id, c.lease_token, &Value::Null).unwrap();
    let again = q
        .enqueue(NewJob::new("r", json!({})).unique(rule.clone()))
        .unwrap();
    assert!(
        again.duplicate,
        "a completed job holds a key whose rule lists completed"
    );
    // A rule without completed: the completed job no longer holds it.
    let live = Unique::by_key("report:8");
    let first = q
        .enqueue(NewJob::new("r", json!(1)).unique(live.clone()))
        .unwrap();
    let c = q
        .claim("w", None, 1, Duration::from_secs(60))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(c.id, first.id);
    assert!(
        q.enqueue(NewJob::new("r", json!(2)).unique(live.clone()))
            .unwrap()
            .duplicate,
        "while it runs"
    );
    q.complete(c.id, c.lease_token, &Value::Null).unwrap();
    assert!(
        !q.enqueue(NewJob::new("r", json!(3)).unique(live))
            .unwrap()
            .duplicate
    );
}
}

both! {
fn a_retry_that_would_make_two_live_holders_is_a_conflict_naming_the_other(db) {
    let sb = Sandbox::on(&db);
    sb.config(&format!(
        "{TEST_CONFIG}\n[handlers.once]\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nmax_attempts = 1\n"
    ));
    let failed = sb.ok(&["enqueue", "once", "--unique-key", "k1"]);
    sb.ok(&["work", "--drain"]);
    assert_eq!(sb.json(&["show", &failed])["status"], json!("failed"));
    let holder = sb.ok(&["enqueue", "once", "--unique-key", "k1"]);
    assert_ne!(holder, failed, "a failed job does not hold a live-only key");
    let again = sb.run(&["enqueue", "once", "--unique-key", "k1"]);
    assert_eq!(again.code, 0);
    assert_eq!(
        again.stdout.trim(),
        holder,
        "a duplicate prints the holder's id"
    );
    assert!(again.stderr.contains("duplicate"), "{}", again.stderr);
    let retry = sb.run(&["retry", &failed]);
    assert_eq!(retry.code, 4, "{}", retry.stderr);
    assert!(
        retry.stderr.contains(&holder),
        "names the other job: {}",
        retry.stderr
    );
    assert_eq!(
        sb.json(&["show", &failed])["status"],
        json!("failed"),
        "nothing changed"
    );
}
}

both! {
fn duplicates_over_http_are_200_with_the_holder(db) {
    let api = crate::http_util::start_on(&db);
    let body = json!({"job_type": "email.send", "payload": {"to": "a@b.c"}, "unique": true});
    let post = |token: &str| {
        api.call(
            "POST",
            "/api/v1/jobs",
            Some(token),
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    let first = post(&api.alice);
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.body.get("duplicate").is_none());
    assert!(first.body["unique"]["key"].as_str().unwrap().len() == 64);
    let second = post(&api.alice);
    assert_eq!(
        (second.status, &second.body["duplicate"]),
        (200, &json!(true))
    );
    assert_eq!(second.body["id"], first.body["id"]);
    let bob = post(&api.bob);
    assert_eq!(
        bob.status, 409,
        "another user's job is not shown: {}",
        bob.text
    );
    for (bad, field) in [
        (
            json!({"job_type": "email.send", "unique": {"states": ["done"]}}),
            "unique.states",
        ),
        (
            json!({"job_type": "email.send", "unique": {"period_s": 0}}),
            "unique.period_s",
        ),
        (
            json!({"job_type": "email.send", "unique": {"colour": 1}}),
            "unique",
        ),
        (json!({"job_type": "email.send", "unique": 5}), "unique"),
    ] {
        let a = api.call(
            "POST",
            "/api/v1/jobs",
            Some(&api.alice),
            Some(("application/json", bad.to_string().as_bytes())),
        );
        assert_eq!(a.status, 422, "{bad}: {}", a.text);
        let msg = a.body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("invalid {field}:")), "{msg}");
    }
}
}

#[test]
fn bad_unique_config_is_refused_naming_the_line_and_key() {
    for (rule, words) in [
        ("{ states = [\"done\"] }", "unknown status"),
        ("{ period = \"0s\" }", "unique.period: must be more than 0"),
        ("{ colour = 1 }", "unknown key"),
    ] {
        let sb = Sandbox::new();
        sb.config(&format!(
            "[handlers.t]\ncommand = [\"true\"]\nunique = {rule}\n"
        ));
        let run = sb.run(&["enqueue", "t"]);
        assert_eq!(run.code, 2, "{rule}: {}", run.stderr);
        assert!(run.stderr.contains("jobq.toml:3"), "{}", run.stderr);
        assert!(run.stderr.contains("handlers.t.unique"), "{}", run.stderr);
        assert!(run.stderr.contains(words), "{}", run.stderr);
        assert!(!run.stderr.contains("period_s"), "the file's key is period");
    }
    let sb = Sandbox::new();
    sb.config("[handlers.t]\ncommand = [\"true\"]\nunique = { key = \"one\" }\n");
    let a = sb.ok(&["enqueue", "t"]);
    assert_eq!(
        sb.ok(&["enqueue", "t", "--payload", "{\"other\": 1}"]),
        a,
        "the type's rule applies"
    );
}

both! {
/// `"unique": false` (HTTP, JSONL), `--no-unique` and `NewJob::not_unique`
/// enqueue one job with no rule although its type declares one; a job that
/// says nothing gets the type's rule.
fn a_job_can_opt_out_of_its_types_rule(db) {
    let opts = |o: jobq::QueueOptions| {
        let mut c = crate::http_util::catalog();
        c.declare(jobq::JobType::new("email.send").unique(Unique::by_key("one")))
            .unwrap();
        o.catalog(c)
    };
    let api = crate::http_util::start_on_opts(&db, opts, |_| {});
    let post = |body: Value| {
        api.call(
            "POST",
            "/api/v1/jobs",
            Some(&api.alice),
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    let first = post(json!({"job_type": "email.send", "payload": 1}));
    assert_eq!(first.status, 201, "{}", first.text);
    let by_type = post(json!({"job_type": "email.send", "payload": 2}));
    assert_eq!((by_type.status, &by_type.body["id"]), (200, &first.body["id"]));
    let mut ids = vec![first.body["id"].clone()];
    for _ in 0..2 {
        let free = post(json!({"job_type": "email.send", "payload": 1, "unique": false}));
        assert_eq!(free.status, 201, "{}", free.text);
        assert!(free.body["unique"].is_null(), "{}", free.text);
        assert!(!ids.contains(&free.body["id"]));
        ids.push(free.body["id"].clone());
    }
    let lib = api.queue.enqueue(NewJob::new("email.send", json!(1)).not_unique()).unwrap();
    assert!(!lib.duplicate && lib.unique.is_none());
    // `unique` after `not_unique` sets a rule again.
    let again = NewJob::new("email.send", json!(1)).not_unique().unique(Unique::by_key("one"));
    let again = api.queue.enqueue(again).unwrap();
    assert!(again.duplicate);
    assert_eq!(json!(again.id.to_string()), first.body["id"]);
    assert_eq!(api.queue.list(&Default::default(), 10, None).unwrap().total, 4);

    let sb = Sandbox::on(&db);
    sb.config("[handlers.t]\ncommand = [\"true\"]\nunique = { key = \"one\" }\n");
    let a = sb.ok(&["enqueue", "t"]);
    assert_eq!(sb.ok(&["enqueue", "t", "--payload", "2"]), a, "the type's rule");
    let b = sb.ok(&["enqueue", "t", "--no-unique"]);
    assert_ne!(b, a);
    assert!(sb.json(&["show", &b])["unique"].is_null());
    let both = sb.run(&["enqueue", "t", "--no-unique", "--unique-key", "k"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
    let lines = sb.path().join("free.jsonl");
    std::fs::write(
        &lines,
        "{\"job_type\": \"t\", \"unique\": false}\n{\"job_type\": \"t\"}\n",
    )
    .unwrap();
    let out = sb.run(&["enqueue", "--jsonl", lines.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("1 line was a duplicate"), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "1", "one enqueued");
}
}
