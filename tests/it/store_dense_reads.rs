//! Reads by type on a history where one type has more finished jobs than the
//! "dense" bound (10,000): SQLite then walks the key instead of an index, and a
//! rare type is still read through its index. Both must give the same pages and
//! counts as the plain answer computed here from what was enqueued.

use std::time::Duration;

use jobq::{JobFilter, JobId, JobStatus, NewJob, Queue};
use serde_json::json;

use crate::backends::both;

/// More finished jobs of one type than the dense bound.
const MANY: usize = 10_050;
const LEASE: Duration = Duration::from_secs(300);

/// Enqueues `n` jobs of `job_type` and completes them all; their ids in order.
fn finished(q: &Queue, job_type: &str, n: usize) -> Vec<JobId> {
    let jobs: Vec<_> = (0..n).map(|i| NewJob::new(job_type, json!(i))).collect();
    let ids = q.enqueue_many(jobs).unwrap();
    let types = [job_type.to_string()];
    loop {
        let claimed = q.claim("w", Some(&types), 1_000, LEASE).unwrap();
        if claimed.is_empty() {
            break;
        }
        let done: Vec<_> = claimed
            .iter()
            .map(|j| (j.id, j.lease_token, json!(null)))
            .collect();
        assert!(q.complete_many(&done).unwrap().iter().all(Result::is_ok));
    }
    ids
}

/// Every page of `f` (`size` jobs each), in order.
fn all_pages(q: &Queue, f: &JobFilter, size: usize) -> Vec<JobId> {
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let (jobs, next) = q.page(f, size, cursor.as_deref()).unwrap();
        out.extend(jobs.iter().map(|j| j.id));
        match next {
            Some(n) => cursor = Some(n),
            None => return out,
        }
    }
}

fn by_type(job_type: &str, status: Option<JobStatus>) -> JobFilter {
    JobFilter {
        job_type: Some(job_type.to_string()),
        status,
        ..JobFilter::default()
    }
}

both! {
fn a_dense_type_and_a_rare_one_list_and_count_every_job_newest_first(db) {
    let q = db.open(|o| o);
    let rare_done = finished(&q, "rare", 3);
    let mut mail = finished(&q, "mail", MANY);
    // Newer jobs of both types in the other statuses: pending and running.
    let pending = q.enqueue_many(vec![NewJob::new("mail", json!("p")); 2]).unwrap();
    let rare_pending = q.enqueue(NewJob::new("rare", json!("p"))).unwrap().id;
    let types = ["mail".to_string()];
    let running = q.claim("w", Some(&types), 1, LEASE).unwrap();
    assert_eq!(running[0].id, pending[0]);
    mail.extend(&pending);

    // Newest first is the ids' order, descending.
    mail.reverse();
    let first = q.page(&by_type("mail", None), 50, None).unwrap().0;
    let ids: Vec<JobId> = first.iter().map(|j| j.id).collect();
    assert_eq!(ids, mail[..50], "the newest 50 mail jobs, every status");
    assert_eq!(first[0].status, JobStatus::Pending);
    assert_eq!(first[1].status, JobStatus::InProgress);
    let completed = q
        .page(&by_type("mail", Some(JobStatus::Completed)), 50, None)
        .unwrap()
        .0;
    let ids: Vec<JobId> = completed.iter().map(|j| j.id).collect();
    assert_eq!(ids, mail[2..52], "the newest 50 completed mail jobs");
    assert_eq!(all_pages(&q, &by_type("mail", None), 500), mail);

    let n = |f: &JobFilter| q.count(f, 20_000).unwrap().n;
    assert_eq!(n(&by_type("mail", None)), u64::try_from(MANY + 2).unwrap());
    assert_eq!(
        n(&by_type("mail", Some(JobStatus::Completed))),
        u64::try_from(MANY).unwrap()
    );
    assert_eq!(n(&by_type("mail", Some(JobStatus::InProgress))), 1);

    let mut rare: Vec<JobId> = rare_done.clone();
    rare.push(rare_pending);
    rare.reverse();
    assert_eq!(all_pages(&q, &by_type("rare", None), 2), rare);
    let rare_completed = all_pages(&q, &by_type("rare", Some(JobStatus::Completed)), 50);
    assert_eq!(rare_completed, rare[1..]);
    assert_eq!(n(&by_type("rare", None)), 4);
    assert_eq!(n(&by_type("rare", Some(JobStatus::Failed))), 0);
}
}
