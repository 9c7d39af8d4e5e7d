//! The job columns and the mapping of a row to a [`Job`].
//!
//! Decoding never fails on a value that does not fit its type (written by hand,
//! by another tool, or by a newer version): one bad row must not stop the rest.
//! Such a value is shown as what is stored (its text, or a default for numbers)
//! and named in [`Job::unreadable`]; the claim fails such a job at once.

use rusqlite::types::ValueRef;
use rusqlite::Row;
use serde_json::Value;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::job::{HeldKey, Job, JobId, JobStatus, StatusSet};
use crate::retry::Backoff;

/// Every job column, in the order [`job_from_row`] reads them.
macro_rules! job_columns {
    () => {
        "id, job_type, status, priority, payload, result, attempts, max_attempts, next_retry, \
         error_message, error_context, entity_type, entity_id, owner, created_at, updated_at, \
         started_at, completed_at, locked_by, lease_expires_at, lease_token, cancel_requested, \
         progress, backoff, queue, snoozes, unique_key, unique_states, schedule, fire_time"
    };
}
pub(crate) use job_columns;

/// The number of columns in [`job_columns!`]; a column selected after them is at this index.
pub(crate) const JOB_COLUMNS: usize = 30;

/// The job columns a claim sets to values it knows (status, updated_at,
/// started_at, locked_by, lease_expires_at, progress), as bits of their
/// places in [`job_columns!`]: [`claim_columns!`] leaves them out.
pub(crate) const CLAIM_KNOWN: u32 = 1 << 2 | 1 << 15 | 1 << 16 | 1 << 18 | 1 << 19 | 1 << 22;

/// The job columns that are NULL or 0 on most claimed jobs: those an earlier
/// attempt or a cancel request sets (result, error_message, error_context,
/// completed_at, cancel_requested, snoozes) and those of a schedule's jobs
/// (schedule, fire_time). A claim returns them only through
/// [`CLAIM_RARE_FLAG`]; a row where any is set is read again whole, by its
/// key in the claim's transaction (see `claim.rs`).
pub(crate) const CLAIM_RARE: u32 =
    1 << 5 | 1 << 9 | 1 << 10 | 1 << 17 | 1 << 21 | 1 << 25 | 1 << 28 | 1 << 29;

/// [`job_columns!`] without the [`CLAIM_KNOWN`] and [`CLAIM_RARE`] ones,
/// in the same order, then [`CLAIM_RARE_FLAG`]: what a claim returns.
/// Every column a claim returns costs it about 0.5 % (31 columns against 5:
/// +13 % of a 50-job round's SQL; BENCHMARKS.md, "Checkpoints off the commit
/// path"), so the claim returns 17, not 24.
macro_rules! claim_columns {
    () => {
        "id, job_type, priority, payload, attempts, max_attempts, next_retry, \
         entity_type, entity_id, owner, created_at, lease_token, \
         backoff, queue, unique_key, unique_states, \
         coalesce(result, error_message, error_context, completed_at, \
           nullif(cancel_requested, 0), nullif(snoozes, 0), schedule, fire_time) IS NOT NULL"
    };
}
pub(crate) use claim_columns;

/// The place of the last of [`claim_columns!`]: 1 when any of the
/// [`CLAIM_RARE`] columns is set (not NULL; not 0 for cancel_requested and
/// snoozes).
pub(crate) const CLAIM_RARE_FLAG: usize =
    JOB_COLUMNS - (CLAIM_KNOWN | CLAIM_RARE).count_ones() as usize;

/// Reads one row, noting every value that does not fit its column's type.
struct Reader<'a, 'r> {
    row: &'a Row<'r>,
    /// Job columns the row leaves out (bits of their places in [`job_columns!`]):
    /// they read as NULL and are never noted.
    skipped: u32,
    unreadable: Vec<String>,
}

impl Reader<'_, '_> {
    fn note(&mut self, column: &str, problem: String) {
        self.unreadable.push(format!("{column} {problem}"));
    }

    fn skips(&self, i: usize) -> bool {
        self.skipped & (1 << i) != 0
    }

    /// Job column `i` (its place in [`job_columns!`]).
    fn value(&self, i: usize) -> ValueRef<'_> {
        if self.skips(i) {
            return ValueRef::Null;
        }
        let before = (self.skipped & ((1u32 << i) - 1)).count_ones() as usize;
        self.row.get_ref(i - before).unwrap_or(ValueRef::Null)
    }

    fn text(&mut self, i: usize, column: &str) -> Option<String> {
        match self.value(i) {
            ValueRef::Null => None,
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(n) => Some(n.to_string()),
            ValueRef::Real(f) => {
                self.note(column, format!("is a number, not text ({f})"));
                Some(f.to_string())
            }
        }
    }

    fn int(&mut self, i: usize, column: &str) -> Option<i64> {
        match self.value(i) {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n),
            other => {
                let shown = shown(other);
                self.note(column, format!("is not an integer ({shown})"));
                Some(0)
            }
        }
    }

    fn required_int(&mut self, i: usize, column: &str) -> i64 {
        if self.skips(i) {
            return 0;
        }
        self.int(i, column).unwrap_or_else(|| {
            self.note(column, "is null".into());
            0
        })
    }

    fn count(&mut self, i: usize, column: &str) -> u32 {
        let n = self.required_int(i, column);
        u32::try_from(n).unwrap_or_else(|_| {
            self.note(column, format!("is out of range ({n})"));
            0
        })
    }

    fn json(&mut self, i: usize, column: &str) -> Option<Value> {
        let text = match self.value(i) {
            ValueRef::Null => return None,
            ValueRef::Integer(n) => return Some(Value::from(n)),
            ValueRef::Real(f) => return Some(Value::from(f)),
            ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        };
        match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.note(column, format!("is not valid JSON ({e})"));
                Some(Value::String(text))
            }
        }
    }

    fn backoff(&mut self, i: usize) -> Option<Backoff> {
        let text = self.text(i, "backoff")?;
        let parsed = Backoff::from_stored(&text);
        if parsed.is_none() {
            self.note(
                "backoff",
                format!("is not a schedule ({:?}); the default applies", cut(&text)),
            );
        }
        parsed
    }

    fn held_key(&mut self, key: usize, states: usize) -> Option<HeldKey> {
        let key = match self.value(key) {
            ValueRef::Blob(b) => b.to_vec(),
            ValueRef::Null => return None,
            other => {
                let shown = shown(other);
                self.note("unique_key", format!("is not a key ({shown})"));
                return None;
            }
        };
        let bits = self.int(states, "unique_states").unwrap_or(0);
        Some(HeldKey {
            key,
            states: StatusSet::from_bits(bits),
        })
    }

    fn id(&mut self) -> JobId {
        let v = self.value(0);
        if let Some(id) = crate::store::sqlite::id::decode(v) {
            return id;
        }
        let shown = shown(v);
        self.note("id", format!("is not a UUID ({shown})"));
        JobId::from_uuid(Uuid::nil())
    }

    fn status(&mut self) -> JobStatus {
        if self.skips(2) {
            return JobStatus::InProgress;
        }
        let text = self.text(2, "status").unwrap_or_default();
        text.parse().unwrap_or_else(|_| {
            self.note(
                "status",
                format!("is not a status ({:?}); shown as failed", cut(&text)),
            );
            JobStatus::Failed
        })
    }
}

fn shown(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "null".into(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => format!("{:?}", cut(&String::from_utf8_lossy(t))),
    }
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Reads a row selected with [`job_columns!`]. Never fails on a value that does
/// not fit: see the module docs.
pub(crate) fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    job_from_columns(row, 0)
}

/// Reads a row returned with [`claim_columns!`]: the [`CLAIM_KNOWN`] fields
/// come out as in_progress, 0 or None, for the claim to set, and so do the
/// [`CLAIM_RARE`] ones. Also returns whether the row is to be read whole:
/// one of those is set (or the flag reads as anything but 0).
pub(crate) fn job_from_claim_row(row: &Row<'_>) -> rusqlite::Result<(Job, bool)> {
    let job = job_from_columns(row, CLAIM_KNOWN | CLAIM_RARE)?;
    let history = !matches!(row.get_ref(CLAIM_RARE_FLAG), Ok(ValueRef::Integer(0)));
    Ok((job, history))
}

fn job_from_columns(row: &Row<'_>, skipped: u32) -> rusqlite::Result<Job> {
    let mut r = Reader {
        row,
        skipped,
        unreadable: Vec::new(),
    };
    let ts = |r: &mut Reader<'_, '_>, i, c| r.int(i, c).map(Timestamp);
    let id = r.id();
    let job_type = r.text(1, "job_type").unwrap_or_default();
    let status = r.status();
    let priority = r.required_int(3, "priority");
    let priority = i32::try_from(priority).unwrap_or_else(|_| {
        r.note("priority", format!("is out of range ({priority})"));
        0
    });
    let queue = r
        .text(24, "queue")
        .unwrap_or_else(|| crate::queues::DEFAULT_QUEUE.to_string());
    Ok(Job {
        id,
        job_type,
        queue,
        status,
        priority,
        payload: r.json(4, "payload").unwrap_or(Value::Null),
        result: r.json(5, "result"),
        attempts: r.count(6, "attempts"),
        max_attempts: r.count(7, "max_attempts").max(1),
        snoozes: r.count(25, "snoozes"),
        next_retry: Timestamp(r.required_int(8, "next_retry")),
        error_message: r.text(9, "error_message"),
        error_context: r.json(10, "error_context"),
        entity_type: r.text(11, "entity_type"),
        entity_id: r.text(12, "entity_id"),
        owner: r.text(13, "owner"),
        created_at: Timestamp(r.required_int(14, "created_at")),
        updated_at: Timestamp(r.required_int(15, "updated_at")),
        started_at: ts(&mut r, 16, "started_at"),
        completed_at: ts(&mut r, 17, "completed_at"),
        locked_by: r.text(18, "locked_by"),
        lease_expires_at: ts(&mut r, 19, "lease_expires_at"),
        lease_token: r.required_int(20, "lease_token"),
        cancel_requested: r.required_int(21, "cancel_requested") != 0,
        progress: r.json(22, "progress"),
        backoff: r.backoff(23),
        unique: r.held_key(26, 27),
        schedule: r.text(28, "schedule"),
        fire_time: ts(&mut r, 29, "fire_time"),
        unreadable: r.unreadable,
    })
}

pub(crate) use crate::store::plan::cannot_run;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<&str> {
        list.split(',').map(str::trim).collect()
    }

    #[test]
    fn the_claim_columns_are_the_job_columns_without_the_known_ones() {
        // `claim_columns!` is written out by hand: a column added to
        // `job_columns!` must be added there too, in the same order, or the
        // claim's rows are read one column off.
        let all = names(job_columns!());
        assert_eq!(all.len(), JOB_COLUMNS);
        let skipped = CLAIM_KNOWN | CLAIM_RARE;
        assert_eq!(CLAIM_KNOWN & CLAIM_RARE, 0);
        let kept: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| skipped & (1 << i) == 0)
            .map(|(_, c)| *c)
            .collect();
        let claim = names(claim_columns!());
        assert_eq!(claim[..CLAIM_RARE_FLAG], kept[..]);
        // The flag, last, names every rare column, and no other.
        let flag = claim[CLAIM_RARE_FLAG..].join(",");
        let mut named: Vec<&str> = flag
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| all.contains(w))
            .collect();
        named.sort_unstable();
        let mut rare: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| CLAIM_RARE & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        rare.sort_unstable();
        assert_eq!(named, rare);
    }
}
