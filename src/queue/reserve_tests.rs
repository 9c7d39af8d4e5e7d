//! Prefetch reservations through the queue's round (see `WorkerConfig::prefetch`):
//! a reservation that runs out is given back unused, and fencing refuses the
//! old holder's start and result.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::job::JobStatus;
use crate::queue::{ClaimSpec, Finished};
use crate::{NewJob, Queue, QueueOptions};

fn reserve(q: &Queue, worker: &str) -> crate::Job {
    let claim = ClaimSpec {
        worker,
        types: None,
        queues: None,
        n: 1,
        lease: Duration::from_secs(10),
        reserve: true,
        start_now: 1,
    };
    let mut s = q
        .settle_and_claim(Finished::default(), Some(claim))
        .unwrap();
    s.claimed.pop().expect("a job reserved")
}

#[test]
fn a_reservation_taken_back_is_unused_and_fences_the_old_holder() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(crate::Timestamp(1_764_504_000_000));
    let opts = QueueOptions::new(dir.path().join("r.db")).clock(Arc::new(clock.clone()));
    let q = Queue::open_with(opts).unwrap();
    let id = q.enqueue(NewJob::new("t", json!(1))).unwrap().id;
    let held = reserve(&q, "a");
    assert_eq!((held.attempts, held.started_at), (1, None));
    clock.advance(Duration::from_secs(9));
    assert_eq!(q.recover_expired().unwrap(), 0);
    clock.advance(Duration::from_secs(2));
    assert_eq!(q.recover_expired().unwrap(), 1);
    let back = q.get(id).unwrap();
    assert_eq!((back.status, back.attempts), (JobStatus::Pending, 0));
    assert!(back.error_message.is_none() && back.locked_by.is_none());

    let again = q.claim("b", None, 1, Duration::from_secs(300)).unwrap();
    assert!(again[0].lease_token > held.lease_token);
    let starts = [(id, held.lease_token, clock.now())];
    let stale = Finished {
        starts: &starts,
        start_lease: Duration::from_secs(300),
        ..Finished::default()
    };
    let s = q.settle_and_claim(stale, None).unwrap();
    assert!(matches!(s.started[0], Err(Error::LeaseLost { .. })));
    let late = q.complete(id, held.lease_token, &json!("late"));
    assert!(matches!(late, Err(Error::LeaseLost { .. })), "{late:?}");
    let now = q.get(id).unwrap();
    assert_eq!((now.locked_by.as_deref(), now.attempts), (Some("b"), 1));
    assert!(now.started_at.is_some());
}

#[test]
fn a_started_reservation_holds_the_lease_and_a_given_back_one_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(crate::Timestamp(1_764_504_000_000));
    let opts = QueueOptions::new(dir.path().join("s.db")).clock(Arc::new(clock.clone()));
    let q = Queue::open_with(opts).unwrap();
    let first = q.enqueue(NewJob::new("t", json!(1))).unwrap().id;
    clock.advance(Duration::from_millis(5));
    let second = q.enqueue(NewJob::new("t", json!(2))).unwrap().id;
    let (a, b) = (reserve(&q, "p"), reserve(&q, "p"));
    assert_eq!((a.id, b.id), (first, second));
    let due_before = q.get(first).unwrap().next_retry;
    let starts = [(second, b.lease_token, clock.now())];
    let unstarted = [(first, a.lease_token)];
    let round = Finished {
        starts: &starts,
        start_lease: Duration::from_secs(300),
        unstarted: &unstarted,
        ..Finished::default()
    };
    let s = q.settle_and_claim(round, None).unwrap();
    assert!(s.started[0].is_ok());
    assert_eq!(s.unstarted[0].as_ref().unwrap(), &JobStatus::Pending);
    let back = q.get(first).unwrap();
    assert_eq!((back.attempts, back.next_retry), (0, due_before));
    // The started one is leased for 5 min now, not reserved for 10 s.
    clock.advance(Duration::from_secs(60));
    assert_eq!(q.recover_expired().unwrap(), 0);
    assert_eq!(q.get(second).unwrap().status, JobStatus::InProgress);
}
