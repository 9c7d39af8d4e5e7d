//! Group commit for enqueues: inserts that arrive while another thread's insert
//! is being written (an fsync under FULL) wait, and the next of them writes all
//! of them in one transaction. No timer: a lone enqueue is written at once, and
//! under load each commit carries everything that queued behind the last one.
//!
//! Each caller's rows go in a savepoint of their own, so one caller's error
//! (an id that exists) rolls back only its rows; each caller gets its own
//! outcome, and only after the commit: an acknowledged enqueue is durable as
//! before. When the shared transaction itself fails (busy, disk full at the
//! commit), each caller's rows are written again in a transaction of its own,
//! so every caller gets its own error or success.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::job::Job;
use crate::store::sqlite::{enqueue, Store};
use crate::store::NewRow;

/// Per caller: `None` when the row was inserted, or the job holding its key.
type Outcome = Result<Vec<Option<Job>>>;

/// Callers waiting for their rows to be written, and who is writing.
#[derive(Default)]
struct Pending {
    next_ticket: u64,
    /// Rows of callers waiting for the next commit (copied: their callers wait).
    waiting: Vec<(u64, Vec<NewRow>)>,
    /// Outcomes written, not yet taken by their callers.
    done: HashMap<u64, Outcome>,
    /// A thread is writing a group now.
    leading: bool,
}

/// Shares commits between concurrent inserts of one process.
#[derive(Default)]
pub(crate) struct InsertGroup {
    pending: Mutex<Pending>,
    cv: Condvar,
}

impl std::fmt::Debug for InsertGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertGroup").finish_non_exhaustive()
    }
}

impl InsertGroup {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts `rows` (all or none), in a commit shared with the inserts of
    /// other threads that arrive while one is being written.
    pub(crate) fn insert(&self, store: &Store, rows: &[NewRow]) -> Outcome {
        let mut pending = self.lock();
        if !pending.leading {
            return self
                .lead(store, pending, Some(rows))
                .unwrap_or_else(|| unreachable!("a leader always writes its own rows"));
        }
        let ticket = pending.next_ticket;
        pending.next_ticket += 1;
        pending.waiting.push((ticket, rows.to_vec()));
        loop {
            pending = self.cv.wait(pending).unwrap_or_else(|p| p.into_inner());
            if let Some(out) = pending.done.remove(&ticket) {
                return out;
            }
            if !pending.leading {
                self.lead(store, pending, None);
                pending = self.lock();
                if let Some(out) = pending.done.remove(&ticket) {
                    return out;
                }
            }
        }
    }

    /// Writes `own` (borrowed: this thread's) and every waiting caller's rows
    /// in one commit; publishes the others' outcomes and returns `own`'s.
    fn lead(
        &self,
        store: &Store,
        mut pending: MutexGuard<'_, Pending>,
        own: Option<&[NewRow]>,
    ) -> Option<Outcome> {
        pending.leading = true;
        let batch = std::mem::take(&mut pending.waiting);
        drop(pending);
        let mut requests: Vec<&[NewRow]> = own.into_iter().collect();
        requests.extend(batch.iter().map(|(_, rows)| rows.as_slice()));
        let mut outs = write_all(store, &requests).into_iter();
        let own_out = own.and_then(|_| outs.next());
        let mut pending = self.lock();
        pending.leading = false;
        pending.done.extend(batch.iter().map(|(t, _)| *t).zip(outs));
        self.cv.notify_all();
        own_out
    }
}

/// One transaction for every request (each in its own savepoint); when that
/// transaction fails as a whole, one transaction per request.
fn write_all(store: &Store, requests: &[&[NewRow]]) -> Vec<Outcome> {
    if let [one] = requests {
        return vec![write_one(store, one)];
    }
    let shared = store.write("enqueue", |tx| {
        requests
            .iter()
            .map(|rows| in_savepoint(tx, rows))
            .collect::<Result<Vec<_>>>()
    });
    match shared {
        Ok(outs) => outs,
        Err(e) => {
            log::debug!("a shared enqueue commit failed ({e}); writing each caller's rows alone");
            requests.iter().map(|rows| write_one(store, rows)).collect()
        }
    }
}

/// One caller's rows alone: one autocommit INSERT for a plain job, else a
/// transaction.
fn write_one(store: &Store, rows: &[NewRow]) -> Outcome {
    if let [one] = rows {
        if one.job.unique.is_none() {
            return store
                .write_autocommit(|c| Ok(vec![enqueue::insert(c, &one.job, &one.payload)?]));
        }
    }
    store.write("enqueue_many", |tx| {
        rows.iter()
            .map(|r| enqueue::insert(tx, &r.job, &r.payload))
            .collect()
    })
}

/// One caller's rows inside the shared transaction, all or none: the outcome
/// is the caller's; an error of the savepoint itself is the whole transaction's.
fn in_savepoint(tx: &rusqlite::Connection, rows: &[NewRow]) -> Result<Outcome> {
    let sp = |sql: &str| tx.execute_batch(sql).map_err(Error::db("enqueue"));
    sp("SAVEPOINT jobq_enqueue")?;
    let out: Outcome = rows
        .iter()
        .map(|r| enqueue::insert(tx, &r.job, &r.payload))
        .collect();
    match out {
        Ok(v) => sp("RELEASE jobq_enqueue").map(|_| Ok(v)),
        Err(e) => sp("ROLLBACK TO jobq_enqueue; RELEASE jobq_enqueue").map(|_| Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{Access, ConnSettings};
    use crate::store::Durability;

    fn row(id: &str) -> NewRow {
        let json = serde_json::json!({"id": id, "job_type": "noop", "queue": "default",
            "status": "pending", "priority": 0, "payload": null, "result": null, "attempts": 0,
            "max_attempts": 5, "snoozes": 0, "next_retry": "2026-12-02T05:04:13.991Z",
            "error_message": null, "error_context": null, "entity_type": null,
            "entity_id": null, "owner": null, "created_at": "2026-12-02T05:04:13.991Z",
            "updated_at": "2026-12-02T05:04:13.991Z", "started_at": null,
            "completed_at": null, "locked_by": null, "lease_expires_at": null,
            "cancel_requested": false, "unique": null, "schedule": null,
            "fire_time": null, "progress": null});
        NewRow {
            job: serde_json::from_value(json).unwrap(),
            payload: "null".into(),
        }
    }

    fn count(store: &Store) -> i64 {
        store
            .read("count", |c| {
                c.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
                    .map_err(Error::db("count"))
            })
            .unwrap()
    }

    #[test]
    fn one_callers_error_in_a_shared_commit_rolls_back_only_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ConnSettings {
            durability: Durability::Normal,
            busy_timeout: std::time::Duration::from_secs(5),
            access: Access::ReadWrite,
        };
        let store = Store::open(&dir.path().join("g.db"), settings, 2, 0o600).unwrap();
        let taken = row("01a23523-94a7-7184-8f7f-2fe5ce7fd806");
        write_one(&store, std::slice::from_ref(&taken)).unwrap();
        let first = [row("01a23523-94a7-7184-8f7f-2fe5ce7fd807")];
        let clash = [row("01a23523-94a7-7184-8f7f-2fe5ce7fd808"), taken];
        let last = [row("01a23523-94a7-7184-8f7f-2fe5ce7fd809")];
        let outs = write_all(&store, &[&first, &clash, &last]);
        assert!(outs[0].is_ok() && outs[2].is_ok(), "{outs:?}");
        assert!(outs[1].is_err(), "the id that exists is refused");
        assert_eq!(
            count(&store),
            3,
            "the clashing caller's first row is rolled back"
        );
    }
}
