//! The job columns and the mapping of a row to a [`Job`]. Columns are typed, so
//! only the id, the status and the stored schedule can hold what jobq cannot
//! read (written by hand or another tool); such values are shown as stored and
//! named in [`Job::unreadable`], as on SQLite.

use postgres::Row;
use serde_json::Value;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::job::{HeldKey, Job, JobId, JobStatus, StatusSet};
use crate::retry::Backoff;

/// Every job column, in the order [`job_from_row`] reads them (JSON as text).
macro_rules! job_columns {
    () => {
        "id, job_type, status, priority, payload::text, result::text, attempts, max_attempts, \
         next_retry, error_message, error_context::text, entity_type, entity_id, owner, \
         created_at, updated_at, started_at, completed_at, locked_by, lease_expires_at, \
         lease_token, cancel_requested, progress::text, backoff, queue, snoozes, \
         unique_key, unique_states, schedule, fire_time"
    };
}
pub(crate) use job_columns;

/// The same columns qualified by the alias `j` (for `UPDATE ... FROM`).
macro_rules! j_columns {
    () => {
        "j.id, j.job_type, j.status, j.priority, j.payload::text, j.result::text, j.attempts, \
         j.max_attempts, j.next_retry, j.error_message, j.error_context::text, j.entity_type, \
         j.entity_id, j.owner, j.created_at, j.updated_at, j.started_at, j.completed_at, \
         j.locked_by, j.lease_expires_at, j.lease_token, j.cancel_requested, j.progress::text, \
         j.backoff, j.queue, j.snoozes, j.unique_key, j.unique_states, j.schedule, j.fire_time"
    };
}
pub(crate) use j_columns;

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

fn json(text: Option<String>, column: &str, unreadable: &mut Vec<String>) -> Option<Value> {
    let text = text?;
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            unreadable.push(format!("{column} is not valid JSON ({e})"));
            Some(Value::String(text))
        }
    }
}

fn count(n: i32, column: &str, unreadable: &mut Vec<String>) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| {
        unreadable.push(format!("{column} is out of range ({n})"));
        0
    })
}

/// Reads a row selected with [`job_columns!`].
pub(crate) fn job_from_row(r: &Row) -> Job {
    let mut bad = Vec::new();
    let id_text: String = r.get(0);
    let id = id_text.parse().unwrap_or_else(|_| {
        bad.push(format!("id is not a UUID ({:?})", cut(&id_text)));
        JobId::from_uuid(Uuid::nil())
    });
    let status_text: String = r.get(2);
    let status = status_text.parse().unwrap_or_else(|_| {
        bad.push(format!(
            "status is not a status ({:?}); shown as failed",
            cut(&status_text)
        ));
        JobStatus::Failed
    });
    let backoff_text: Option<String> = r.get(23);
    let backoff = backoff_text.as_deref().and_then(|t| {
        let parsed = Backoff::from_stored(t);
        if parsed.is_none() {
            bad.push(format!(
                "backoff is not a schedule ({:?}); the default applies",
                cut(t)
            ));
        }
        parsed
    });
    let ts = |i: usize| r.get::<_, Option<i64>>(i).map(Timestamp);
    let payload = json(r.get(4), "payload", &mut bad).unwrap_or(Value::Null);
    let result = json(r.get(5), "result", &mut bad);
    let error_context = json(r.get(10), "error_context", &mut bad);
    let progress = json(r.get(22), "progress", &mut bad);
    let attempts = count(r.get(6), "attempts", &mut bad);
    let max_attempts = count(r.get(7), "max_attempts", &mut bad).max(1);
    let snoozes = count(r.get(25), "snoozes", &mut bad);
    Job {
        id,
        job_type: r.get(1),
        queue: r.get(24),
        snoozes,
        status,
        priority: r.get(3),
        payload,
        result,
        attempts,
        max_attempts,
        next_retry: Timestamp(r.get(8)),
        error_message: r.get(9),
        error_context,
        entity_type: r.get(11),
        entity_id: r.get(12),
        owner: r.get(13),
        created_at: Timestamp(r.get(14)),
        updated_at: Timestamp(r.get(15)),
        started_at: ts(16),
        completed_at: ts(17),
        locked_by: r.get(18),
        lease_expires_at: ts(19),
        lease_token: r.get(20),
        cancel_requested: r.get(21),
        progress,
        backoff,
        unique: r.get::<_, Option<Vec<u8>>>(26).map(|key| HeldKey {
            key,
            states: StatusSet::from_bits(r.get::<_, Option<i64>>(27).unwrap_or(0)),
        }),
        schedule: r.get(28),
        fire_time: ts(29),
        unreadable: bad,
    }
}
