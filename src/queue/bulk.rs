//! Bulk retry and cancel of every job matching a filter, in short batches.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::filter::JobFilter;
use crate::overview::BulkAction;
use crate::queue::{Queue, BATCH};
use crate::store::BulkBatch;

impl Queue {
    /// Manual retry of every failed or cancelled job matching `filter` (as
    /// [`Queue::retry`] each), 500 per write transaction so the write lock is
    /// never held long; jobs enqueued after the call began are left alone.
    /// Returns how many jobs were retried.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a filter [`JobFilter::validate`] refuses
    /// (nothing changed); database errors (the batches before the error stay
    /// done).
    pub fn retry_matching(&self, filter: &JobFilter) -> Result<u64> {
        self.change_matching(BulkAction::Retry, filter, self.now())
    }

    /// Cancels every pending job matching `filter` and requests a cancel of
    /// every running one (as [`Queue::cancel`] each), in batches as
    /// [`Queue::retry_matching`]. Returns how many jobs were cancelled or had
    /// a cancel requested.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a filter [`JobFilter::validate`] refuses
    /// (nothing changed); database errors (the batches before the error stay
    /// done).
    pub fn cancel_matching(&self, filter: &JobFilter) -> Result<u64> {
        self.change_matching(BulkAction::Cancel, filter, self.now())
    }

    /// How many jobs [`Queue::change_matching`] with the same arguments would
    /// change now: those matching `filter`, enqueued no later than
    /// `enqueued_by`, in a status `action` moves. One read, no write lock.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a filter [`JobFilter::validate`] refuses;
    /// database errors.
    pub fn count_matching(
        &self,
        action: BulkAction,
        filter: &JobFilter,
        enqueued_by: Timestamp,
    ) -> Result<u64> {
        filter.validate()?;
        let batch = self.batch(action, filter, enqueued_by);
        self.backend().bulk_count(&batch)
    }

    /// Applies `action` to every job matching `filter` that was enqueued no
    /// later than `enqueued_by` (so jobs enqueued meanwhile are left alone),
    /// 500 per write transaction; each job moves as its single-job call would,
    /// and one that changed meanwhile is skipped. Returns how many moved.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a filter [`JobFilter::validate`] refuses
    /// (nothing changed); database errors (the batches before the error stay
    /// done).
    pub fn change_matching(
        &self,
        action: BulkAction,
        filter: &JobFilter,
        enqueued_by: Timestamp,
    ) -> Result<u64> {
        filter.validate()?;
        let mut batch = self.batch(action, filter, enqueued_by);
        let mut total = 0u64;
        loop {
            batch.now = self.now();
            let done = self.backend().bulk(&batch)?;
            total += done.changed as u64;
            if action == BulkAction::Cancel && done.changed > 0 {
                // Some of them may be running or reserved here: tell this
                // process's pools after each batch, not after the last.
                self.notify_cancel();
            }
            match done.next {
                Some(next) => batch.after = Some(next),
                None => break,
            }
        }
        log::info!("bulk {action:?}: {total} jobs");
        if action == BulkAction::Retry && total > 0 {
            self.notify_enqueued();
        }
        Ok(total)
    }

    fn batch<'a>(
        &self,
        action: BulkAction,
        filter: &'a JobFilter,
        until: Timestamp,
    ) -> BulkBatch<'a> {
        BulkBatch {
            action,
            filter,
            after: None,
            until,
            limit: BATCH,
            now: self.now(),
        }
    }
}
