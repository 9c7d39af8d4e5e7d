//! The state machine through the store: every edge, the backoff schedule on a
//! test clock, fencing after recovery, and no double claim across processes.

use crate::backends::{both, Db};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jobq::{
    Clock, Durability, Error, ErrorClass, Failure, Job, JobStatus, ManualClock, NewJob, Queue,
    QueueOptions, Timestamp,
};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(300);
const T0: i64 = 1_764_504_000_000;

fn queue_at(db: &Db) -> (Queue, ManualClock) {
    let clock = ManualClock::new(Timestamp(T0));
    let q = db.open(|o| {
        o.durability(Durability::Normal)
            .clock(Arc::new(clock.clone()))
            .catalog(crate::util::retry_at_once("t"))
    });
    (q, clock)
}

fn claim_one(q: &Queue) -> Job {
    let mut jobs = q.claim("w1", None, 1, LEASE).unwrap();
    assert_eq!(jobs.len(), 1, "expected one due job");
    jobs.pop().unwrap()
}

/// A new job brought to `status` (each of its own type, so claims pick it).
fn in_status(q: &Queue, status: JobStatus) -> Job {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let t = format!("t{}", N.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let job = q
        .enqueue(NewJob::new(&t, json!(null)).max_attempts(1))
        .unwrap();
    if status == JobStatus::Pending {
        return job.job;
    }
    let c = q
        .claim("w1", Some(&[t]), 1, LEASE)
        .unwrap()
        .pop()
        .expect("claimed");
    match status {
        JobStatus::InProgress => {}
        JobStatus::Completed => {
            q.complete(c.id, c.lease_token, &json!(1)).unwrap();
        }
        JobStatus::Failed => {
            q.fail(
                c.id,
                c.lease_token,
                &Failure::new("boom", ErrorClass::Permanent),
            )
            .unwrap();
        }
        JobStatus::Cancelled => {
            q.cancel(c.id).unwrap();
            q.complete(c.id, c.lease_token, &json!(1)).unwrap();
        }
        JobStatus::Pending => unreachable!(),
    }
    let j = q.get(job.id).unwrap();
    assert_eq!(j.status, status);
    j
}

both! {
fn cancel_and_retry_follow_the_transition_table(db) {
    let (q, _clock) = queue_at(&db);
    use JobStatus::*;
    // cancel
    assert_eq!(
        q.cancel(in_status(&q, Pending).id).unwrap().status,
        Cancelled
    );
    let running = q.cancel(in_status(&q, InProgress).id).unwrap();
    assert_eq!(
        (running.status, running.cancel_requested),
        (InProgress, true)
    );
    assert_eq!(
        q.cancel(in_status(&q, Cancelled).id).unwrap().status,
        Cancelled
    );
    for st in [Completed, Failed] {
        let j = in_status(&q, st);
        match q.cancel(j.id) {
            Err(Error::Conflict {
                status,
                operation: "cancel",
                ..
            }) => assert_eq!(status, st),
            other => panic!("cancel of {st}: {other:?}"),
        }
    }
    // retry
    for st in [Failed, Cancelled] {
        let j = q.retry(in_status(&q, st).id).unwrap();
        assert_eq!((j.status, j.attempts), (Pending, 0));
        assert!(j.completed_at.is_none());
    }
    for st in [Pending, InProgress, Completed] {
        let j = in_status(&q, st);
        assert!(matches!(q.retry(j.id), Err(Error::Conflict { status, .. }) if status == st));
    }
    assert!(matches!(
        q.cancel(jobq::JobId::new()),
        Err(Error::NotFound { .. })
    ));
}
}

both! {
fn transitions_out_of_in_progress_need_the_lease_token(db) {
    let (q, _clock) = queue_at(&db);
    for st in [
        JobStatus::Pending,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ] {
        let j = in_status(&q, st);
        let token = j.lease_token;
        assert!(
            matches!(
                q.complete(j.id, token, &json!(1)),
                Err(Error::LeaseLost { .. })
            ),
            "{st}"
        );
        let f = Failure::classified("x");
        assert!(
            matches!(q.fail(j.id, token, &f), Err(Error::LeaseLost { .. })),
            "{st}"
        );
        assert!(
            matches!(
                q.heartbeat(j.id, token, LEASE),
                Err(Error::LeaseLost { .. })
            ),
            "{st}"
        );
        assert!(
            matches!(q.release(j.id, token), Err(Error::LeaseLost { .. })),
            "{st}"
        );
        assert_eq!(q.get(j.id).unwrap().status, st, "refusal changed nothing");
    }
    let j = in_status(&q, JobStatus::InProgress);
    assert!(matches!(
        q.complete(j.id, j.lease_token + 1, &json!(1)),
        Err(Error::LeaseLost { .. })
    ));
    assert_eq!(
        q.complete(j.id, j.lease_token, &json!({"ok": 1})).unwrap(),
        JobStatus::Completed
    );
    let done = q.get(j.id).unwrap();
    assert_eq!(done.result, Some(json!({"ok": 1})));
    assert!(done.locked_by.is_none() && done.lease_expires_at.is_none());
}
}

both! {
fn a_cancel_request_ends_a_running_job_cancelled_whatever_its_handler_returns(db) {
    let (q, _clock) = queue_at(&db);
    for outcome in ["complete", "fail", "release"] {
        q.enqueue(NewJob::new("t", json!(null))).unwrap();
        let c = claim_one(&q);
        q.cancel(c.id).unwrap();
        assert!(
            q.heartbeat(c.id, c.lease_token, LEASE).unwrap(),
            "heartbeat reports the cancel"
        );
        let st = match outcome {
            "complete" => q.complete(c.id, c.lease_token, &json!(1)).unwrap(),
            "fail" => q
                .fail(c.id, c.lease_token, &Failure::classified("timeout"))
                .unwrap(),
            _ => q.release(c.id, c.lease_token).unwrap(),
        };
        assert_eq!(st, JobStatus::Cancelled, "{outcome}");
        assert!(
            q.claim("w", None, 10, LEASE).unwrap().is_empty(),
            "never retried"
        );
    }
}
}

both! {
fn the_default_backoff_runs_five_times_at_the_documented_offsets(db) {
    let (q, clock) = queue_at(&db);
    let job = q.enqueue(NewJob::new("flaky", json!(null))).unwrap();
    let mut runs = vec![];
    loop {
        let mut due = q.claim("w", None, 1, LEASE).unwrap();
        if let Some(c) = due.pop() {
            runs.push((clock.now().0 - T0) / 60_000);
            let st = q
                .fail(
                    c.id,
                    c.lease_token,
                    &Failure::classified("connection reset"),
                )
                .unwrap();
            if st == JobStatus::Failed {
                break;
            }
            assert_eq!(st, JobStatus::Pending);
            // One second early, the job is not due yet.
            let next = q.get(job.id).unwrap().next_retry;
            clock.set(Timestamp(next.0 - 1000));
            assert!(
                q.claim("w", None, 1, LEASE).unwrap().is_empty(),
                "not run early"
            );
            clock.set(next);
        } else {
            panic!("job not due at {}", clock.now());
        }
    }
    assert_eq!(runs, [0, 1, 6, 21, 81]);
    let failed = q.get(job.id).unwrap();
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 5));
    let ctx = failed.error_context.unwrap();
    assert_eq!(ctx["attempt"], 5);
    assert_eq!(ctx["class"], "retryable");
    assert_eq!(ctx["errors"].as_array().unwrap().len(), 5);
    assert_eq!(ctx["errors"][0]["message"], "connection reset");
    assert_eq!(failed.error_message.as_deref(), Some("connection reset"));
}
}

both! {
fn a_permanent_error_fails_at_once_and_a_manual_retry_keeps_the_history(db) {
    let (q, _clock) = queue_at(&db);
    let job = q.enqueue(NewJob::new("t", json!(null))).unwrap();
    let c = claim_one(&q);
    let st = q
        .fail(
            c.id,
            c.lease_token,
            &Failure::classified("HTTP 404 Not Found"),
        )
        .unwrap();
    assert_eq!(st, JobStatus::Failed);
    let again = q.retry(job.id).unwrap();
    assert_eq!(
        again.error_context.unwrap()["errors"][0]["class"],
        "permanent"
    );
    let c2 = claim_one(&q);
    assert_eq!(c2.attempts, 1);
    assert!(
        c2.lease_token > c.lease_token,
        "fencing tokens never repeat"
    );
}
}

both! {
fn after_recovery_the_old_lease_is_refused_and_the_new_attempt_untouched(db) {
    let (q, clock) = queue_at(&db);
    let job = q.enqueue(NewJob::new("t", json!(null))).unwrap();
    let old = claim_one(&q);
    clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(q.recover_expired().unwrap(), 1);
    let recovered = q.get(job.id).unwrap();
    assert_eq!(recovered.status, JobStatus::Pending);
    assert_eq!(recovered.error_message.as_deref(), Some("lease expired"));
    let new = claim_one(&q);
    assert_eq!(new.attempts, 2);
    assert!(matches!(
        q.complete(old.id, old.lease_token, &json!("stale")),
        Err(Error::LeaseLost { .. })
    ));
    assert!(matches!(
        q.heartbeat(old.id, old.lease_token, LEASE),
        Err(Error::LeaseLost { .. })
    ));
    let current = q.get(job.id).unwrap();
    assert_eq!(
        (current.status, current.lease_token),
        (JobStatus::InProgress, new.lease_token)
    );
    q.complete(new.id, new.lease_token, &json!("fresh"))
        .unwrap();
    assert_eq!(q.get(job.id).unwrap().result, Some(json!("fresh")));
}
}

both! {
fn a_live_lease_is_never_recovered_and_a_heartbeat_extends_it(db) {
    let (q, clock) = queue_at(&db);
    q.enqueue(NewJob::new("t", json!(null))).unwrap();
    let c = claim_one(&q);
    for _ in 0..5 {
        clock.advance(LEASE / 2);
        q.heartbeat(c.id, c.lease_token, LEASE).unwrap();
        assert_eq!(q.recover_expired().unwrap(), 0);
    }
    clock.advance(LEASE + Duration::from_millis(1));
    assert_eq!(q.recover_expired().unwrap(), 1);
}
}

both! {
fn claim_takes_priority_then_due_time_then_enqueue_order_and_only_given_types(db) {
    let (q, clock) = queue_at(&db);
    let low = q
        .enqueue(NewJob::new("a", json!("low")).priority(-5))
        .unwrap();
    let first = q.enqueue(NewJob::new("a", json!("first"))).unwrap();
    let second = q.enqueue(NewJob::new("a", json!("second"))).unwrap();
    let high = q
        .enqueue(NewJob::new("a", json!("high")).priority(10))
        .unwrap();
    let other = q.enqueue(NewJob::new("b", json!("b"))).unwrap();
    let later = q
        .enqueue(
            NewJob::new("a", json!("later"))
                .priority(99)
                .delay(Duration::from_secs(60)),
        )
        .unwrap();
    let types = vec!["a".to_string()];
    let got: Vec<_> = q
        .claim("w", Some(&types), 10, LEASE)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [high.id, first.id, second.id, low.id]);
    clock.advance(Duration::from_secs(60));
    let got: Vec<_> = q
        .claim("w", None, 10, LEASE)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [later.id, other.id]);
}
}

/// Child process: 8 threads claim and complete until nothing is left, writing
/// each completed id to `done.<pid>` in `$JOBQ_TEST_OUT`.
pub fn child_claimer(db: &Path) {
    let q = Queue::open_with(QueueOptions::new(db).durability(Durability::Normal)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut done = vec![];
                let worker = format!("{}-{t}", std::process::id());
                loop {
                    let jobs = q.claim(&worker, None, 5, LEASE).unwrap();
                    if jobs.is_empty() {
                        return done;
                    }
                    let batch: Vec<_> = jobs
                        .iter()
                        .map(|j| (j.id, j.lease_token, json!(worker)))
                        .collect();
                    for (r, j) in q.complete_many(&batch).unwrap().into_iter().zip(&jobs) {
                        assert_eq!(r.unwrap(), JobStatus::Completed);
                        done.push(j.id.to_string());
                    }
                }
            })
        })
        .collect();
    let ids: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let dir = std::env::var("JOBQ_TEST_OUT").expect("JOBQ_TEST_OUT");
    let out = Path::new(&dir).join(format!("done.{}", std::process::id()));
    std::fs::write(out, ids.join("\n")).unwrap();
}

both! {
fn claim_never_returns_a_job_twice_across_threads_and_processes(db) {
    let q = db.open(|o| o.durability(Durability::Normal));
    let out = [("JOBQ_TEST_OUT", db.dir().display().to_string())];
    let jobs: Vec<_> = (0..10_000).map(|i| NewJob::new("n", json!(i))).collect();
    let ids: HashSet<String> = q
        .enqueue_many(jobs)
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    let children: Vec<_> = (0..2)
        .map(|_| crate::child::spawn_child("claimer", Path::new(&db.location()), &out))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "claimer child failed");
    }
    let mut seen = HashSet::new();
    let mut per_process = vec![];
    for entry in std::fs::read_dir(db.dir()).unwrap() {
        let name = entry.unwrap().path();
        if name.file_name().is_some_and(|f| f.to_string_lossy().starts_with("done.")) {
            let text = std::fs::read_to_string(&name).unwrap();
            let list: Vec<&str> = text.lines().collect();
            per_process.push(list.len());
            for id in list {
                assert!(seen.insert(id.to_string()), "job {id} completed twice");
            }
        }
    }
    assert_eq!(per_process.len(), 2);
    assert_eq!(seen, ids, "every job completed exactly once");
    let stats = q.stats().unwrap();
    assert_eq!(stats.by_status.completed, 10_000);
    let page = q.list(&jobq::JobFilter::default(), 500, None).unwrap();
    assert!(page.jobs.iter().all(|j| j.attempts == 1));
}
}

both! {
fn a_snooze_gives_the_attempt_back_and_is_due_after_its_delay(db) {
    let (q, clock) = queue_at(&db);
    let job = q.enqueue(NewJob::new("t", json!(null))).unwrap();
    let c = claim_one(&q);
    assert_eq!(
        q.snooze(job.id, c.lease_token, Duration::from_secs(30))
            .unwrap(),
        JobStatus::Pending
    );
    let back = q.get(job.id).unwrap();
    assert_eq!((back.attempts, back.snoozes), (0, 1));
    assert_eq!(back.next_retry, clock.now().plus(Duration::from_secs(30)));
    assert!(
        q.claim("w1", None, 1, LEASE).unwrap().is_empty(),
        "not due yet"
    );
    assert!(matches!(
        q.snooze(job.id, c.lease_token, Duration::ZERO),
        Err(Error::LeaseLost { .. })
    ));
    clock.advance(Duration::from_secs(30));
    let again = claim_one(&q);
    assert_eq!(again.attempts, 1, "the snooze used no attempt");
    q.cancel(job.id).unwrap();
    assert_eq!(
        q.snooze(job.id, again.lease_token, Duration::from_secs(1))
            .unwrap(),
        JobStatus::Cancelled,
        "a cancel request wins over a snooze"
    );
}
}

both! {
fn a_progress_fraction_is_stored_within_0_and_1_and_never_as_minus_zero(db) {
    let (q, _clock) = queue_at(&db);
    q.enqueue(NewJob::new("t", json!(null))).unwrap();
    let job = claim_one(&q);
    for (sent, stored) in [(-0.0, "0.0"), (0.5, "0.5"), (-3.0, "0.0"), (7.0, "1.0")] {
        q.progress(job.id, job.lease_token, sent, "m").unwrap();
        let got = q.get(job.id).unwrap().progress.unwrap();
        assert_eq!(got["fraction"].to_string(), stored, "{sent}");
    }
}
}
