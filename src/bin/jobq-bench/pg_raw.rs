//! The raw PostgreSQL baselines: the least SQL for the same work, on the same
//! server and the same table (jobq's schema, made by opening a queue), UUID v7
//! text keys: one autocommit INSERT per enqueue; a drain loop that claims 100
//! with one `FOR UPDATE SKIP LOCKED` CTE feeding an `UPDATE ... RETURNING` and
//! completes the batch with one statement; a listener that claims on NOTIFY.
//! Also resetting the schema and filling a backlog fast.

use std::time::Instant;

use jobq::{Durability, Queue, QueueOptions};
use postgres::{Client, GenericClient, NoTls, Statement};

use crate::raw::now_ms;
use crate::util::per_second;
use crate::BenchResult;

const INSERT: &str = "INSERT INTO jobq.jobs (id, job_type, status, priority, payload, attempts, \
     max_attempts, next_retry, created_at, updated_at) \
     VALUES ($1, 'noop', 'pending', 0, 'null', 0, 5, $2, $2, $2)";

/// The same insert, and the wake-up, in one autocommit statement.
const INSERT_NOTIFY: &str = "WITH ins AS (INSERT INTO jobq.jobs (id, job_type, status, priority, \
     payload, attempts, max_attempts, next_retry, created_at, updated_at) \
     VALUES ($1, 'noop', 'pending', 0, 'null', 0, 5, $2, $2, $2) RETURNING 1) \
     SELECT pg_notify('jobq_raw', '') FROM ins";

const FILL: &str = "INSERT INTO jobq.jobs (id, job_type, status, priority, payload, attempts, \
     max_attempts, next_retry, created_at, updated_at) \
     SELECT id, 'noop', 'pending', 0, 'null', 0, 5, $2, $2, $2 FROM unnest($1::text[]) AS id";

const CLAIM: &str = "WITH next AS (SELECT id FROM jobq.jobs WHERE status = 'pending' \
       AND queue = 'default' AND next_retry <= $3 ORDER BY priority DESC, next_retry, id \
       LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE jobq.jobs j SET status = 'in_progress', attempts = j.attempts + 1, \
       lease_token = j.lease_token + 1, locked_by = $1, lease_expires_at = $2, \
       started_at = $3, updated_at = $3 \
     FROM next WHERE j.id = next.id RETURNING j.id, j.job_type, j.payload::text, j.lease_token";

const COMPLETE_ALL: &str = "UPDATE jobq.jobs j SET status = 'completed', result = 'null', \
     completed_at = $1, updated_at = $1, locked_by = NULL, lease_expires_at = NULL \
     FROM unnest($2::text[], $3::bigint[]) AS d(id, token) \
     WHERE j.id = d.id AND j.status = 'in_progress' AND j.lease_token = d.token";

/// A claimed row: id, job type, payload text, lease token.
pub type Claimed = (String, String, String, i64);

/// A client with `synchronous_commit` as jobq sets it for `durability`.
pub fn connect(url: &str, durability: Durability) -> BenchResult<Client> {
    let mut c = Client::connect(url, NoTls)?;
    let sync = match durability {
        Durability::Full => "on",
        Durability::Normal => "off",
    };
    c.batch_execute(&format!(
        "SET synchronous_commit = {sync}; SET application_name = 'jobq-bench raw'"
    ))?;
    Ok(c)
}

/// Drops the `jobq` schema and has a queue create it afresh (empty).
pub fn reset(url: &str) -> BenchResult<()> {
    let mut c = Client::connect(url, NoTls)?;
    c.batch_execute("DROP SCHEMA IF EXISTS jobq CASCADE")?;
    drop(Queue::open_with(QueueOptions::new(url))?);
    Ok(())
}

/// Makes the table's statistics current and, where allowed, flushes dirty
/// pages, so a backlog's writes do not land in the measurement that follows.
pub fn settle(url: &str) -> BenchResult<()> {
    let mut c = Client::connect(url, NoTls)?;
    c.batch_execute("VACUUM ANALYZE jobq.jobs")?;
    c.batch_execute("CHECKPOINT").ok(); // needs pg_checkpoint or superuser
    Ok(())
}

fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// On a fresh schema: `n` pending no-op jobs, 10,000 per statement.
pub fn backlog(url: &str, n: usize) -> BenchResult<()> {
    reset(url)?;
    let mut c = connect(url, Durability::Normal)?;
    let mut left = n;
    while left > 0 {
        let take = left.min(10_000);
        let ids: Vec<String> = (0..take).map(|_| new_id()).collect();
        c.execute(FILL, &[&ids, &now_ms()])?;
        left -= take;
    }
    settle(url)
}

/// Autocommit INSERTs, one per job, on a fresh schema: jobs per second.
pub fn insert_one(url: &str, durability: Durability, n: usize) -> BenchResult<f64> {
    reset(url)?;
    let mut c = connect(url, durability)?;
    let stmt = c.prepare(INSERT)?;
    let started = Instant::now();
    for _ in 0..n {
        c.execute(&stmt, &[&new_id(), &now_ms()])?;
    }
    Ok(per_second(n, started.elapsed()))
}

/// One insert with its wake-up (autocommit); returns the job's id.
pub fn insert_notify(c: &mut Client) -> BenchResult<String> {
    let id = new_id();
    c.query(INSERT_NOTIFY, &[&id, &now_ms()])?;
    Ok(id)
}

/// The claim and completion statements, prepared once per connection (as
/// jobq caches its own), so no loop pays a round trip to prepare.
pub struct Prepared {
    claim: Statement,
    complete: Statement,
}

impl Prepared {
    /// Prepares both on `c`.
    pub fn new(c: &mut Client) -> BenchResult<Prepared> {
        Ok(Prepared {
            claim: c.prepare(CLAIM)?,
            complete: c.prepare(COMPLETE_ALL)?,
        })
    }
}

/// One claim statement of up to `n` due jobs (autocommit).
pub fn claim(c: &mut impl GenericClient, p: &Prepared, n: i64) -> BenchResult<Vec<Claimed>> {
    let now = now_ms();
    let rows = c.query(&p.claim, &[&"raw", &(now + 300_000), &now, &n])?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Completes a claimed batch with one statement (autocommit).
pub fn complete_all(c: &mut impl GenericClient, p: &Prepared, jobs: &[Claimed]) -> BenchResult<()> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    let tokens: Vec<i64> = jobs.iter().map(|j| j.3).collect();
    let done = c.execute(&p.complete, &[&now_ms(), &ids, &tokens])?;
    if done != jobs.len() as u64 {
        return Err(format!("completed {done} of {} claimed jobs", jobs.len()).into());
    }
    Ok(())
}

/// claim(100) then one completion statement, until nothing is due, on a fresh
/// backlog of `n`: jobs per second.
pub fn claim_batch_noop(url: &str, durability: Durability, n: usize) -> BenchResult<f64> {
    backlog(url, n)?;
    let mut c = connect(url, durability)?;
    let p = Prepared::new(&mut c)?;
    let started = Instant::now();
    let mut done = 0;
    loop {
        let jobs = claim(&mut c, &p, 100)?;
        if jobs.is_empty() {
            break;
        }
        complete_all(&mut c, &p, &jobs)?;
        done += jobs.len();
    }
    if done != n {
        return Err(format!("raw drain ran {done} jobs, expected {n}").into());
    }
    Ok(per_second(done, started.elapsed()))
}

/// The bound of the pool's rule (never more claimed than `k` workers run):
/// one transaction per round that completes the previous `k` jobs with one
/// statement and claims the next `k`, on a fresh backlog of `n`: jobs per second.
pub fn rounds_loop(url: &str, durability: Durability, n: usize, k: i64) -> BenchResult<f64> {
    backlog(url, n)?;
    let mut c = connect(url, durability)?;
    let p = Prepared::new(&mut c)?;
    let started = Instant::now();
    let (mut held, mut done) = (Vec::new(), 0);
    loop {
        let mut tx = c.transaction()?;
        if !held.is_empty() {
            complete_all(&mut tx, &p, &held)?;
        }
        done += held.len();
        held = claim(&mut tx, &p, k)?;
        tx.commit()?;
        if held.is_empty() {
            return Ok(per_second(done, started.elapsed()));
        }
    }
}
