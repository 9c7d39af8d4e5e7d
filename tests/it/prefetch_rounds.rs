//! A prefetching pool's round, driven by hand (`Queue::prefetch_round`): a
//! reserved job whose start and completion are written in the same round (one
//! statement) gets its start time; a stale holder's start and completion in
//! one round are both refused, each outcome in its place.

use std::sync::Arc;
use std::time::Duration;

use jobq::{Clock, Error, JobStatus, ManualClock, NewJob};
use serde_json::json;

use crate::backends::both;

const RESERVATION: Duration = Duration::from_secs(10);
const LEASE: Duration = Duration::from_secs(300);

both! {
fn a_start_written_with_its_completion_sets_started_at(db) {
    let clock = ManualClock::new(jobq::SystemClock.now());
    let c = clock.clone();
    let q = db.open(move |o| o.clock(Arc::new(c)));
    let first = q.enqueue(NewJob::new("t", json!(1))).unwrap().id;
    clock.advance(Duration::from_millis(5));
    let second = q.enqueue(NewJob::new("t", json!(2))).unwrap().id;
    let reserved = q.prefetch_round("p", &[], &[], 2, RESERVATION).unwrap().reserved;
    assert_eq!(reserved.len(), 2);
    assert!(reserved.iter().all(|j| j.started_at.is_none()));
    let (a, b) = (&reserved[0], &reserved[1]);
    assert_eq!((a.id, b.id), (first, second));

    clock.advance(Duration::from_secs(1));
    let at = clock.now();
    let starts = [(a.id, a.lease_token, at), (b.id, b.lease_token, at)];
    let done = [(a.id, a.lease_token, json!("ok"))];
    clock.advance(Duration::from_millis(7));
    let round = q.prefetch_round("p", &starts, &done, 0, LEASE).unwrap();
    assert!(round.started.iter().all(Result::is_ok), "{round:?}");
    assert_eq!(round.completed[0].as_ref().unwrap(), &JobStatus::Completed);

    let ended = q.get(first).unwrap();
    assert_eq!(ended.status, JobStatus::Completed);
    assert_eq!(ended.started_at, Some(at));
    assert_eq!(ended.completed_at, Some(clock.now()));
    assert_eq!(ended.result, Some(json!("ok")));
    // The other start, written on its own, holds the full lease.
    let running = q.get(second).unwrap();
    assert_eq!((running.status, running.started_at), (JobStatus::InProgress, Some(at)));
    clock.advance(RESERVATION * 2);
    assert_eq!(q.recover_expired().unwrap(), 0);
}
}

both! {
fn a_stale_holder_s_start_and_completion_in_one_round_are_refused(db) {
    let clock = ManualClock::new(jobq::SystemClock.now());
    let c = clock.clone();
    let q = db.open(move |o| o.clock(Arc::new(c)));
    for i in 0..2 {
        q.enqueue(NewJob::new("t", json!(i))).unwrap();
        clock.advance(Duration::from_millis(5));
    }
    let stale = q.prefetch_round("a", &[], &[], 2, RESERVATION).unwrap().reserved;
    clock.advance(RESERVATION + Duration::from_secs(1));
    assert_eq!(q.recover_expired().unwrap(), 2);
    let taken = q.claim("b", None, 2, LEASE).unwrap();
    assert_eq!(taken.len(), 2);
    let fresh_id = q.enqueue(NewJob::new("t", json!("fresh"))).unwrap().id;
    let fresh = q.prefetch_round("a", &[], &[], 1, RESERVATION).unwrap().reserved;
    assert_eq!(fresh[0].id, fresh_id);

    // The first stale start goes on its own, the second with its completion.
    let (s1, s2, f) = (&stale[0], &stale[1], &fresh[0]);
    let now = clock.now();
    let starts = [
        (s1.id, s1.lease_token, now),
        (f.id, f.lease_token, now),
        (s2.id, s2.lease_token, now),
    ];
    let done = [(s2.id, s2.lease_token, json!("late"))];
    let round = q.prefetch_round("a", &starts, &done, 0, LEASE).unwrap();
    let lost = |r: &Result<(), Error>| {
        matches!(r, Err(Error::LeaseLost { operation: "start", .. }))
    };
    assert!(lost(&round.started[0]), "{round:?}");
    assert!(round.started[1].is_ok(), "{round:?}");
    assert!(lost(&round.started[2]), "{round:?}");
    assert!(matches!(round.completed[0], Err(Error::LeaseLost { .. })), "{round:?}");

    for held in &taken {
        let job = q.get(held.id).unwrap();
        assert_eq!(job.status, JobStatus::InProgress);
        assert_eq!(job.locked_by.as_deref(), Some("b"));
        assert_eq!(job.started_at, held.started_at);
        assert_eq!(job.result, None);
    }
    let started = q.get(fresh_id).unwrap();
    assert_eq!(started.started_at, Some(now));
}
}
