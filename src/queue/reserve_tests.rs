//! Prefetch reservations through the queue's round (see `WorkerConfig::prefetch`):
//! a reservation that runs out is given back unused, and fencing refuses the
//! old holder's start and result; a reservation given back unstarted leaves
//! no start in its queue's rate window.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::job::JobStatus;
use crate::queue::{ClaimSpec, Finished};
use crate::{LimitsChange, NewJob, Queue, QueueOptions, RateLimit};

fn reserve(q: &Queue, worker: &str) -> crate::Job {
    reserve_from(q, worker, None)
}

/// Reserves the next job of `queues` (`None`: any queue) for `worker`.
fn reserve_from(q: &Queue, worker: &str, queues: Option<&[String]>) -> crate::Job {
    let claim = ClaimSpec {
        worker,
        types: None,
        queues,
        n: 1,
        lease: Duration::from_secs(10),
        reserve: true,
        start_now: 1,
        live: None,
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
    let unstarted = [(first, a.lease_token, a.updated_at)];
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

/// A queue on a manual clock, with `n` jobs in queue "rl".
fn queue_with_jobs(dir: &std::path::Path, n: usize) -> (Queue, ManualClock) {
    let clock = ManualClock::new(crate::Timestamp(1_764_504_000_000));
    let opts = QueueOptions::new(dir.join("rl.db")).clock(Arc::new(clock.clone()));
    let q = Queue::open_with(opts).unwrap();
    for i in 0..n {
        q.enqueue(NewJob::new("t", json!(i)).queue("rl")).unwrap();
    }
    (q, clock)
}

/// Gives queue "rl" a rate limit of 3 per minute (no start slides out of
/// the window during a test).
fn limit_rate(q: &Queue) {
    let change = LimitsChange {
        rate_limit: Some(Some(RateLimit::new(3, Duration::from_secs(60)).unwrap())),
        ..LimitsChange::default()
    };
    q.set_queue_limits("rl", change).unwrap();
}

/// Gives `job` (reserved, never started) back as a pool does.
fn give_back(q: &Queue, job: &crate::Job) {
    let unstarted = [(job.id, job.lease_token, job.updated_at)];
    let round = Finished {
        unstarted: &unstarted,
        ..Finished::default()
    };
    let s = q.settle_and_claim(round, None).unwrap();
    assert_eq!(s.unstarted[0].as_ref().unwrap(), &JobStatus::Pending);
}

#[test]
fn a_reservation_given_back_unstarted_leaves_its_queue_s_whole_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (q, clock) = queue_with_jobs(dir.path(), 4);
    limit_rate(&q);
    let held = reserve(&q, "p");
    clock.advance(Duration::from_millis(5));
    give_back(&q, &held);
    // No job of "rl" has started: all three starts of the minute are there.
    let lease = Duration::from_secs(300);
    assert_eq!(q.claim("b", None, 10, lease).unwrap().len(), 3);
    assert!(q.claim("b", None, 10, lease).unwrap().is_empty());
}

#[test]
fn a_give_back_forgets_only_the_start_its_own_claim_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (q, clock) = queue_with_jobs(dir.path(), 5);
    // Reserved before the queue had a rate limit: its claim recorded no start.
    let held = reserve_from(&q, "p", Some(&["rl".to_string()]));
    limit_rate(&q);
    clock.advance(Duration::from_millis(5));
    let lease = Duration::from_secs(300);
    assert_eq!(q.claim("b", None, 1, lease).unwrap().len(), 1);
    clock.advance(Duration::from_millis(5));
    give_back(&q, &held);
    // The later claim's start stays: two of the minute's three are left.
    assert_eq!(q.claim("b", None, 10, lease).unwrap().len(), 2);
}

#[test]
fn a_live_sized_claim_takes_what_its_read_says_at_most_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("l.db")).unwrap();
    for i in 0..6 {
        q.enqueue(NewJob::new("t", json!(i))).unwrap();
    }
    let reads = std::sync::atomic::AtomicUsize::new(0);
    let claimed = |bound: usize, says: usize| {
        let read = || {
            reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (says, says)
        };
        let claim = ClaimSpec {
            worker: "w",
            types: None,
            queues: None,
            n: bound,
            lease: Duration::from_secs(10),
            reserve: true,
            start_now: 0,
            live: Some(crate::store::LiveSize(&read)),
        };
        let s = q
            .settle_and_claim(Finished::default(), Some(claim))
            .unwrap();
        s.claimed.len()
    };
    // The read, not the bound, sizes the claim; the bound caps it.
    assert_eq!(claimed(4, 2), 2);
    assert_eq!(claimed(3, 9), 3);
    // A read of none claims none.
    assert_eq!(claimed(4, 0), 0);
    assert_eq!(reads.load(std::sync::atomic::Ordering::Relaxed), 3);
    let stats = q.stats().unwrap();
    assert_eq!((stats.reserved, stats.pending.ready), (5, 1));
}
