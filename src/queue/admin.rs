//! Operator calls: cancel, manual retry, recovery of expired leases, prune.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::queue::{Queue, BATCH};
use crate::state::Move;
use crate::store::Recovered;

impl Queue {
    /// Cancels a job: a pending one ends `cancelled`; a running one gets a cancel
    /// request (its handler sees it; it ends `cancelled` when the handler returns);
    /// a cancelled one is left as is. Returns the job after the change.
    ///
    /// # Errors
    /// [`Error::Conflict`] for completed and failed jobs, [`Error::NotFound`].
    pub fn cancel(&self, id: JobId) -> Result<Job> {
        let now = self.now();
        let mv = self.backend().cancel(id, now)?;
        if mv == Move::RequestCancel {
            log::info!("cancel requested for running job {id}");
            self.notify_cancel();
        }
        self.get(id)
    }

    /// Manual retry: a failed or cancelled job becomes `pending`, due now, with
    /// `attempts = 0`; its error history stays. Returns the job after the change.
    ///
    /// # Errors
    /// [`Error::Conflict`] for any other status, [`Error::NotFound`].
    pub fn retry(&self, id: JobId) -> Result<Job> {
        let now = self.now();
        self.backend().retry(id, now)?;
        self.notify_enqueued();
        self.get(id)
    }

    /// Recovers every running job whose lease expired: each counts as a failed
    /// attempt with the retryable error "lease expired" (pending after backoff, or
    /// failed when no attempts are left), logged as a warning; a reserved job
    /// (prefetched, never started) whose reservation ran out goes back to
    /// pending unstarted instead, its attempt not counted, logged as info.
    /// Safe in any process at any time. Returns how many jobs were recovered.
    ///
    /// # Errors
    /// Database errors.
    pub fn recover_expired(&self) -> Result<usize> {
        let backoff_for = |t: &str| self.backoff(t);
        let mut total = 0;
        loop {
            let now = self.now();
            let done = self.backend().recover_expired(now, BATCH, &backoff_for)?;
            for r in &done {
                log_expired(r);
            }
            total += done.len();
            self.metrics().recovered(done.len() as u64);
            if done.len() < BATCH {
                if total > 0 {
                    self.notify_enqueued();
                }
                return Ok(total);
            }
        }
    }

    /// Deletes jobs in `statuses` that finished more than `older_than` ago.
    /// Only final statuses (completed, failed, cancelled) may be pruned. Deletes in
    /// batches of 500 per transaction. Returns how many were deleted.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a non-final status; database errors.
    pub fn prune(&self, older_than: Duration, statuses: &[JobStatus]) -> Result<u64> {
        if let Some(s) = statuses.iter().find(|s| !s.is_final()) {
            return Err(Error::Invalid {
                field: "status",
                reason: format!("{s} jobs cannot be pruned (only completed, failed, cancelled)"),
            });
        }
        let cutoff = self.now().minus(older_than);
        let mut total = 0u64;
        loop {
            let n = self.backend().prune(statuses, cutoff, BATCH)?;
            total += n as u64;
            if n < BATCH {
                return Ok(total);
            }
        }
    }
}

/// Logs a recovery of an expired lease: a lost attempt is a warning, a
/// reservation that ran out (the job never started) is not.
fn log_expired(r: &Recovered) {
    let (id, status) = (r.id, r.status);
    if r.reserved {
        log::info!(
            "job {id}: its reservation ran out; handed back as reserved (not started, or its start not yet written), attempt not counted: now {status}"
        );
    } else {
        log::warn!("recovered job {id} after its lease expired: now {status}");
    }
}
