//! Moving a queue: pages of job rows in id order with every column, a batch of
//! rows inserted exactly as given in one statement (`unnest` of one array per
//! column), and the token, queue-settings and schedule rows.

use postgres::Row;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::row::{job_columns, job_from_row};
use crate::transfer::{QueueRecord, ScheduleRecord, Settings, TokenRecord};

const PAGE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobq.jobs WHERE id > $1 ORDER BY id LIMIT $2"
);

const INSERT_JOBS: &str = "INSERT INTO jobq.jobs (id, job_type, status, priority, payload, \
     result, attempts, max_attempts, next_retry, error_message, error_context, entity_type, \
     entity_id, owner, created_at, updated_at, started_at, completed_at, locked_by, \
     lease_expires_at, lease_token, cancel_requested, progress, backoff, queue, snoozes, \
     unique_key, unique_states, schedule, fire_time) \
     SELECT id, job_type, status, priority, payload::json, result::json, attempts, \
     max_attempts, next_retry, error_message, error_context::json, entity_type, entity_id, \
     owner, created_at, updated_at, started_at, completed_at, locked_by, lease_expires_at, \
     lease_token, cancel_requested, progress::json, backoff, queue, snoozes, unique_key, \
     unique_states, schedule, fire_time \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::text[], \
     $7::int4[], $8::int4[], $9::int8[], $10::text[], $11::text[], $12::text[], $13::text[], \
     $14::text[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::text[], \
     $20::int8[], $21::int8[], $22::bool[], $23::text[], $24::text[], $25::text[], \
     $26::int4[], $27::bytea[], $28::int8[], $29::text[], $30::int8[]) \
     AS t(id, job_type, status, priority, payload, result, attempts, max_attempts, \
     next_retry, error_message, error_context, entity_type, entity_id, owner, created_at, \
     updated_at, started_at, completed_at, locked_by, lease_expires_at, lease_token, \
     cancel_requested, progress, backoff, queue, snoozes, unique_key, unique_states, \
     schedule, fire_time)";

const TOKENS: &str = "SELECT id, \"user\", is_admin, token_hash, created_at, revoked_at \
     FROM jobq.api_tokens";

const QUEUES: &str = "SELECT name, paused, paused_until, concurrency, rate_count, \
     rate_period_ms, updated_at FROM jobq.queues";

const SCHEDULES: &str = "SELECT name, last_fire_at, last_job_id, updated_at FROM jobq.schedules";

const INSERT_TOKEN: &str = "INSERT INTO jobq.api_tokens (id, \"user\", is_admin, token_hash, \
     created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)";

/// New tokens get ids after the copied ones.
const TOKEN_IDS_ON: &str = "SELECT setval(pg_get_serial_sequence('jobq.api_tokens', 'id'), \
     coalesce(max(id), 1), max(id) IS NOT NULL) FROM jobq.api_tokens";

const INSERT_QUEUE: &str = "INSERT INTO jobq.queues (name, paused, paused_until, concurrency, \
     rate_count, rate_period_ms, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const INSERT_SCHEDULE: &str = "INSERT INTO jobq.schedules (name, last_fire_at, last_job_id, \
     updated_at) VALUES ($1, $2, $3, $4)";

/// Up to `n` jobs after `after` in id order (ids are text in byte order).
pub(crate) fn page(c: &mut Conn, after: Option<JobId>, n: usize) -> Result<Vec<Job>> {
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let rows = c.query("export jobs", PAGE, &[&after, &n])?;
    Ok(rows.iter().map(job_from_row).collect())
}

/// `n` as PostgreSQL's `integer`; a larger count (possible only in a file
/// written before [`crate::MAX_ATTEMPTS`]) is refused, never cut down.
fn i32_of(field: &'static str, id: JobId, n: u32) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Invalid {
        field,
        reason: format!("job {id}: {n} is more than PostgreSQL stores (2147483647)"),
    })
}

fn ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.0)
}

fn json(v: Option<&serde_json::Value>) -> Option<String> {
    v.map(serde_json::Value::to_string)
}

/// One array per column of `jobs`.
#[derive(Default)]
struct Columns {
    text: [Vec<Option<String>>; 15],
    int4: [Vec<i32>; 4],
    int8: [Vec<Option<i64>>; 9],
    cancel: Vec<bool>,
    key: Vec<Option<Vec<u8>>>,
}

impl Columns {
    fn of(jobs: &[Job]) -> Result<Columns> {
        let mut c = Columns::default();
        for j in jobs {
            let texts = [
                Some(j.id.to_string()),
                Some(j.job_type.clone()),
                Some(j.status.as_str().to_string()),
                Some(j.payload.to_string()),
                json(j.result.as_ref()),
                j.error_message.clone(),
                json(j.error_context.as_ref()),
                j.entity_type.clone(),
                j.entity_id.clone(),
                j.owner.clone(),
                j.locked_by.clone(),
                json(j.progress.as_ref()),
                j.backoff.as_ref().map(crate::retry::Backoff::to_stored),
                Some(j.queue.clone()),
                j.schedule.clone(),
            ];
            let int4 = [
                j.priority,
                i32_of("attempts", j.id, j.attempts)?,
                i32_of("max_attempts", j.id, j.max_attempts)?,
                i32_of("snoozes", j.id, j.snoozes)?,
            ];
            let int8 = [
                Some(j.next_retry.0),
                Some(j.created_at.0),
                Some(j.updated_at.0),
                ms(j.started_at),
                ms(j.completed_at),
                ms(j.lease_expires_at),
                Some(j.lease_token),
                j.unique.as_ref().map(|k| k.states.bits()),
                ms(j.fire_time),
            ];
            for (col, v) in c.text.iter_mut().zip(texts) {
                col.push(v);
            }
            for (col, v) in c.int4.iter_mut().zip(int4) {
                col.push(v);
            }
            for (col, v) in c.int8.iter_mut().zip(int8) {
                col.push(v);
            }
            c.cancel.push(j.cancel_requested);
            c.key.push(j.unique.as_ref().map(|k| k.key.clone()));
        }
        Ok(c)
    }
}

/// Inserts `jobs` with every column as given: one statement, in the caller's transaction.
pub(crate) fn insert_jobs(c: &mut Conn, jobs: &[Job]) -> Result<()> {
    let k = Columns::of(jobs)?;
    let (t, i, l) = (&k.text, &k.int4, &k.int8);
    c.execute(
        "import jobs",
        INSERT_JOBS,
        &[
            &t[0], &t[1], &t[2], &i[0], &t[3], &t[4], &i[1], &i[2], &l[0], &t[5], &t[6], &t[7],
            &t[8], &t[9], &l[1], &l[2], &l[3], &l[4], &t[10], &l[5], &l[6], &k.cancel, &t[11],
            &t[12], &t[13], &i[3], &k.key, &l[7], &t[14], &l[8],
        ],
    )?;
    Ok(())
}

fn token(r: &Row) -> TokenRecord {
    TokenRecord {
        id: r.get(0),
        user: r.get(1),
        admin: r.get(2),
        hash: r.get(3),
        created_at: r.get(4),
        revoked_at: r.get(5),
    }
}

fn queue(r: &Row) -> QueueRecord {
    QueueRecord {
        name: r.get(0),
        paused: r.get(1),
        paused_until: r.get(2),
        concurrency: r.get::<_, Option<i32>>(3).map(i64::from),
        rate_count: r.get::<_, Option<i32>>(4).map(i64::from),
        rate_period_ms: r.get(5),
        updated_at: r.get(6),
    }
}

fn schedule(r: &Row) -> ScheduleRecord {
    ScheduleRecord {
        name: r.get(0),
        last_fire_at: r.get(1),
        last_job_id: r.get(2),
        updated_at: r.get(3),
    }
}

/// Every token, queue-settings and schedule row.
pub(crate) fn settings(c: &mut Conn) -> Result<Settings> {
    let op = "export settings";
    Ok(Settings {
        tokens: c.query(op, TOKENS, &[])?.iter().map(token).collect(),
        queues: c.query(op, QUEUES, &[])?.iter().map(queue).collect(),
        schedules: c.query(op, SCHEDULES, &[])?.iter().map(schedule).collect(),
    }
    .sorted())
}

/// A queue's limit as PostgreSQL's `integer`; a larger one (possible only
/// in a file written before [`crate::MAX_CONCURRENCY`]) is refused.
fn int4(field: &'static str, queue: &str, n: Option<i64>) -> Result<Option<i32>> {
    n.map(|n| {
        i32::try_from(n).map_err(|_| Error::Invalid {
            field,
            reason: format!("queue {queue}: {n} is more than PostgreSQL stores (2147483647)"),
        })
    })
    .transpose()
}

/// Inserts token, queue-settings and schedule rows as given, in the caller's transaction.
pub(crate) fn insert_settings(c: &mut Conn, s: &Settings) -> Result<()> {
    let op = "import settings";
    for t in &s.tokens {
        let p: [&(dyn postgres::types::ToSql + Sync); 6] = [
            &t.id,
            &t.user,
            &t.admin,
            &t.hash,
            &t.created_at,
            &t.revoked_at,
        ];
        c.execute(op, INSERT_TOKEN, &p)?;
    }
    c.query(op, TOKEN_IDS_ON, &[])?;
    for q in &s.queues {
        let conc = int4("concurrency", &q.name, q.concurrency)?;
        let rate = int4("rate_limit", &q.name, q.rate_count)?;
        let p: [&(dyn postgres::types::ToSql + Sync); 7] = [
            &q.name,
            &q.paused,
            &q.paused_until,
            &conc,
            &rate,
            &q.rate_period_ms,
            &q.updated_at,
        ];
        c.execute(op, INSERT_QUEUE, &p)?;
    }
    for sc in &s.schedules {
        let p: [&(dyn postgres::types::ToSql + Sync); 4] =
            [&sc.name, &sc.last_fire_at, &sc.last_job_id, &sc.updated_at];
        c.execute(op, INSERT_SCHEDULE, &p)?;
    }
    Ok(())
}
