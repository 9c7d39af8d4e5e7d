//! Backend-neutral work both backends share: the stats fold, the overview's
//! group fold, a bulk batch's count and how a claim shares its slots between
//! queues. Each backend runs its own SQL and hands rows (or a closure) here,
//! so the rules live once.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::filter::Cursor;
use crate::job::{Job, JobId, JobStatus};
use crate::overview::{Count, GroupCounts, Minute, Overview, OverviewQuery};
use crate::stats::Stats;
use crate::store::BulkDone;

/// One row of the stats query: jobs of a type, status and queue, how pending
/// ones split (`ready`, `retrying`, else scheduled) and which in-progress
/// ones are `reserved` (not started), and the earliest due time (ms, UTC)
/// among them.
pub(crate) struct StatsRow {
    pub job_type: String,
    pub status: String,
    pub split: Option<String>,
    pub n: u64,
    pub min_due: i64,
    pub queue: String,
}

/// Folds the stats rows read at `now` into [`Stats`]; a row with an unknown
/// status is logged and left out.
pub(crate) fn stats(now: Timestamp, rows: impl IntoIterator<Item = StatsRow>) -> Stats {
    let mut s = Stats {
        at: now,
        ..Stats::default()
    };
    let mut oldest: Option<i64> = None;
    for r in rows {
        let (n, job_type) = (r.n, r.job_type);
        let Ok(status) = r.status.parse::<JobStatus>() else {
            log::warn!(
                "stats: {n} jobs of type {job_type} have an unknown status {:?}",
                r.status
            );
            continue;
        };
        s.total += n;
        s.by_status.add(status, n);
        s.by_type.entry(job_type).or_default().add(status, n);
        s.by_queue.entry(r.queue).or_default().add(status, n);
        match r.split.as_deref() {
            Some("ready") => {
                s.pending.ready += n;
                oldest = Some(oldest.map_or(r.min_due, |o| o.min(r.min_due)));
            }
            Some("retrying") => s.pending.retrying += n,
            Some("reserved") => s.reserved += n,
            Some(_) => s.pending.scheduled += n,
            None => {}
        }
    }
    s.oldest_ready_age_ms = oldest.map(|o| u64::try_from(now.0.saturating_sub(o)).unwrap_or(0));
    s
}

/// The overview's parts of the statements, group statements in `groups`
/// order: ready/scheduled/retrying by (queue, type), running, failed, and
/// finished since `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupPart {
    Pending,
    Running,
    Failed,
    Recent,
}

/// What a backend reads for the overview; [`overview`] puts it together, so
/// both backends build the same [`Overview`] from their own statements.
pub(crate) trait OverviewReads {
    /// Jobs in `status`, counting at most `cap + 1`.
    fn count_status(&mut self, status: JobStatus, cap: u64) -> Result<Count>;
    /// One group part's rows, at most `q.group_rows` of them.
    fn group_rows(&mut self, part: GroupPart, q: &OverviewQuery) -> Result<Vec<GroupRow>>;
    /// Rows of (minute index from `since`, what, how many): jobs finished
    /// per minute by status, or (`started`) jobs started per minute.
    fn per_minute(&mut self, started: bool, since: Timestamp) -> Result<Vec<(i64, String, u64)>>;
    /// Running jobs (`running`) or the latest failures, at most `limit`.
    fn jobs(&mut self, running: bool, limit: usize) -> Result<Vec<Job>>;
}

/// Reads the whole overview through `r` (the caller runs it in one read
/// transaction).
///
/// # Errors
/// The first read's error.
pub(crate) fn overview(r: &mut impl OverviewReads, q: &OverviewQuery) -> Result<Overview> {
    let mut o = Overview {
        at: q.now,
        since: q.since,
        ..Overview::default()
    };
    for status in JobStatus::ALL {
        o.by_status.set(status, r.count_status(status, q.cap)?);
    }
    let parts = [
        r.group_rows(GroupPart::Pending, q)?,
        r.group_rows(GroupPart::Running, q)?,
        r.group_rows(GroupPart::Failed, q)?,
        r.group_rows(GroupPart::Recent, q)?,
    ];
    let (groups, partial) = groups(parts, q.group_rows);
    o.oldest_ready_age_ms = groups
        .iter()
        .filter_map(|g| g.oldest_ready)
        .min()
        .map(|t| u64::try_from(q.now.0.saturating_sub(t.0)).unwrap_or(0));
    (o.groups, o.partial) = (groups, partial);
    let mut rows = r.per_minute(false, q.since)?;
    rows.extend(r.per_minute(true, q.since)?);
    o.minutes = minutes(q, rows);
    o.running = r.jobs(true, q.list)?;
    o.recent_failures = r.jobs(false, q.list)?;
    Ok(o)
}

const MINUTE_MS: i64 = 60_000;

/// One entry per minute from `since` to `now`, oldest first, with the rows
/// of [`OverviewReads::per_minute`] added in.
fn minutes(q: &OverviewQuery, rows: Vec<(i64, String, u64)>) -> Vec<Minute> {
    let span = q.now.0.saturating_sub(q.since.0).max(0) / MINUTE_MS + 1;
    let mut out: Vec<Minute> = (0..span)
        .map(|i| Minute {
            start: Timestamp(q.since.0 + i * MINUTE_MS),
            ..Minute::default()
        })
        .collect();
    for (i, what, n) in rows {
        let Some(m) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        match what.as_str() {
            "started" => m.started += n,
            "completed" => m.completed += n,
            "failed" => m.failed += n,
            _ => m.cancelled += n,
        }
    }
    out
}

/// One row of an overview group part: queue, job type, what is counted
/// (`ready`, `running`, `failed_recently`, ...), how many, and for `ready` the
/// earliest due time (ms, UTC).
pub(crate) type GroupRow = (String, String, String, u64, Option<i64>);

/// Folds the group parts into counts by (queue, job type); true when a part
/// reached `cap` rows' worth of jobs (its counts may be partial).
fn groups<const N: usize>(parts: [Vec<GroupRow>; N], cap: u64) -> (Vec<GroupCounts>, bool) {
    let partial = parts
        .iter()
        .any(|rows| rows.iter().map(|r| r.3).sum::<u64>() >= cap);
    let mut by: BTreeMap<(String, String), GroupCounts> = BTreeMap::new();
    for (queue, job_type, what, n, due) in parts.into_iter().flatten() {
        let g = by
            .entry((queue.clone(), job_type.clone()))
            .or_insert_with(|| GroupCounts {
                queue,
                job_type,
                ..GroupCounts::default()
            });
        add(g, &what, n, due.map(Timestamp));
    }
    (by.into_values().collect(), partial)
}

fn add(g: &mut GroupCounts, what: &str, n: u64, due: Option<Timestamp>) {
    match what {
        "ready" => {
            g.ready += n;
            g.oldest_ready = g.oldest_ready.min(due).or(due).or(g.oldest_ready);
        }
        "scheduled" => g.scheduled += n,
        "retrying" => g.retrying += n,
        "running" => g.running += n,
        "failed" => g.failed += n,
        "completed_recently" => g.completed_recently += n,
        "failed_recently" => g.failed_recently += n,
        "cancelled_recently" => g.cancelled_recently += n,
        _ => {}
    }
}

/// Moves each candidate (`(id, created_at ms)`, in page order) through `apply`,
/// which answers whether the job moved, counting those that did. A candidate
/// that changed since it was read (conflict, gone, or a retry that would break
/// a unique key) is skipped; any other error ends the batch. The next batch
/// starts after the last candidate when the batch was full (`limit`).
///
/// # Errors
/// The first error that is not a skip.
pub(crate) fn bulk(
    ids: &[(JobId, i64)],
    limit: usize,
    mut apply: impl FnMut(JobId) -> Result<bool>,
) -> Result<BulkDone> {
    let mut changed = 0;
    for (id, _) in ids {
        match apply(*id) {
            Ok(true) => changed += 1,
            Ok(false)
            | Err(Error::Conflict { .. } | Error::NotFound { .. } | Error::UniqueConflict { .. }) =>
                {}
            Err(e) => return Err(e),
        }
    }
    let next = (ids.len() == limit)
        .then(|| ids.last())
        .flatten()
        .map(|(id, ms)| Cursor {
            created_at: *ms,
            id: *id,
        });
    Ok(BulkDone { changed, next })
}

/// Shares `n` claim slots between the `candidates` queues (those with due jobs
/// this worker serves, not paused), starting at `rotation`'s turn so no queue
/// always goes first: each gets an even share of what is left, then what
/// remains goes to the queues that were held back only by their share.
/// `claim_in(queue, want)` reads the queue's room under its limits, claims
/// `want(room)` jobs of it, and answers `(room, claimed)`. Returned in run
/// order (priority, due time, id).
///
/// # Errors
/// The first error of `claim_in`.
pub(crate) fn share_slots(
    mut candidates: Vec<String>,
    n: usize,
    rotation: usize,
    mut claim_in: impl FnMut(&str, &dyn Fn(usize) -> usize) -> Result<(usize, Vec<Job>)>,
) -> Result<Vec<Job>> {
    if candidates.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    let turn = rotation % candidates.len();
    candidates.rotate_left(turn);
    let (mut jobs, mut left, mut more) = (Vec::new(), n, Vec::new());
    let k = candidates.len();
    for (i, q) in candidates.iter().enumerate() {
        let share = left.div_ceil(k - i);
        let (room, got) = claim_in(q, &|room| share.min(room).min(left))?;
        if got.len() == share && share < room {
            more.push(q);
        }
        left -= got.len();
        append(&mut jobs, got);
    }
    for q in more {
        if left == 0 {
            break;
        }
        let (_, got) = claim_in(q, &|room| left.min(room))?;
        left -= got.len();
        append(&mut jobs, got);
    }
    let order =
        |a: &Job, b: &Job| (b.priority, a.next_retry, a.id).cmp(&(a.priority, b.next_retry, b.id));
    // One queue's jobs come in run order already: a job is a few hundred
    // bytes, and a sort moves them even then.
    if !jobs.is_sorted_by(|a, b| order(a, b).is_le()) {
        jobs.sort_by(order);
    }
    Ok(jobs)
}

/// Appends `got` to `jobs`; the first queue's vector is taken as it is (no
/// job copied).
fn append(jobs: &mut Vec<Job>, got: Vec<Job>) {
    if jobs.is_empty() {
        *jobs = got;
    } else {
        jobs.extend(got);
    }
}
