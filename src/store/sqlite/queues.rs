//! Named queues: their stored settings (pause, limits), the queues that have
//! pending jobs, in-progress counts and the starts of rate-limited queues.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::queues::{LimitsChange, QueueInfo, QueueSettings, RateLimit};

const SETTINGS: &str = "SELECT name, paused, paused_until, concurrency, rate_count, \
     rate_period_ms FROM queues";

/// The first queue (in name order) with a pending job: one seek of
/// `jobs_claim`. [`NEXT_PENDING`] steps on from a name, so the queues with
/// pending jobs are found one seek each (a skip scan). Two plain statements,
/// not one recursive one: its temporary tables cost more than the steps
/// (measured: about 7 µs against 2 µs for one queue, each round).
const FIRST_PENDING: &str =
    "SELECT queue FROM jobs WHERE status = 'pending' ORDER BY queue LIMIT 1";

/// The next queue after `?1` with a pending job.
const NEXT_PENDING: &str =
    "SELECT queue FROM jobs WHERE status = 'pending' AND queue > ?1 ORDER BY queue LIMIT 1";

pub(crate) const RUNNING: &str =
    "SELECT count(*) FROM jobs WHERE status = 'in_progress' AND status != 'pending' AND queue = ?1";

const PENDING: &str = "SELECT count(*) FROM jobs WHERE status = 'pending' AND queue = ?1";

const STARTS_SINCE: &str = "SELECT count(*) FROM queue_starts WHERE queue = ?1 AND at > ?2";

const RECORD_START: &str = "INSERT INTO queue_starts (queue, at) VALUES (?1, ?2)";

const FORGET_STARTS: &str = "DELETE FROM queue_starts WHERE queue = ?1 AND at <= ?2";

/// One start of queue `?1` recorded at `?2`, by its rowid (the rows of a
/// queue and time are alike: any one of them will do).
const FORGET_START: &str = "DELETE FROM queue_starts WHERE rowid = \
     (SELECT rowid FROM queue_starts WHERE queue = ?1 AND at = ?2 LIMIT 1)";

const ENSURE: &str = "INSERT INTO queues (name, updated_at) VALUES (?1, ?2) \
     ON CONFLICT (name) DO NOTHING";

const SET_CONCURRENCY: &str = "UPDATE queues SET concurrency = ?2, updated_at = ?3 WHERE name = ?1";

const SET_RATE: &str = "UPDATE queues SET rate_count = ?2, rate_period_ms = ?3, updated_at = ?4 \
     WHERE name = ?1";

const PAUSE: &str =
    "UPDATE queues SET paused = 1, paused_until = ?2, updated_at = ?3 WHERE name = ?1";

const RESUME: &str =
    "UPDATE queues SET paused = 0, paused_until = NULL, updated_at = ?2 WHERE name = ?1";

pub(crate) const RUNNING_BY_QUEUE: &str =
    "SELECT queue, count(*) FROM jobs WHERE status = 'in_progress' AND status != 'pending' \
     GROUP BY queue";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::db(op)
}

/// Every stored queue's settings, by name.
pub(crate) fn settings(conn: &Connection) -> Result<BTreeMap<String, QueueSettings>> {
    let mut stmt = conn.prepare_cached(SETTINGS).map_err(db("queues"))?;
    let rows = stmt
        .query_map([], |r| {
            let name: String = r.get(0)?;
            let paused = r.get::<_, i64>(1)? != 0;
            let until: Option<i64> = r.get(2)?;
            let concurrency: Option<i64> = r.get(3)?;
            let rate: Option<(i64, i64)> = match (r.get(4)?, r.get(5)?) {
                (Some(c), Some(p)) => Some((c, p)),
                _ => None,
            };
            Ok((name, paused, until, concurrency, rate))
        })
        .map_err(db("queues"))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (name, paused, until, concurrency, rate) = row.map_err(db("queues"))?;
        let rate_limit = rate.and_then(|(c, p)| {
            let period = Duration::from_millis(u64::try_from(p).ok()?);
            RateLimit::new(u32::try_from(c).ok()?, period).ok()
        });
        let s = QueueSettings {
            concurrency: concurrency.and_then(|c| u32::try_from(c).ok()),
            rate_limit,
            paused: paused.then_some(until.map(Timestamp)),
        };
        out.insert(name, s);
    }
    Ok(out)
}

/// Every queue with a pending job, in name order, one seek each.
pub(crate) fn pending_queues(conn: &Connection) -> Result<Vec<String>> {
    let mut first = conn.prepare_cached(FIRST_PENDING).map_err(db("claim"))?;
    let mut next = conn.prepare_cached(NEXT_PENDING).map_err(db("claim"))?;
    let mut out = Vec::new();
    let mut found: Option<String> = first
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(db("claim"))?;
    while let Some(name) = found {
        found = next
            .query_row(params![name], |r| r.get(0))
            .optional()
            .map_err(db("claim"))?;
        out.push(name);
    }
    Ok(out)
}

fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql).map_err(db("queue counts"))?;
    let n: i64 = stmt
        .query_row(p, |r| r.get(0))
        .map_err(db("queue counts"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// How many more jobs of `queue` may start now under its limits (usize::MAX:
/// unlimited). Read inside the claim's transaction, so it is exact.
pub(crate) fn room(
    conn: &Connection,
    queue: &str,
    s: Option<&QueueSettings>,
    now: Timestamp,
) -> Result<usize> {
    let mut room = usize::MAX;
    let Some(s) = s else { return Ok(room) };
    if let Some(c) = s.concurrency {
        let running = count(conn, RUNNING, params![queue])?;
        room = room.min(usize::try_from(u64::from(c).saturating_sub(running)).unwrap_or(0));
    }
    if let Some(r) = s.rate_limit {
        let since = now.0.saturating_sub(ms(r.period));
        let started = count(conn, STARTS_SINCE, params![queue, since])?;
        let left = u64::from(r.count).saturating_sub(started);
        room = room.min(usize::try_from(left).unwrap_or(0));
    }
    Ok(room)
}

/// Records `n` starts of a rate-limited queue at `now` and forgets those that
/// slid out of its window twice over.
pub(crate) fn record_starts(
    conn: &Connection,
    queue: &str,
    limit: RateLimit,
    n: usize,
    now: Timestamp,
) -> Result<()> {
    let mut insert = conn.prepare_cached(RECORD_START).map_err(db("claim"))?;
    for _ in 0..n {
        insert.execute(params![queue, now.0]).map_err(db("claim"))?;
    }
    // Forget only what slid out of the window twice over: another process's
    // round may count with a `now` read before it waited for the write lock
    // (earlier than ours), and must still see the starts of its own window.
    let mut forget = conn.prepare_cached(FORGET_STARTS).map_err(db("claim"))?;
    forget
        .execute(params![
            queue,
            now.0.saturating_sub(ms(limit.period).saturating_mul(2))
        ])
        .map_err(db("claim"))?;
    Ok(())
}

/// Forgets one start of `queue` recorded at `at`: the claim of a reserved job
/// handed back unstarted recorded it (at its round's time), and the job did
/// not start. Nothing when there is none (the queue was not rate-limited at
/// the claim, or the start has slid out of the window and been forgotten):
/// a start recorded at another time is another claim's, and stays.
pub(crate) fn forget_start(conn: &Connection, queue: &str, at: Timestamp) -> Result<()> {
    let mut stmt = conn.prepare_cached(FORGET_START).map_err(db("give back"))?;
    stmt.execute(params![queue, at.0])
        .map_err(db("give back"))?;
    Ok(())
}

fn ensure(conn: &Connection, queue: &str, now: Timestamp) -> Result<()> {
    let mut stmt = conn.prepare_cached(ENSURE).map_err(db("queue settings"))?;
    stmt.execute(params![queue, now.0])
        .map_err(db("queue settings"))?;
    Ok(())
}

/// Changes a queue's limits (creating its row).
pub(crate) fn set_limits(
    conn: &Connection,
    queue: &str,
    change: LimitsChange,
    now: Timestamp,
) -> Result<()> {
    ensure(conn, queue, now)?;
    if let Some(c) = change.concurrency {
        let mut stmt = conn
            .prepare_cached(SET_CONCURRENCY)
            .map_err(db("queue settings"))?;
        stmt.execute(params![queue, c, now.0])
            .map_err(db("queue settings"))?;
    }
    if let Some(r) = change.rate_limit {
        let mut stmt = conn
            .prepare_cached(SET_RATE)
            .map_err(db("queue settings"))?;
        let (count, period) = (r.map(|r| r.count), r.map(|r| ms(r.period)));
        stmt.execute(params![queue, count, period, now.0])
            .map_err(db("queue settings"))?;
    }
    Ok(())
}

/// Pauses a queue until `until` (`None`: until resumed).
pub(crate) fn pause(
    conn: &Connection,
    queue: &str,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<()> {
    ensure(conn, queue, now)?;
    let mut stmt = conn.prepare_cached(PAUSE).map_err(db("pause queue"))?;
    stmt.execute(params![queue, until.map(|t| t.0), now.0])
        .map_err(db("pause queue"))?;
    Ok(())
}

/// Resumes a queue.
pub(crate) fn resume(conn: &Connection, queue: &str, now: Timestamp) -> Result<()> {
    ensure(conn, queue, now)?;
    let mut stmt = conn.prepare_cached(RESUME).map_err(db("resume queue"))?;
    stmt.execute(params![queue, now.0])
        .map_err(db("resume queue"))?;
    Ok(())
}

/// Every queue that is stored, has pending or running jobs, or is in `known`,
/// with its counts and settings at `now`, sorted by name.
pub(crate) fn infos(conn: &Connection, known: &[String], now: Timestamp) -> Result<Vec<QueueInfo>> {
    let settings = settings(conn)?;
    let mut running: BTreeMap<String, u64> = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare_cached(RUNNING_BY_QUEUE)
            .map_err(db("list queues"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(db("list queues"))?;
        for row in rows {
            let (q, n) = row.map_err(db("list queues"))?;
            running.insert(q, u64::try_from(n).unwrap_or(0));
        }
    }
    let mut names: std::collections::BTreeSet<String> = known.iter().cloned().collect();
    names.extend(settings.keys().cloned());
    names.extend(running.keys().cloned());
    names.extend(pending_queues(conn)?);
    names
        .into_iter()
        .map(|name| {
            let s = settings.get(&name).cloned().unwrap_or_default();
            Ok(QueueInfo {
                pending: count(conn, PENDING, params![name])?,
                running: running.get(&name).copied().unwrap_or(0),
                concurrency: s.concurrency,
                rate_limit: s.rate_limit,
                paused: s.is_paused(now),
                paused_until: s.paused.flatten().filter(|t| *t > now),
                name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;
    use crate::store::sqlite::id::key;

    #[test]
    fn pending_queues_are_the_queues_with_a_pending_job_in_name_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::sqlite::migrate::migrate(&mut conn).unwrap();
        assert!(pending_queues(&conn).unwrap().is_empty());
        // "" and "a b" only by hand (jobq refuses such names); "done" and
        // "running" hold no pending job.
        let rows = [
            ("zeta", "pending"),
            ("", "pending"),
            ("mail", "pending"),
            ("mail", "pending"),
            ("a b", "pending"),
            ("done", "completed"),
            ("running", "in_progress"),
            ("default", "pending"),
        ];
        for (queue, status) in rows {
            conn.execute(
                "INSERT INTO jobs (id, job_type, status, queue, next_retry, created_at, \
                 updated_at) VALUES (?1, 't', ?2, ?3, 0, 0, 0)",
                params![key(JobId::new()), status, queue],
            )
            .unwrap();
        }
        assert_eq!(
            pending_queues(&conn).unwrap(),
            ["", "a b", "default", "mail", "zeta"]
        );
    }

    /// The starts of `queue` recorded at each time, in time order.
    fn starts_of(conn: &Connection, queue: &str) -> Vec<i64> {
        let mut stmt = conn
            .prepare("SELECT at FROM queue_starts WHERE queue = ?1 ORDER BY at")
            .unwrap();
        let rows = stmt.query_map(params![queue], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn forgetting_a_start_deletes_one_row_of_that_queue_and_time_only() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::sqlite::migrate::migrate(&mut conn).unwrap();
        let limit = RateLimit::new(10, Duration::from_secs(60)).unwrap();
        record_starts(&conn, "q", limit, 2, Timestamp(1_000)).unwrap();
        record_starts(&conn, "q", limit, 1, Timestamp(2_000)).unwrap();
        record_starts(&conn, "r", limit, 1, Timestamp(1_000)).unwrap();
        forget_start(&conn, "q", Timestamp(1_000)).unwrap();
        assert_eq!(starts_of(&conn, "q"), [1_000, 2_000]);
        // No start at that time: nothing goes (not the newer one, not the
        // other queue's).
        forget_start(&conn, "q", Timestamp(1_500)).unwrap();
        forget_start(&conn, "s", Timestamp(1_000)).unwrap();
        assert_eq!(starts_of(&conn, "q"), [1_000, 2_000]);
        forget_start(&conn, "q", Timestamp(1_000)).unwrap();
        forget_start(&conn, "q", Timestamp(1_000)).unwrap();
        assert_eq!(starts_of(&conn, "q"), [2_000]);
        assert_eq!(starts_of(&conn, "r"), [1_000]);
    }

    #[test]
    fn forgetting_a_start_seeks_the_starts_index() {
        let p = crate::store::sqlite::overview::tests::plan(FORGET_START);
        assert!(p.contains("INDEX queue_starts_at"), "{p}");
        assert!(!p.contains("SCAN queue_starts"), "{p}");
    }

    #[test]
    fn finding_the_pending_queues_seeks_the_claim_index() {
        for sql in [FIRST_PENDING, NEXT_PENDING] {
            let p = crate::store::sqlite::overview::tests::plan(sql);
            assert!(p.contains("INDEX jobs_claim"), "{p}");
            assert!(!p.contains("TEMP B-TREE"), "{p}");
        }
    }
}
