//! Races that SQLite's single writer rules out and PostgreSQL's concurrent
//! transactions do not: each test runs on both backends (the last on
//! PostgreSQL alone) and failed on PostgreSQL before its fix.

use crate::backends::{both, Db};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq::{Durability, Error, JobStatus, NewJob, Queue, Unique};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(300);

both! {
fn a_stale_and_a_live_entry_of_one_job_keep_their_own_outcomes(db) {
    let q = db.open(|o| o.durability(Durability::Normal));
    let job = q.enqueue(NewJob::new("t", json!(null))).unwrap();
    let first = q.claim("w1", None, 1, LEASE).unwrap().pop().unwrap();
    assert_eq!(q.release(first.id, first.lease_token).unwrap(), JobStatus::Pending);
    let second = q.claim("w1", None, 1, LEASE).unwrap().pop().unwrap();
    assert_eq!(second.id, job.id);
    let (stale, live) = (first.lease_token, second.lease_token);
    assert!(stale < live);

    // Heartbeat: the stale token is refused, the live one renewed.
    let beats = q.heartbeat_many(&[(job.id, stale), (job.id, live)], LEASE).unwrap();
    eprintln!("heartbeat outcomes: {beats:?}");
    assert!(matches!(beats[0], Err(Error::LeaseLost { .. })), "stale heartbeat: {:?}", beats[0]);
    assert!(matches!(beats[1], Ok(false)), "live heartbeat: {:?}", beats[1]);

    // Completion: the stale token is refused, the live one completes.
    let done = q
        .complete_many(&[(job.id, stale, json!("old")), (job.id, live, json!("new"))])
        .unwrap();
    eprintln!("complete outcomes: {done:?}");
    assert!(matches!(done[0], Err(Error::LeaseLost { .. })), "stale completion: {:?}", done[0]);
    assert!(matches!(done[1], Ok(JobStatus::Completed)), "live completion: {:?}", done[1]);
    assert_eq!(q.get(job.id).unwrap().result, Some(json!("new")));
}
}

both! {
fn enqueueing_a_unique_job_never_errors_while_its_holder_finishes(db) {
    // One thread keeps enqueueing, claiming and completing a unique job (the
    // key is free once completed); another enqueues the same job meanwhile.
    // Every enqueue must answer: inserted, or the duplicate holder.
    drop(db.open(|o| o.durability(Durability::Normal)));
    let a = db.open(|o| o.durability(Durability::Normal));
    let b = db.open(|o| o.durability(Durability::Normal));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let rule = || Unique::by_key("k");
    let cycler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < until && n < 4000 {
                let _ = a.enqueue(NewJob::new("u", json!(1)).unique(rule()));
                for j in a.claim("w", None, 10, LEASE).unwrap() {
                    a.complete(j.id, j.lease_token, &json!(null)).unwrap();
                    n += 1;
                }
            }
            stop.store(true, Ordering::SeqCst);
            n
        })
    };
    let mut first_error = None;
    let mut tries = 0;
    while !stop.load(Ordering::SeqCst) {
        tries += 1;
        if let Err(e) = b.enqueue(NewJob::new("u", json!(1)).unique(rule())) {
            errors.fetch_add(1, Ordering::SeqCst);
            first_error.get_or_insert(e.to_string());
        }
    }
    let cycles = cycler.join().unwrap();
    let errs = errors.load(Ordering::SeqCst);
    eprintln!("{cycles} cycles, {tries} concurrent enqueues, {errs} errors; first: {first_error:?}");
    assert_eq!(errs, 0, "an enqueue of a unique job failed: {first_error:?}");
}
}

both! {
fn no_job_of_a_queue_starts_after_pause_queue_returned(db) {
    // Claimers take jobs of queue "p" one at a time and never finish them.
    // After pause_queue returns, the number of running jobs must stay put
    // until the queue is resumed.
    let admin = db.open(|o| o.durability(Durability::Normal));
    for _ in 0..6 {
        let batch: Vec<NewJob> = (0..1000)
            .map(|_| NewJob::new("t", json!(null)).queue("p"))
            .collect();
        admin.enqueue_many(batch).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let claimers: Vec<_> = (0..3)
        .map(|i| {
            let q = db.open(|o| o.durability(Durability::Normal));
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut claims = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    claims += q.claim(&format!("w{i}"), None, 1, LEASE).unwrap().len();
                }
                claims
            })
        })
        .collect();
    let running = |q: &Queue| q.queue_info("p").unwrap().running;
    let mut late = Vec::new();
    let mut pauses = 0;
    while pauses < 300 {
        pauses += 1;
        if admin.pause_queue("p", None).unwrap().pending == 0 {
            break;
        }
        let at_pause = running(&admin);
        std::thread::sleep(Duration::from_millis(3));
        let later = running(&admin);
        if later > at_pause {
            late.push(later - at_pause);
        }
        admin.resume_queue("p").unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::SeqCst);
    let claims: usize = claimers.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{claims} jobs claimed, {pauses} pauses; after which jobs still started: {} (jobs: {late:?})", late.len());
    assert!(late.is_empty(), "jobs of a paused queue started after pause_queue returned");
}
}

/// PostgreSQL only: the claim relies on READ COMMITTED (it counts running jobs
/// after taking the queue's row lock); a database whose default isolation is
/// REPEATABLE READ counts from the snapshot taken before the lock.
#[test]
fn a_concurrency_limit_holds_under_a_repeatable_read_default() {
    let Some(db) =
        Db::postgres("store_races::a_concurrency_limit_holds_under_a_repeatable_read_default")
    else {
        return;
    };
    {
        let mut c = postgres::Client::connect(&db.location(), postgres::NoTls).unwrap();
        let name: String = c
            .query_one("SELECT current_database()", &[])
            .unwrap()
            .get(0);
        c.batch_execute(&format!(
            "ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'"
        ))
        .unwrap();
    }
    let admin = db.open(|o| o.durability(Durability::Normal));
    for t in ["a", "b"] {
        let batch: Vec<NewJob> = (0..300)
            .map(|_| NewJob::new(t, json!(null)).queue("lim"))
            .collect();
        admin.enqueue_many(batch).unwrap();
    }
    admin
        .set_queue_limits(
            "lim",
            jobq::LimitsChange {
                concurrency: Some(Some(1)),
                rate_limit: None,
            },
        )
        .unwrap();
    let held = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|t| {
            let q = db.open(|o| o.durability(Durability::Normal));
            let (held, most) = (held.clone(), most.clone());
            std::thread::spawn(move || {
                let types = [t.to_string()];
                let until = std::time::Instant::now() + Duration::from_secs(10);
                let mut done = 0;
                while std::time::Instant::now() < until && done < 300 {
                    let Ok(got) = q.claim(t, Some(&types), 1, LEASE) else {
                        continue;
                    };
                    for j in got {
                        let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(300));
                        held.fetch_sub(1, Ordering::SeqCst);
                        q.complete(j.id, j.lease_token, &json!(null)).unwrap();
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let done: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let most = most.load(Ordering::SeqCst);
    eprintln!("completed {done:?}; most running at once: {most} (limit 1)");
    assert!(
        most <= 1,
        "{most} jobs of a queue with concurrency 1 ran at once"
    );
}

/// Sets `setting` on the test database (new sessions see it).
fn set_on_database(db: &Db, setting: &str) {
    let mut admin = postgres::Client::connect(&db.location(), postgres::NoTls).unwrap();
    let name: String = admin
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!("ALTER DATABASE {name} SET {setting}"))
        .unwrap();
}

/// PostgreSQL only. Regression: a claim whose wait for the queue settings'
/// lock was cut by `lock_timeout` (a pause held the lock) returned its client
/// to the pool inside the aborted transaction, and every later call on it
/// failed ("current transaction is aborted").
#[test]
fn a_claim_whose_lock_wait_fails_leaves_its_client_usable() {
    let Some(db) =
        Db::postgres("store_races::a_claim_whose_lock_wait_fails_leaves_its_client_usable")
    else {
        return;
    };
    drop(db.open(|o| o.durability(Durability::Normal)));
    set_on_database(&db, "lock_timeout = '300ms'");
    let q = db.open(|o| o.durability(Durability::Normal));
    q.enqueue(NewJob::new("t", json!(null))).unwrap();
    // Holds the settings lock exclusively, as a pause does while it commits.
    let mut pauser = postgres::Client::connect(&db.location(), postgres::NoTls).unwrap();
    pauser
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(5354571397626593282)")
        .unwrap();
    let first = q.claim("w", None, 1, LEASE);
    assert!(
        matches!(first, Err(Error::Busy { .. })),
        "a claim while the lock is held: {first:?}"
    );
    pauser.batch_execute("COMMIT").unwrap();
    let got = q.claim("w", None, 1, LEASE).unwrap();
    assert_eq!(got.len(), 1);
    q.stats().unwrap();
}

/// PostgreSQL only. Regression: a session the server ended for idling
/// (`idle_session_timeout`) was reported as a lasting database error, which
/// now ends a drain; it is a fresh client's turn instead.
#[test]
fn a_session_ended_for_idling_is_replaced_not_an_error() {
    let Some(db) = Db::postgres("store_races::a_session_ended_for_idling_is_replaced_not_an_error")
    else {
        return;
    };
    drop(db.open(|o| o.durability(Durability::Normal)));
    set_on_database(&db, "idle_session_timeout = '500ms'");
    let q = db.open(|o| o.durability(Durability::Normal));
    q.stats().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    if let Err(e) = q.stats() {
        assert!(
            e.is_transient(),
            "an idled-out session is reported as {e:?}"
        );
    }
}
