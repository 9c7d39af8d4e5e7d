//! Reads: keyset pagination, filters, stats, and prune.

use crate::backends::{both, Db};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jobq::{
    Durability, ErrorClass, Failure, JobFilter, JobId, JobStatus, ManualClock, NewJob, Queue,
    Timestamp,
};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(300);

fn queue(db: &Db) -> (Queue, ManualClock) {
    let clock = ManualClock::new(Timestamp(1_764_504_000_000));
    let q = db.open(|o| {
        o.durability(Durability::Normal)
            .clock(Arc::new(clock.clone()))
    });
    (q, clock)
}

both! {
fn pages_over_equal_timestamps_see_every_job_once_while_others_are_inserted(db) {
    let (q, _clock) = queue(&db);
    let jobs: Vec<_> = (0..1000).map(|i| NewJob::new("p", json!(i))).collect();
    let original: HashSet<_> = q.enqueue_many(jobs).unwrap().into_iter().collect();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = q
            .list(&JobFilter::default(), 37, cursor.as_deref())
            .unwrap();
        for j in &page.jobs {
            assert!(seen.insert(j.id), "job {} seen twice", j.id);
        }
        pages += 1;
        // Ids for other times made in between (a real clock's many
        // milliseconds in this process) must not restart this millisecond's
        // ids below the cursor.
        for ms in 1..=100 {
            JobId::at(Timestamp(1_764_504_000_000 + 5_000 + ms));
        }
        q.enqueue(NewJob::new("p", json!("inserted meanwhile")))
            .unwrap();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 28);
    assert_eq!(seen, original);
}
}

both! {
fn an_exactly_full_last_page_has_no_cursor(db) {
    let (q, _clock) = queue(&db);
    let jobs: Vec<_> = (0..10).map(|i| NewJob::new("p", json!(i))).collect();
    q.enqueue_many(jobs).unwrap();
    let all = q.list(&JobFilter::default(), 10, None).unwrap();
    assert_eq!(all.jobs.len(), 10);
    assert_eq!(all.next_cursor, None, "one full page is the last");
    let first = q.list(&JobFilter::default(), 5, None).unwrap();
    assert_eq!(first.jobs, all.jobs[..5]);
    let cursor = first.next_cursor.expect("five more follow");
    let second = q.list(&JobFilter::default(), 5, Some(&cursor)).unwrap();
    assert_eq!(second.jobs, all.jobs[5..]);
    assert_eq!(second.next_cursor, None, "no empty page after the last");
}
}

both! {
fn list_filters_and_totals(db) {
    let (q, _clock) = queue(&db);
    for i in 0..10 {
        let owner = if i % 2 == 0 { "alice" } else { "bob" };
        q.enqueue(
            NewJob::new("doc", json!(i))
                .owner(owner)
                .entity("document", format!("d{}", i % 3)),
        )
        .unwrap();
    }
    q.enqueue(NewJob::new("other", json!(null))).unwrap();
    let f = JobFilter {
        owner: Some("alice".into()),
        ..JobFilter::default()
    };
    let page = q.list(&f, 2, None).unwrap();
    assert_eq!((page.jobs.len(), page.total), (2, 5));
    assert!(page
        .jobs
        .iter()
        .all(|j| j.owner.as_deref() == Some("alice")));
    assert!(page.jobs[0].id > page.jobs[1].id, "newest first");
    let f = JobFilter {
        entity_type: Some("document".into()),
        entity_id: Some("d0".into()),
        ..JobFilter::default()
    };
    assert_eq!(q.list(&f, 100, None).unwrap().total, 4);
    let f = JobFilter {
        status: Some(JobStatus::Pending),
        job_type: Some("other".into()),
        ..JobFilter::default()
    };
    assert_eq!(q.list(&f, 100, None).unwrap().total, 1);
    assert!(q.list(&JobFilter::default(), 0, None).is_err());
    assert!(q.list(&JobFilter::default(), 501, None).is_err());
    assert!(q.list(&JobFilter::default(), 10, Some("garbage")).is_err());
}
}

both! {
fn stats_split_pending_and_age_the_oldest_ready_job(db) {
    let (q, clock) = queue(&db);
    q.enqueue(NewJob::new("a", json!(1))).unwrap();
    q.enqueue(NewJob::new("a", json!(2)).delay(Duration::from_secs(3600)))
        .unwrap();
    q.enqueue(NewJob::new("b", json!(3))).unwrap();
    let c = q
        .claim("w", Some(&["b".to_string()]), 1, LEASE)
        .unwrap()
        .pop()
        .unwrap();
    q.fail(
        c.id,
        c.lease_token,
        &Failure::new("timeout", ErrorClass::Retryable),
    )
    .unwrap();
    q.enqueue(NewJob::new("c", json!(4))).unwrap();
    let c = q
        .claim("w", Some(&["c".to_string()]), 1, LEASE)
        .unwrap()
        .pop()
        .unwrap();
    q.complete(c.id, c.lease_token, &json!(null)).unwrap();
    clock.advance(Duration::from_secs(2));
    let s = q.stats().unwrap();
    assert_eq!(s.total, 4);
    assert_eq!((s.by_status.pending, s.by_status.completed), (3, 1));
    assert_eq!(
        (s.pending.ready, s.pending.scheduled, s.pending.retrying),
        (1, 1, 1)
    );
    assert_eq!(s.oldest_ready_age_ms, Some(2000));
    assert_eq!(s.by_type["a"].pending, 2);
    assert_eq!(s.by_type["c"].completed, 1);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["pending"]["retrying"], 1);
}
}

both! {
fn stats_say_how_many_in_progress_jobs_are_reserved_not_started(db) {
    let (q, _clock) = queue(&db);
    for i in 0..3 {
        q.enqueue(NewJob::new("a", json!(i))).unwrap();
    }
    assert_eq!(q.claim("w", None, 1, LEASE).unwrap().len(), 1);
    let round = q.prefetch_round("p", &[], &[], 1, LEASE).unwrap();
    assert_eq!(round.reserved.len(), 1);
    let s = q.stats().unwrap();
    assert_eq!((s.by_status.in_progress, s.reserved), (2, 1), "{s:?}");
    assert_eq!((s.by_status.pending, s.pending.ready), (1, 1), "{s:?}");
    assert_eq!(serde_json::to_value(&s).unwrap()["reserved"], 1);
}
}

both! {
fn prune_deletes_only_old_final_jobs(db) {
    let (q, clock) = queue(&db);
    let keep = q.enqueue(NewJob::new("a", json!(null))).unwrap();
    for _ in 0..3 {
        q.enqueue(NewJob::new("b", json!(null))).unwrap();
    }
    for c in q.claim("w", Some(&["b".to_string()]), 3, LEASE).unwrap() {
        q.complete(c.id, c.lease_token, &json!(null)).unwrap();
    }
    clock.advance(Duration::from_secs(6 * 86_400));
    assert_eq!(
        q.prune(Duration::from_secs(7 * 86_400), &[JobStatus::Completed])
            .unwrap(),
        0
    );
    clock.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(
        q.prune(Duration::from_secs(7 * 86_400), &[JobStatus::Failed])
            .unwrap(),
        0
    );
    assert_eq!(
        q.prune(Duration::from_secs(7 * 86_400), &[JobStatus::Completed])
            .unwrap(),
        3
    );
    assert_eq!(q.get(keep.id).unwrap().status, JobStatus::Pending);
    assert!(q.prune(Duration::ZERO, &[JobStatus::Pending]).is_err());
}
}
