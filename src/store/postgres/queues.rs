//! Named queues on PostgreSQL: stored settings (pause, limits), the queues with
//! pending jobs, and the room a queue has under its limits. A claim locks the
//! rows of the limited queues it may claim from (`FOR UPDATE`, in name order so
//! claimers never deadlock), so limits hold exactly across processes; queues
//! without limits take no lock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use postgres::Row;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::queues::{LimitsChange, QueueInfo, QueueSettings, RateLimit};
use crate::store::postgres::conn::Conn;

/// The advisory lock key that orders claims against pauses and limit changes
/// ("JOBQ" in ASCII, then 2): a claim holds it shared from its first
/// statement, a change of a queue's settings exclusively. So a claim that read
/// a queue as not paused commits before the pause does, and none that begins
/// after can miss the pause (on SQLite the single writer gives the same order).
const SETTINGS_LOCK: i64 = 0x4A4F_4251_0000_0002;

/// How a transaction that may claim begins: READ COMMITTED, then
/// [`SETTINGS_LOCK`] shared, in one round trip.
pub(crate) const CLAIM_BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT pg_advisory_xact_lock_shared(5354571397626593282)";

const SETTINGS: &str = "SELECT name, paused, paused_until, concurrency, rate_count, \
     rate_period_ms FROM jobq.queues";

/// Serializes claimers of the limited queues among `$1`.
const LOCK_LIMITED: &str = "SELECT name FROM jobq.queues WHERE name = ANY($1) \
     AND (concurrency IS NOT NULL OR rate_count IS NOT NULL) ORDER BY name FOR UPDATE";

/// Every queue with a pending job, one index seek each (a skip scan of `jobs_claim`).
const PENDING_QUEUES: &str = "WITH RECURSIVE q(name) AS ( \
       SELECT (SELECT queue FROM jobq.jobs WHERE status = 'pending' ORDER BY queue LIMIT 1) \
       UNION ALL \
       SELECT (SELECT queue FROM jobq.jobs WHERE status = 'pending' AND queue > q.name \
               ORDER BY queue LIMIT 1) FROM q WHERE q.name IS NOT NULL) \
     SELECT name FROM q WHERE name IS NOT NULL";

/// [`PENDING_QUEUES`] with each one's stored settings (the last column: whether
/// it has a row; without one, the defaults), in name order.
const PENDING_WITH_SETTINGS: &str = "WITH RECURSIVE q(name) AS ( \
       SELECT (SELECT queue FROM jobq.jobs WHERE status = 'pending' ORDER BY queue LIMIT 1) \
       UNION ALL \
       SELECT (SELECT queue FROM jobq.jobs WHERE status = 'pending' AND queue > q.name \
               ORDER BY queue LIMIT 1) FROM q WHERE q.name IS NOT NULL) \
     SELECT q.name, coalesce(s.paused, false), s.paused_until, s.concurrency, s.rate_count, \
       s.rate_period_ms, s.name IS NOT NULL FROM q LEFT JOIN jobq.queues s ON s.name = q.name \
     WHERE q.name IS NOT NULL ORDER BY q.name";

const RUNNING: &str = "SELECT count(*) FROM jobq.jobs WHERE status = 'in_progress' AND queue = $1";
const PENDING: &str = "SELECT count(*) FROM jobq.jobs WHERE status = 'pending' AND queue = $1";
const STARTS_SINCE: &str = "SELECT count(*) FROM jobq.queue_starts WHERE queue = $1 AND at > $2";
const RECORD_STARTS: &str =
    "INSERT INTO jobq.queue_starts (queue, at) SELECT $1, $2 FROM generate_series(1, $3)";
const FORGET_STARTS: &str = "DELETE FROM jobq.queue_starts WHERE queue = $1 AND at <= $2";
/// One start of queue `$1` recorded at `$2`, by its `ctid` (the rows of a
/// queue and time are alike: any one will do). `SKIP LOCKED`: two give-backs
/// of the same claim time at once forget two rows, not one row twice.
const FORGET_START: &str = "DELETE FROM jobq.queue_starts WHERE ctid = \
     (SELECT ctid FROM jobq.queue_starts WHERE queue = $1 AND at = $2 \
      LIMIT 1 FOR UPDATE SKIP LOCKED)";
const ENSURE: &str = "INSERT INTO jobq.queues (name, updated_at) VALUES ($1, $2) \
     ON CONFLICT (name) DO NOTHING";
const SET_CONCURRENCY: &str =
    "UPDATE jobq.queues SET concurrency = $2, updated_at = $3 WHERE name = $1";
const SET_RATE: &str = "UPDATE jobq.queues SET rate_count = $2, rate_period_ms = $3, \
     updated_at = $4 WHERE name = $1";
const PAUSE: &str =
    "UPDATE jobq.queues SET paused = true, paused_until = $2, updated_at = $3 WHERE name = $1";
const RESUME: &str = "UPDATE jobq.queues SET paused = false, paused_until = NULL, \
     updated_at = $2 WHERE name = $1";
const RUNNING_BY_QUEUE: &str = "SELECT queue, count(*) FROM jobq.jobs \
     WHERE status = 'in_progress' GROUP BY queue";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn settings_of(r: &Row) -> QueueSettings {
    let until: Option<i64> = r.get(2);
    let concurrency: Option<i32> = r.get(3);
    let rate = match (r.get::<_, Option<i32>>(4), r.get::<_, Option<i64>>(5)) {
        (Some(c), Some(p)) => {
            let period = Duration::from_millis(u64::try_from(p).unwrap_or(0));
            u32::try_from(c)
                .ok()
                .and_then(|c| RateLimit::new(c, period).ok())
        }
        _ => None,
    };
    QueueSettings {
        concurrency: concurrency.and_then(|c| u32::try_from(c).ok()),
        rate_limit: rate,
        paused: r.get::<_, bool>(1).then_some(until.map(Timestamp)),
    }
}

/// Every stored queue's settings, by name.
pub(crate) fn settings(c: &mut Conn) -> Result<BTreeMap<String, QueueSettings>> {
    let rows = c.query("queues", SETTINGS, &[])?;
    Ok(rows.iter().map(|r| (r.get(0), settings_of(r))).collect())
}

/// Locks the rows of the limited queues among `names` until the transaction ends.
pub(crate) fn lock_limited(c: &mut Conn, names: &[String]) -> Result<()> {
    c.query("claim", LOCK_LIMITED, &[&names])?;
    Ok(())
}

/// The queues that have a pending job, sorted by name.
pub(crate) fn pending_queues(c: &mut Conn) -> Result<Vec<String>> {
    let rows = c.query("claim", PENDING_QUEUES, &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The queues that have a pending job, sorted by name, each with its stored
/// settings (`None`: none stored), in one statement. Not locked: a claim from
/// a limited queue locks its row and reads the settings again
/// ([`lock_limited`], [`settings`]).
pub(crate) fn pending_with_settings(c: &mut Conn) -> Result<Vec<(String, Option<QueueSettings>)>> {
    let rows = c.query("claim", PENDING_WITH_SETTINGS, &[])?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, bool>(6).then(|| settings_of(r))))
        .collect())
}

fn count(
    c: &mut Conn,
    sql: &'static str,
    p: crate::store::postgres::conn::Params<'_>,
) -> Result<u64> {
    let row = c.opt("queue counts", sql, p)?;
    Ok(row.map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
}

/// How many more jobs of `queue` may start now (usize::MAX: unlimited). Exact
/// when the queue's row is locked ([`lock_limited`]).
pub(crate) fn room(
    c: &mut Conn,
    queue: &str,
    s: Option<&QueueSettings>,
    now: Timestamp,
) -> Result<usize> {
    let mut room = usize::MAX;
    let Some(s) = s else { return Ok(room) };
    if let Some(n) = s.concurrency {
        let running = count(c, RUNNING, &[&queue])?;
        room = room.min(usize::try_from(u64::from(n).saturating_sub(running)).unwrap_or(0));
    }
    if let Some(r) = s.rate_limit {
        let since = now.0.saturating_sub(ms(r.period));
        let started = count(c, STARTS_SINCE, &[&queue, &since])?;
        let left = u64::from(r.count).saturating_sub(started);
        room = room.min(usize::try_from(left).unwrap_or(0));
    }
    Ok(room)
}

/// How long starts are kept past their window: claimers' clocks are read before
/// they get the queue's lock, so a later claimer may carry an earlier `now`;
/// it must still see every start inside its own window.
const KEEP_PAST_WINDOW: Duration = Duration::from_secs(60);

/// Records `n` starts of a rate-limited queue and forgets those that slid out
/// of its window twice over (and at least [`KEEP_PAST_WINDOW`] past it).
pub(crate) fn record_starts(
    c: &mut Conn,
    queue: &str,
    limit: RateLimit,
    n: usize,
    now: Timestamp,
) -> Result<()> {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    c.execute("claim", RECORD_STARTS, &[&queue, &now.0, &n])?;
    let keep = limit.period + limit.period.max(KEEP_PAST_WINDOW);
    let before = now.0.saturating_sub(ms(keep));
    c.execute("claim", FORGET_STARTS, &[&queue, &before])?;
    Ok(())
}

/// Forgets one start of `queue` recorded at `at` (see the SQLite store's
/// `forget_start`): the claim of a reserved job handed back unstarted
/// recorded it. Nothing when there is none; a start recorded at another time
/// is another claim's, and stays.
pub(crate) fn forget_start(c: &mut Conn, queue: &str, at: Timestamp) -> Result<()> {
    c.execute("give back", FORGET_START, &[&queue, &at.0])?;
    Ok(())
}

/// Takes the settings lock (exclusive: it waits for running claims, and
/// claims wait for this change), then makes sure `queue` has a row.
fn ensure(c: &mut Conn, queue: &str, now: Timestamp) -> Result<()> {
    c.execute(
        "queue settings",
        "SELECT pg_advisory_xact_lock($1)",
        &[&SETTINGS_LOCK],
    )?;
    c.execute("queue settings", ENSURE, &[&queue, &now.0])?;
    Ok(())
}

/// Changes a queue's limits (creating its row).
pub(crate) fn set_limits(
    c: &mut Conn,
    queue: &str,
    change: LimitsChange,
    now: Timestamp,
) -> Result<()> {
    ensure(c, queue, now)?;
    if let Some(n) = change.concurrency {
        let n = n.map(|n| int4("concurrency", n)).transpose()?;
        c.execute("queue settings", SET_CONCURRENCY, &[&queue, &n, &now.0])?;
    }
    if let Some(r) = change.rate_limit {
        let count = r.map(|r| int4("rate_limit", r.count)).transpose()?;
        let period = r.map(|r| ms(r.period));
        c.execute(
            "queue settings",
            SET_RATE,
            &[&queue, &count, &period, &now.0],
        )?;
    }
    Ok(())
}

/// Pauses a queue until `until` (`None`: until resumed).
pub(crate) fn pause(
    c: &mut Conn,
    queue: &str,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<()> {
    ensure(c, queue, now)?;
    c.execute("pause queue", PAUSE, &[&queue, &until.map(|t| t.0), &now.0])?;
    Ok(())
}

/// Resumes a queue.
pub(crate) fn resume(c: &mut Conn, queue: &str, now: Timestamp) -> Result<()> {
    ensure(c, queue, now)?;
    c.execute("resume queue", RESUME, &[&queue, &now.0])?;
    Ok(())
}

/// Every queue that is stored, has pending or running jobs, or is in `known`,
/// with its counts and settings at `now`, sorted by name.
pub(crate) fn infos(c: &mut Conn, known: &[String], now: Timestamp) -> Result<Vec<QueueInfo>> {
    let settings = settings(c)?;
    let running: BTreeMap<String, u64> = c
        .query("list queues", RUNNING_BY_QUEUE, &[])?
        .iter()
        .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
        .collect();
    let mut names: BTreeSet<String> = known.iter().cloned().collect();
    names.extend(settings.keys().cloned());
    names.extend(running.keys().cloned());
    names.extend(pending_queues(c)?);
    names
        .into_iter()
        .map(|name| {
            let s = settings.get(&name).cloned().unwrap_or_default();
            Ok(QueueInfo {
                pending: count(c, PENDING, &[&name])?,
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

/// `n` as PostgreSQL's `integer`; the library's bounds keep every limit
/// within it, and a larger one is refused, never cut down.
fn int4(field: &'static str, n: u32) -> Result<i32> {
    i32::try_from(n).map_err(|_| crate::error::Error::Invalid {
        field,
        reason: format!("{n} is more than PostgreSQL stores (2147483647)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_lock_is_the_settings_lock() {
        let shared = format!("pg_advisory_xact_lock_shared({SETTINGS_LOCK})");
        assert!(CLAIM_BEGIN.contains(&shared), "{CLAIM_BEGIN}");
        assert!(CLAIM_BEGIN.starts_with(crate::store::postgres::conn::BEGIN));
    }
}
