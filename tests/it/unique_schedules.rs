//! Unique jobs and recurring schedules through the store, on both backends: a
//! duplicate returns the job holding the key; a retry that would make a second
//! live holder is refused; each fire time of a schedule enqueues one job, however
//! many handles fire it at once.

use std::sync::Arc;
use std::time::Duration;

use jobq::{Catalog, Error, JobStatus, ManualClock, NewJob, Queue, Schedule, Timestamp, Unique};
use serde_json::json;

use crate::backends::{both, Db};

const T0: i64 = 1_764_504_000_000; // 2025-11-30T12:00:00Z

fn queue(db: &Db, clock: &ManualClock) -> Queue {
    let mut catalog = Catalog::any_type();
    catalog
        .declare_schedule(Schedule::new("every_minute", "* * * * *", "tick").unwrap())
        .unwrap();
    db.open(|o| o.clock(Arc::new(clock.clone())).catalog(catalog))
}

both! {
fn a_duplicate_returns_the_holder_until_the_key_is_released(db) {
    let clock = ManualClock::new(Timestamp(T0));
    let q = queue(&db, &clock);
    let rule = || Unique::by_key("invoice-7");
    let first = q.enqueue(NewJob::new("bill", json!(1)).unique(rule())).unwrap();
    let again = q.enqueue(NewJob::new("bill", json!(2)).unique(rule())).unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.job.id, first.job.id);
    let batch = q
        .enqueue_batch(vec![
            NewJob::new("bill", json!(3)).unique(Unique::by_key("invoice-8")),
            NewJob::new("bill", json!(4)).unique(Unique::by_key("invoice-8")),
        ])
        .unwrap();
    assert!(!batch[0].duplicate && batch[1].duplicate, "refused by an earlier row");
    let c = q.claim("w", None, 10, Duration::from_secs(60)).unwrap();
    let held = c.iter().find(|j| j.id == first.job.id).unwrap();
    q.complete(held.id, held.lease_token, &json!(null)).unwrap();
    let after = q.enqueue(NewJob::new("bill", json!(5)).unique(rule())).unwrap();
    assert!(!after.duplicate, "a completed job no longer holds a live-only key");
    let held_done = rule().also_in(&[JobStatus::Completed]);
    let x = q.enqueue(NewJob::new("ship", json!(1)).unique(held_done.clone())).unwrap();
    let c = q.claim("w", Some(&["ship".to_string()]), 1, Duration::from_secs(60)).unwrap();
    q.complete(c[0].id, c[0].lease_token, &json!(null)).unwrap();
    let y = q.enqueue(NewJob::new("ship", json!(2)).unique(held_done)).unwrap();
    assert!(y.duplicate && y.job.id == x.job.id, "completed holds it when the rule says");
}

fn a_retry_that_would_make_a_second_live_holder_is_a_conflict(db) {
    let clock = ManualClock::new(Timestamp(T0));
    let q = queue(&db, &clock);
    let rule = || Unique::by_key("k");
    let first = q.enqueue(NewJob::new("t", json!(1)).unique(rule()).max_attempts(1)).unwrap();
    q.cancel(first.job.id).unwrap();
    let second = q.enqueue(NewJob::new("t", json!(2)).unique(rule())).unwrap();
    assert!(!second.duplicate);
    match q.retry(first.job.id) {
        Err(Error::UniqueConflict { id, holder }) => {
            assert_eq!((id, holder), (first.job.id, second.job.id));
        }
        other => panic!("expected a unique conflict, got {other:?}"),
    }
    assert_eq!(q.get(first.job.id).unwrap().status, JobStatus::Cancelled, "unchanged");
    q.cancel(second.job.id).unwrap();
    q.retry(first.job.id).unwrap();
    assert_eq!(q.get(first.job.id).unwrap().status, JobStatus::Pending);
}

fn each_fire_time_enqueues_one_job_however_many_fire_it(db) {
    let clock = ManualClock::new(Timestamp(T0 + 30_000));
    let handles: Vec<Queue> = (0..4).map(|_| queue(&db, &clock)).collect();
    handles[0].fire_schedule("every_minute").unwrap();
    assert!(
        crate::util::all_of(&handles[0], "tick").is_empty(),
        "first sight records the time and fires from the next fire time on"
    );
    for minute in 1..=3 {
        clock.advance(Duration::from_secs(60));
        let threads: Vec<_> = handles
            .iter()
            .cloned()
            .map(|q| std::thread::spawn(move || q.fire_schedule("every_minute").unwrap()))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let jobs = crate::util::all_of(&handles[0], "tick");
        assert_eq!(jobs.len(), minute, "one job per fire time");
    }
    let mut fire_times: Vec<i64> = crate::util::all_of(&handles[0], "tick")
        .iter()
        .map(|j| j.fire_time.unwrap().0)
        .collect();
    fire_times.sort();
    assert_eq!(fire_times, [T0 + 60_000, T0 + 120_000, T0 + 180_000]);
    let info = handles[1].schedules().unwrap();
    assert_eq!(info[0].last_fire, Some(Timestamp(T0 + 180_000)));
}
}
