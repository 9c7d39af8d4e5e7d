//! PostgreSQL only: the migrations build exactly `schema_pg.sql`; processes
//! that open an empty or old database at once migrate it once; passwords stay
//! out of errors; wake-ups cross processes through LISTEN/NOTIFY.

use std::time::Duration;

use jobq::{NewJob, Queue, QueueOptions, Registry, WorkerConfig, WorkerPool};
use serde_json::json;

use crate::pg::TestDb;

/// The shape of the `jobq` schema: columns, indexes, constraints, table options.
fn shape(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let queries = [
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
         || ' ' || coalesce(column_default, '-') || ' ' || coalesce(collation_name, '-') \
         FROM information_schema.columns WHERE table_schema = 'jobq' \
         AND table_name <> 'schema_version'",
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'jobq'",
        "SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = 'jobq'::regnamespace",
        "SELECT relname || ' ' || coalesce(array_to_string(reloptions, ','), '-') FROM pg_class \
         WHERE relnamespace = 'jobq'::regnamespace AND relkind = 'r' AND relname <> 'schema_version'",
    ];
    let mut out: Vec<String> = queries
        .iter()
        .flat_map(|q| c.query(*q, &[]).unwrap())
        .map(|r| r.get::<_, String>(0))
        .collect();
    out.sort();
    out
}

fn version(url: &str) -> i32 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one("SELECT version FROM jobq.schema_version", &[])
        .unwrap()
        .get(0)
}

#[test]
fn migrations_build_exactly_schema_pg_sql() {
    let (Some(migrated), Some(from_file)) = (TestDb::new("schema"), TestDb::new("schema")) else {
        return;
    };
    Queue::open(&migrated.url).unwrap();
    let mut c = postgres::Client::connect(&from_file.url, postgres::NoTls).unwrap();
    c.batch_execute(include_str!("../../schema_pg.sql"))
        .unwrap();
    assert_eq!(shape(&migrated.url), shape(&from_file.url));
    let v = version(&migrated.url);
    assert!(include_str!("../../schema_pg.sql").contains(&format!("jobq.schema_version = {v})")));
}

#[test]
fn processes_opening_an_old_database_at_once_upgrade_it_once() {
    let Some(db) = TestDb::new("upgrade") else {
        return;
    };
    jobq::postgres_schema_to(&db.url, 1).unwrap();
    assert_eq!(version(&db.url), 1);
    let opened: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || Queue::open(&url).map(|_| ()))
        })
        .collect();
    for t in opened {
        t.join().unwrap().expect("every opener succeeds");
    }
    let q = Queue::open(&db.url).unwrap();
    let job = q
        .enqueue(NewJob::new("t", json!(1)).queue("after"))
        .unwrap();
    assert_eq!(q.get(job.id).unwrap().queue, "after");
    let Some(fresh) = TestDb::new("upgrade") else {
        return;
    };
    Queue::open(&fresh.url).unwrap();
    assert_eq!(shape(&db.url), shape(&fresh.url), "upgraded = created");
}

#[test]
fn a_password_never_shows_in_errors_or_debug_output() {
    let Some(db) = TestDb::new("password") else {
        return;
    };
    // A wrong port: the open fails; its error names the URL without the secret.
    let url = "postgres://app:hunter2secret@127.0.0.1:1/nope";
    let err =
        Queue::open_with(QueueOptions::new(url).busy_timeout(Duration::from_secs(1))).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2secret"), "{shown}");
    assert!(shown.contains("app:***@127.0.0.1:1/nope"), "{shown}");
    let opts = QueueOptions::new(url);
    assert!(!format!("{opts:?}").contains("hunter2secret"));
    let q = Queue::open(&db.url).unwrap();
    assert!(!format!("{q:?}").contains("hunter2"));
}

/// A server that answers the open with an error (no such database, no such
/// role) fails the open at once, saying the server's reason, not after the
/// pool's wait with only "db error"; so does a URL with no host to reach.
#[test]
fn an_open_the_server_refuses_fails_at_once_with_its_reason() {
    let Some(c) = crate::pg::cluster() else {
        return;
    };
    let wait = Duration::from_secs(20);
    let missing = c.url("no_such_database_here");
    let role = missing.replace("postgres://postgres@", "postgres://nobody_here@");
    for (url, words) in [
        (missing.as_str(), "does not exist"),
        (role.as_str(), "nobody_here"),
        ("postgres://%zz@/x", "invalid"),
    ] {
        let started = std::time::Instant::now();
        let err = Queue::open_with(QueueOptions::new(url).busy_timeout(wait)).unwrap_err();
        let text = err.to_string();
        assert!(
            started.elapsed() < wait / 2,
            "{url}: waited {:?}",
            started.elapsed()
        );
        assert!(text.contains(words), "{url}: {text}");
        assert!(!text.ends_with("db error"), "{url}: {text}");
    }
}

/// A one-worker pool of job type `t` on `url` that polls once a minute: only
/// a notification wakes it sooner.
fn idle_pool(url: &str) -> WorkerPool {
    let mut reg = Registry::new();
    reg.register("t", |_: &jobq::JobContext, _| Ok(json!("ran")));
    let cfg = WorkerConfig {
        workers: 1,
        poll_interval: Duration::from_secs(60),
        ..WorkerConfig::default()
    };
    WorkerPool::start(Queue::open(url).unwrap(), reg, cfg).unwrap()
}

/// A job of type `t` with payload `n`, due in an hour and then cancelled:
/// notified when enqueued, nothing for a pool to start, and retryable.
fn cancelled_for_an_hour(q: &Queue, n: i64) -> jobq::Job {
    let job = NewJob::new("t", json!(n)).delay(Duration::from_secs(3600));
    let job = q.enqueue(job).unwrap();
    q.cancel(job.id).unwrap();
    job.job
}

/// A transaction holding the row lock of job `id` until it ends.
fn row_locked(client: &mut postgres::Client, id: jobq::JobId) -> postgres::Transaction<'_> {
    let mut lock = client.transaction().unwrap();
    lock.execute(
        "SELECT 1 FROM jobq.jobs WHERE id = $1 FOR UPDATE",
        &[&id.to_string()],
    )
    .unwrap();
    lock
}

fn completed(q: &Queue, id: jobq::JobId) -> bool {
    q.get(id).unwrap().status == jobq::JobStatus::Completed
}

/// A job enqueued through another handle (another process's view) starts at
/// once: the pool polls only once a minute, so only the notification can wake it.
#[test]
fn an_enqueue_elsewhere_wakes_an_idle_pool_through_listen_notify() {
    let Some(db) = TestDb::new("notify") else {
        return;
    };
    let elsewhere = Queue::open(&db.url).unwrap();
    let done = |id| completed(&elsewhere, id);
    // The first job is there at start; the round that writes its completion
    // finds nothing more, and the pool waits.
    let first = elsewhere.enqueue(NewJob::new("t", json!(1))).unwrap();
    let pool = idle_pool(&db.url);
    crate::util::wait_for("the first job", Duration::from_secs(20), || done(first.id));
    let job = elsewhere.enqueue(NewJob::new("t", json!(2))).unwrap();
    crate::util::wait_for("the job to run", Duration::from_secs(20), || done(job.id));
    pool.shutdown(Duration::from_secs(5));
}

/// An idle pool (polling once a minute) is woken for every committed enqueue
/// from another handle, however the enqueues around it fare: one right after
/// a change that failed (it sent no notification), a retry held up by a
/// lock until well after the notification sent just before it, and one that
/// committed relying on a change still running, which then failed.
#[test]
fn enqueues_beside_failed_or_slow_changes_still_wake_an_idle_pool() {
    let Some(db) = TestDb::new("notify_gaps") else {
        return;
    };
    let elsewhere = Queue::open(&db.url).unwrap();
    let done = |id| completed(&elsewhere, id);
    let pool = idle_pool(&db.url);
    // The listener is up once a notified job runs.
    let first = elsewhere.enqueue(NewJob::new("t", json!(1))).unwrap();
    crate::util::wait_for("the first job", Duration::from_secs(20), || done(first.id));
    // Past the listener's second wake-up after that notification.
    std::thread::sleep(Duration::from_millis(200));

    // A retry that fails sends no notification; the enqueue right after it must.
    assert!(elsewhere.retry(jobq::JobId::new()).is_err());
    let after_failure = elsewhere.enqueue(NewJob::new("t", json!(2))).unwrap();
    crate::util::wait_for(
        "the job after a failed change",
        Duration::from_secs(20),
        || done(after_failure.id),
    );
    std::thread::sleep(Duration::from_millis(200));

    // A notified enqueue (of a job due in an hour: the pool wakes and finds
    // nothing), then a retry that starts within the debounce but commits
    // 300 ms later, behind a lock on its row, after the listener's second
    // wake-up.
    let held = cancelled_for_an_hour(&elsewhere, 3);
    std::thread::sleep(Duration::from_millis(200));
    let mut locker = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let lock = row_locked(&mut locker, held.id);
    let later = elsewhere.enqueue(NewJob::new("t", json!(4)).delay(Duration::from_secs(3600)));
    later.unwrap();
    std::thread::scope(|s| {
        let retry = s.spawn(|| elsewhere.retry(held.id).unwrap());
        std::thread::sleep(Duration::from_millis(300));
        lock.commit().unwrap();
        retry.join().unwrap();
    });
    crate::util::wait_for("the slow retry's job", Duration::from_secs(20), || {
        done(held.id)
    });
    std::thread::sleep(Duration::from_millis(200));

    // A retry that sets out to notify, held by a lock; an enqueue within its
    // debounce commits meanwhile relying on it; then the retry fails (its job
    // was deleted): the enqueue's job must still wake the pool.
    let doomed = cancelled_for_an_hour(&elsewhere, 5);
    std::thread::sleep(Duration::from_millis(200));
    let mut lock = row_locked(&mut locker, doomed.id);
    let doomed_id = doomed.id.to_string();
    let relying = std::thread::scope(|s| {
        let retry = s.spawn(|| elsewhere.retry(doomed.id));
        std::thread::sleep(Duration::from_millis(5));
        let relying = elsewhere.enqueue(NewJob::new("t", json!(6))).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        lock.execute("DELETE FROM jobq.jobs WHERE id = $1", &[&doomed_id])
            .unwrap();
        lock.commit().unwrap();
        assert!(retry.join().unwrap().is_err(), "its job is gone");
        relying
    });
    crate::util::wait_for(
        "the job that relied on a failed change",
        Duration::from_secs(20),
        || done(relying.id),
    );
    pool.shutdown(Duration::from_secs(5));
}

/// A pool whose listener connects between another handle's notified enqueue
/// and a second enqueue the debounce leaves to that notification (which the
/// listener never got) still starts the second job at once.
#[test]
fn a_listener_connecting_between_a_notification_and_a_covered_enqueue_still_wakes() {
    let Some(db) = TestDb::new("notify_connect") else {
        return;
    };
    let elsewhere = Queue::open(&db.url).unwrap();
    // Notified, due in an hour: nothing for the pool to start.
    let covering = NewJob::new("t", json!(1)).delay(Duration::from_secs(3600));
    elsewhere.enqueue(covering).unwrap();
    let pool = idle_pool(&db.url);
    // Within the debounce of the first enqueue, most often after the
    // listener's first look (it connects within a few ms of the start).
    std::thread::sleep(Duration::from_millis(8));
    let covered = elsewhere.enqueue(NewJob::new("t", json!(2))).unwrap();
    crate::util::wait_for("the covered job", Duration::from_secs(20), || {
        completed(&elsewhere, covered.id)
    });
    pool.shutdown(Duration::from_secs(5));
}

/// A job whose lease expired, recovered by another process (any pool's
/// supervisor recovers every type's jobs) and due at once (a `0s` backoff),
/// wakes the idle pool that serves it.
#[test]
fn a_recovery_elsewhere_wakes_an_idle_pool() {
    let Some(db) = TestDb::new("notify_recover") else {
        return;
    };
    let mut catalog = jobq::Catalog::any_type();
    let now = jobq::Backoff::new(vec![Duration::ZERO]).unwrap();
    catalog
        .declare(jobq::JobType::new("t").backoff(now))
        .unwrap();
    let elsewhere = Queue::open_with(QueueOptions::new(db.url.as_str()).catalog(catalog)).unwrap();
    let lost = elsewhere.enqueue(NewJob::new("t", json!(1))).unwrap();
    let claimed = elsewhere
        .claim("ghost", None, 1, Duration::from_secs(3))
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mut reg = Registry::new();
    reg.register("t", |_: &jobq::JobContext, _| Ok(json!("ran")));
    let cfg = WorkerConfig {
        workers: 1,
        poll_interval: Duration::from_secs(60),
        recovery_interval: Duration::from_secs(600),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(Queue::open(&db.url).unwrap(), reg, cfg).unwrap();
    // The listener is up once a notified job runs.
    let sentinel = elsewhere.enqueue(NewJob::new("t", json!(2))).unwrap();
    crate::util::wait_for("the sentinel", Duration::from_secs(20), || {
        completed(&elsewhere, sentinel.id)
    });
    crate::util::wait_for("the lease to expire", Duration::from_secs(20), || {
        elsewhere.recover_expired().unwrap() == 1
    });
    crate::util::wait_for("the recovered job", Duration::from_secs(20), || {
        completed(&elsewhere, lost.id)
    });
    pool.shutdown(Duration::from_secs(5));
}
