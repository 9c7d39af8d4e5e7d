//! A value the database refuses (here a trigger or CHECK constraint a test
//! adds; in life a result too big for the database) stops nothing: the pool
//! finds the refused outcome, records a failed attempt saying why in its
//! place, and every other job goes on. An outcome refused in every form is
//! given up and its job comes back when its lease expires.

use std::time::Duration;

use jobq::{JobError, JobStatus, NewJob, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::backends::{both, Db};
use crate::util::wait_for;

/// Makes the database refuse a result holding `poison`, an error text holding
/// `venom`, and any error text of a `deadly` job saying it could not be stored.
fn refuse_values(db: &Db) {
    if db.is_postgres() {
        let mut c = postgres::Client::connect(&db.location(), postgres::NoTls).unwrap();
        c.batch_execute(
            "ALTER TABLE jobq.jobs ADD CONSTRAINT no_bad_result \
               CHECK (result IS NULL OR result::text NOT LIKE '%poison%');
             ALTER TABLE jobq.jobs ADD CONSTRAINT no_bad_error \
               CHECK (error_message IS NULL OR error_message NOT LIKE '%venom%');
             ALTER TABLE jobq.jobs ADD CONSTRAINT no_deadly_note \
               CHECK (job_type <> 'deadly' OR error_message IS NULL \
                      OR error_message NOT LIKE '%could not be stored%');",
        )
        .unwrap();
    } else {
        let c = rusqlite::Connection::open(db.location()).unwrap();
        c.execute_batch(
            "CREATE TRIGGER no_bad_result BEFORE UPDATE ON jobs
               WHEN NEW.result LIKE '%poison%'
               BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;
             CREATE TRIGGER no_bad_error BEFORE UPDATE ON jobs
               WHEN NEW.error_message LIKE '%venom%'
               BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;
             CREATE TRIGGER no_deadly_note BEFORE UPDATE ON jobs
               WHEN NEW.job_type = 'deadly' AND NEW.error_message LIKE '%could not be stored%'
               BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;",
        )
        .unwrap();
    }
}

both! {
fn a_refused_outcome_is_replaced_or_given_up_and_the_pool_goes_on(db) {
    let q = db.open(|o| o);
    refuse_values(&db);
    let poison = q.enqueue(NewJob::new("poison", json!({}))).unwrap().id;
    let venom = q.enqueue(NewJob::new("venom", json!({}))).unwrap().id;
    let deadly = q
        .enqueue(NewJob::new("deadly", json!({})).max_attempts(1))
        .unwrap()
        .id;
    let ok: Vec<_> = (0..12)
        .map(|i| q.enqueue(NewJob::new("ok", json!({ "i": i }))).unwrap().id)
        .collect();
    let mut reg = Registry::new();
    reg.register("poison", |_: &jobq::JobContext, _: Value| Ok(json!({ "v": "poison" })));
    reg.register("venom", |_: &jobq::JobContext, _: Value| {
        Err(JobError::Permanent("venom".into()))
    });
    reg.register("deadly", |_: &jobq::JobContext, _: Value| Ok(json!("poison")));
    reg.register("ok", |_: &jobq::JobContext, v: Value| Ok(v));
    let cfg = WorkerConfig {
        workers: 4,
        lease: Duration::from_secs(1),
        heartbeat_interval: Some(Duration::from_millis(300)),
        recovery_interval: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    let status = |id| q.get(id).unwrap().status;
    wait_for("every ok job completes", Duration::from_secs(30), || {
        ok.iter().all(|id| status(*id) == JobStatus::Completed)
    });
    wait_for("the refused ones end", Duration::from_secs(30), || {
        [poison, venom, deadly].iter().all(|id| status(*id) == JobStatus::Failed)
    });
    // A job enqueued after them runs: nothing is stuck behind them.
    let late = q.enqueue(NewJob::new("ok", json!("late"))).unwrap().id;
    wait_for("a later job completes", Duration::from_secs(10), || {
        status(late) == JobStatus::Completed
    });
    pool.shutdown(Duration::from_secs(5));

    let p = q.get(poison).unwrap();
    assert_eq!(p.attempts, 1, "permanent: the handler's work is done");
    assert_eq!(p.result, None);
    let text = p.error_message.unwrap_or_default();
    assert!(text.contains("result could not be stored"), "{text}");

    let v = q.get(venom).unwrap();
    assert_eq!(v.attempts, 1);
    let text = v.error_message.unwrap_or_default();
    assert!(text.contains("error could not be stored"), "{text}");
    assert!(!text.contains("venom"), "{text}");

    // Its result and the failure in its place were both refused: given up,
    // it came back when its lease expired, with no attempt left.
    let d = q.get(deadly).unwrap();
    assert_eq!(d.attempts, 1);
    assert_eq!(d.error_message.as_deref(), Some("lease expired"));
    for id in ok {
        assert!(q.get(id).unwrap().result.is_some());
    }
}
}

both! {
fn run_due_records_a_stand_in_for_a_refused_outcome_and_goes_on(db) {
    let q = db.open(|o| o);
    refuse_values(&db);
    let first = q.enqueue(NewJob::new("poison", json!({})).priority(2)).unwrap().id;
    let second = q.enqueue(NewJob::new("deadly", json!({})).priority(1)).unwrap().id;
    let rest: Vec<_> = (0..3)
        .map(|i| q.enqueue(NewJob::new("ok", json!(i))).unwrap().id)
        .collect();
    let mut reg = Registry::new();
    reg.register("poison", |_: &jobq::JobContext, _: Value| Ok(json!("poison")));
    reg.register("deadly", |_: &jobq::JobContext, _: Value| Ok(json!("poison")));
    reg.register("ok", |_: &jobq::JobContext, v: Value| Ok(v));
    let sum = jobq::run_due(&q, &reg, 10, &WorkerConfig::default()).unwrap();
    assert_eq!((sum.processed, sum.completed, sum.failed), (5, 3, 1), "{sum:?}");
    let p = q.get(first).unwrap();
    assert_eq!(p.status, JobStatus::Failed);
    let text = p.error_message.unwrap_or_default();
    assert!(text.contains("result could not be stored"), "{text}");
    // Refused in both forms: given up, still held until its lease expires.
    assert_eq!(q.get(second).unwrap().status, JobStatus::InProgress);
    for id in rest {
        assert_eq!(q.get(id).unwrap().status, JobStatus::Completed);
    }
}
}
