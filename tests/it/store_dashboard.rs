//! The dashboard's reads (overview, pages without totals, capped counts) and
//! the bulk retry and cancel of every job matching a filter, on both backends.

use std::sync::Arc;
use std::time::Duration;

use jobq::{
    Count, Durability, ErrorClass, Failure, JobFilter, JobStatus, ManualClock, NewJob,
    OverviewQuery, Queue, Timestamp,
};
use serde_json::json;

use crate::backends::{both, Db};

const LEASE: Duration = Duration::from_secs(300);
const T0: i64 = 1_764_504_000_000;

fn queue(db: &Db) -> (Queue, ManualClock) {
    let clock = ManualClock::new(Timestamp(T0));
    let q = db.open(|o| {
        o.durability(Durability::Normal)
            .clock(Arc::new(clock.clone()))
    });
    (q, clock)
}

fn filter(status: Option<JobStatus>, job_type: Option<&str>) -> JobFilter {
    JobFilter {
        status,
        job_type: job_type.map(str::to_string),
        ..JobFilter::default()
    }
}

/// Claims every due job of `job_type` and ends each as `end` says.
fn run(q: &Queue, job_type: &str, end: impl Fn(&Queue, &jobq::Job)) {
    let types = [job_type.to_string()];
    for job in q.claim("w", Some(&types), 100, LEASE).unwrap() {
        end(q, &job);
    }
}

fn fail_permanently(q: &Queue, job: &jobq::Job) {
    let f = Failure::new("bad <input>", ErrorClass::Permanent);
    q.fail(job.id, job.lease_token, &f).unwrap();
}

both! {
fn the_overview_counts_statuses_groups_and_minutes(db) {
    let (q, clock) = queue(&db);
    for i in 0..5 {
        q.enqueue(NewJob::new("mail", json!(i))).unwrap();
    }
    for i in 0..3 {
        q.enqueue(NewJob::new("resize", json!(i))).unwrap();
    }
    q.enqueue(NewJob::new("mail", json!("later")).delay(Duration::from_secs(600)))
        .unwrap();
    clock.advance(Duration::from_secs(90));
    run(&q, "resize", fail_permanently);
    let types = ["mail".to_string()];
    let claimed = q.claim("w", Some(&types), 2, LEASE).unwrap();
    q.complete(claimed[0].id, claimed[0].lease_token, &json!(1))
        .unwrap();
    q.progress(claimed[1].id, claimed[1].lease_token, 0.5, "half")
        .unwrap();
    clock.advance(Duration::from_secs(30));

    let o = q.overview(&OverviewQuery::last_hour(q.now(), 10)).unwrap();
    assert_eq!(o.by_status.pending, Count { n: 4, more: false });
    assert_eq!(o.by_status.in_progress.n, 1);
    assert_eq!((o.by_status.completed.n, o.by_status.failed.n), (1, 3));
    assert!(!o.partial);
    let mail = o.groups.iter().find(|g| g.job_type == "mail").unwrap();
    assert_eq!(
        (mail.queue.as_str(), mail.ready, mail.scheduled),
        ("default", 3, 1)
    );
    assert_eq!((mail.running, mail.completed_recently), (1, 1));
    let resize = o.groups.iter().find(|g| g.job_type == "resize").unwrap();
    assert_eq!(
        (resize.failed, resize.failed_recently, resize.ready),
        (3, 3, 0)
    );
    assert_eq!(o.oldest_ready_age_ms, Some(120_000));
    assert_eq!(o.minutes.len(), 60);
    assert_eq!(o.minutes.last().unwrap().start.0 % 60_000, 0);
    let started: u64 = o.minutes.iter().map(|m| m.started).sum();
    let failed: u64 = o.minutes.iter().map(|m| m.failed).sum();
    assert_eq!((started, failed), (5, 3));
    let minute_of_t90 = o
        .minutes
        .iter()
        .find(|m| (m.start.0..m.start.0 + 60_000).contains(&(T0 + 90_000)))
        .unwrap();
    assert_eq!((minute_of_t90.completed, minute_of_t90.failed), (1, 3));
    assert_eq!(o.running.len(), 1);
    assert_eq!(o.running[0].progress.as_ref().unwrap()["fraction"], 0.5);
    assert_eq!(o.recent_failures.len(), 3);
}
}

both! {
fn capped_counts_stop_at_the_cap_and_say_so(db) {
    let (q, _clock) = queue(&db);
    let jobs: Vec<_> = (0..30).map(|i| NewJob::new("c", json!(i))).collect();
    q.enqueue_many(jobs).unwrap();
    let pending = filter(Some(JobStatus::Pending), None);
    assert_eq!(q.count(&pending, 10).unwrap(), Count { n: 10, more: true });
    assert_eq!(q.count(&pending, 30).unwrap(), Count { n: 30, more: false });
    let other = filter(None, Some("other"));
    assert_eq!(q.count(&other, 10).unwrap(), Count { n: 0, more: false });
    let mut query = OverviewQuery::last_hour(q.now(), 5);
    query.cap = 20;
    query.group_rows = 25;
    let o = q.overview(&query).unwrap();
    assert_eq!(o.by_status.pending, Count { n: 20, more: true });
    assert!(o.partial, "30 active rows over a cap of 25");
}
}

both! {
fn pages_without_totals_follow_the_filter_to_the_end(db) {
    let (q, clock) = queue(&db);
    for i in 0..25 {
        let t = if i % 5 == 0 { "rare" } else { "common" };
        q.enqueue(NewJob::new(t, json!(i)).owner(if i < 10 { "al" } else { "bo" }))
            .unwrap();
        clock.advance(Duration::from_millis(1));
    }
    let f = JobFilter {
        job_type: Some("rare".into()),
        owner: Some("bo".into()),
        ..JobFilter::default()
    };
    let (first, next) = q.page(&f, 2, None).unwrap();
    let (second, last) = q.page(&f, 2, next.as_deref()).unwrap();
    let payloads: Vec<_> = first
        .iter()
        .chain(&second)
        .map(|j| j.payload.clone())
        .collect();
    assert_eq!(payloads, vec![json!(20), json!(15), json!(10)]);
    assert!(last.is_none());
    assert!(q.page(&f, 0, None).is_err());
    assert!(q.page(&f, 5, Some("nonsense")).is_err());
}
}

both! {
fn bulk_retry_and_cancel_move_every_matching_job_in_batches(db) {
    let (q, _clock) = queue(&db);
    let jobs: Vec<_> = (0..1203).map(|i| NewJob::new("b", json!(i))).collect();
    q.enqueue_many(jobs).unwrap();
    q.enqueue_many((0..7).map(|i| NewJob::new("keep", json!(i))).collect())
        .unwrap();
    loop {
        let types = ["b".to_string()];
        let claimed = q.claim("w", Some(&types), 500, LEASE).unwrap();
        if claimed.is_empty() {
            break;
        }
        for job in &claimed {
            fail_permanently(&q, job);
        }
    }
    let failed_b = filter(Some(JobStatus::Failed), Some("b"));
    assert_eq!(q.count(&failed_b, 5000).unwrap().n, 1203);
    assert_eq!(q.retry_matching(&failed_b).unwrap(), 1203);
    assert_eq!(q.count(&failed_b, 5000).unwrap().n, 0);
    let pending_b = filter(Some(JobStatus::Pending), Some("b"));
    let retried = q.page(&pending_b, 1, None).unwrap().0.remove(0);
    assert_eq!(retried.attempts, 0);
    assert!(retried.error_message.is_some(), "the error history stays");
    assert_eq!(q.retry_matching(&failed_b).unwrap(), 0);

    let types = ["b".to_string()];
    let running = q.claim("w", Some(&types), 3, LEASE).unwrap();
    assert_eq!(q.cancel_matching(&filter(None, Some("b"))).unwrap(), 1203);
    let cancelled = filter(Some(JobStatus::Cancelled), Some("b"));
    assert_eq!(q.count(&cancelled, 5000).unwrap().n, 1200);
    let still = q.get(running[0].id).unwrap();
    assert_eq!(
        (still.status, still.cancel_requested),
        (JobStatus::InProgress, true)
    );
    let kept = filter(Some(JobStatus::Pending), Some("keep"));
    assert_eq!(q.count(&kept, 100).unwrap().n, 7, "other types untouched");
    assert_eq!(q.cancel_matching(&filter(None, Some("b"))).unwrap(), 0);
}
}
