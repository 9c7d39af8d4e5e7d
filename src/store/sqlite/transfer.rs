//! Moving a queue: pages of job rows in id order with every column, inserts of
//! rows exactly as given, and the token, queue-settings and schedule rows. Ids
//! are bound and read through [`JobId`]'s own `ToSql`/`FromSql` (via
//! [`job_from_row`]), the one place the id's stored form is decided.

use rusqlite::{params, Connection, Row};

use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::store::sqlite::id::key as stored_id;
use crate::store::sqlite::row::{job_columns, job_from_row};
use crate::transfer::{QueueRecord, ScheduleRecord, Settings, TokenRecord};

const FIRST_PAGE: &str = concat!("SELECT ", job_columns!(), " FROM jobs ORDER BY id LIMIT ?1");

pub(crate) const NEXT_PAGE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2"
);

const INSERT_JOB: &str = concat!(
    "INSERT INTO jobs (",
    job_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
     ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)"
);

const TOKENS: &str =
    "SELECT id, user, is_admin, token_hash, created_at, revoked_at FROM api_tokens";

const QUEUES: &str = "SELECT name, paused, paused_until, concurrency, rate_count, \
     rate_period_ms, updated_at FROM queues";

const SCHEDULES: &str = "SELECT name, last_fire_at, last_job_id, updated_at FROM schedules";

const INSERT_TOKEN: &str = "INSERT INTO api_tokens (id, user, is_admin, token_hash, created_at, \
     revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const INSERT_QUEUE: &str = "INSERT INTO queues (name, paused, paused_until, concurrency, \
     rate_count, rate_period_ms, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const INSERT_SCHEDULE: &str = "INSERT INTO schedules (name, last_fire_at, last_job_id, \
     updated_at) VALUES (?1, ?2, ?3, ?4)";

fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::db(op)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Up to `n` jobs after `after` in id order.
pub(crate) fn page(conn: &Connection, after: Option<JobId>, n: usize) -> Result<Vec<Job>> {
    let op = "export jobs";
    let mut stmt = conn
        .prepare_cached(if after.is_some() {
            NEXT_PAGE
        } else {
            FIRST_PAGE
        })
        .map_err(db(op))?;
    let rows = match after {
        Some(id) => stmt.query_map(params![stored_id(id), limit(n)], job_from_row),
        None => stmt.query_map(params![limit(n)], job_from_row),
    }
    .map_err(db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db(op))
}

/// Inserts `jobs` with every column as given, in the caller's transaction.
pub(crate) fn insert_jobs(conn: &Connection, jobs: &[Job]) -> Result<()> {
    let op = "import jobs";
    let mut stmt = conn.prepare_cached(INSERT_JOB).map_err(db(op))?;
    for j in jobs {
        let json = |v: Option<&serde_json::Value>| v.map(serde_json::Value::to_string);
        let backoff = j.backoff.as_ref().map(crate::retry::Backoff::to_stored);
        let key = j
            .unique
            .as_ref()
            .map(|k| (k.key.as_slice(), k.states.bits()));
        let ts = |t: Option<crate::clock::Timestamp>| t.map(|t| t.0);
        stmt.execute(params![
            stored_id(j.id),
            j.job_type,
            j.status,
            j.priority,
            j.payload.to_string(),
            json(j.result.as_ref()),
            j.attempts,
            j.max_attempts,
            j.next_retry.0,
            j.error_message,
            json(j.error_context.as_ref()),
            j.entity_type,
            j.entity_id,
            j.owner,
            j.created_at.0,
            j.updated_at.0,
            ts(j.started_at),
            ts(j.completed_at),
            j.locked_by,
            ts(j.lease_expires_at),
            j.lease_token,
            j.cancel_requested,
            json(j.progress.as_ref()),
            backoff,
            j.queue,
            j.snoozes,
            key.map(|k| k.0),
            key.map(|k| k.1),
            j.schedule,
            ts(j.fire_time),
        ])
        .map_err(db(op))?;
    }
    Ok(())
}

fn all<T>(
    conn: &Connection,
    sql: &'static str,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let op = "export settings";
    let mut stmt = conn.prepare_cached(sql).map_err(db(op))?;
    let rows = stmt.query_map([], f).map_err(db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db(op))
}

/// Every token, queue-settings and schedule row.
pub(crate) fn settings(conn: &Connection) -> Result<Settings> {
    let tokens = all(conn, TOKENS, |r| {
        Ok(TokenRecord {
            id: r.get(0)?,
            user: r.get(1)?,
            admin: r.get(2)?,
            hash: r.get(3)?,
            created_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })?;
    let queues = all(conn, QUEUES, |r| {
        Ok(QueueRecord {
            name: r.get(0)?,
            paused: r.get(1)?,
            paused_until: r.get(2)?,
            concurrency: r.get(3)?,
            rate_count: r.get(4)?,
            rate_period_ms: r.get(5)?,
            updated_at: r.get(6)?,
        })
    })?;
    let schedules = all(conn, SCHEDULES, |r| {
        Ok(ScheduleRecord {
            name: r.get(0)?,
            last_fire_at: r.get(1)?,
            last_job_id: r.get(2)?,
            updated_at: r.get(3)?,
        })
    })?;
    Ok(Settings {
        tokens,
        queues,
        schedules,
    }
    .sorted())
}

/// Inserts token, queue-settings and schedule rows as given, in the caller's transaction.
pub(crate) fn insert_settings(conn: &Connection, s: &Settings) -> Result<()> {
    let op = "import settings";
    let mut stmt = conn.prepare_cached(INSERT_TOKEN).map_err(db(op))?;
    for t in &s.tokens {
        let p = params![t.id, t.user, t.admin, t.hash, t.created_at, t.revoked_at];
        stmt.execute(p).map_err(db(op))?;
    }
    let mut stmt = conn.prepare_cached(INSERT_QUEUE).map_err(db(op))?;
    for q in &s.queues {
        let p = params![
            q.name,
            q.paused,
            q.paused_until,
            q.concurrency,
            q.rate_count,
            q.rate_period_ms,
            q.updated_at
        ];
        stmt.execute(p).map_err(db(op))?;
    }
    let mut stmt = conn.prepare_cached(INSERT_SCHEDULE).map_err(db(op))?;
    for sc in &s.schedules {
        let p = params![sc.name, sc.last_fire_at, sc.last_job_id, sc.updated_at];
        stmt.execute(p).map_err(db(op))?;
    }
    Ok(())
}
