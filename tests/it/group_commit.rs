//! Group commit: enqueues from many threads of one process share commits.
//! Every acknowledged enqueue is committed when it returns (another handle,
//! with its own connections, reads it at once), none is lost or doubled, and a
//! unique key is still held by exactly one job when its duplicates arrive in
//! the same shared commit.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use jobq::{Durability, NewJob, Queue, QueueOptions, Unique};
use serde_json::json;

const THREADS: usize = 8;
const PER_THREAD: usize = 150;

fn open(path: &std::path::Path) -> Queue {
    Queue::open_with(QueueOptions::new(path).durability(Durability::Full)).unwrap()
}

#[test]
fn concurrent_enqueues_are_each_committed_when_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("group.db");
    let q = open(&db);
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (q, reader, barrier) = (q.clone(), open(&db), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..PER_THREAD)
                    .map(|i| {
                        let job = q.enqueue(NewJob::new("g", json!([t, i]))).unwrap().job;
                        let stored = reader.get(job.id).expect("committed when it returned");
                        assert_eq!(stored.payload, json!([t, i]));
                        job.id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), THREADS * PER_THREAD);
    drop(q);
    assert_eq!(
        open(&db).stats().unwrap().total,
        (THREADS * PER_THREAD) as u64
    );
}

#[test]
fn duplicates_of_a_unique_job_in_one_shared_commit_make_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir.path().join("unique.db"));
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (q, barrier) = (q.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..20)
                    .map(|i| {
                        let job =
                            NewJob::new("u", json!({"n": i % 4})).unique(Unique::by_payload());
                        let e = q.enqueue(job).unwrap();
                        (i % 4, e.job.id, e.duplicate, t)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    for key in 0..4 {
        let of_key: Vec<_> = all.iter().filter(|e| e.0 == key).collect();
        let holders: HashSet<_> = of_key.iter().map(|e| e.1).collect();
        assert_eq!(holders.len(), 1, "one job holds key {key}");
        assert_eq!(
            of_key.iter().filter(|e| !e.2).count(),
            1,
            "one insert of key {key}"
        );
    }
    assert_eq!(q.stats().unwrap().total, 4);
}
