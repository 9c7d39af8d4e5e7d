//! Reads for dashboards and metrics that stay cheap on a big history, and the
//! bulk changes of every job matching a filter.

use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::Job;
use crate::overview::{BulkAction, Count, Overview, OverviewQuery};
use crate::queue::{Queue, BATCH, MAX_PAGE};
use crate::store::BulkBatch;

/// The default cap of [`OverviewQuery::cap`]: 10,000.
pub const COUNT_CAP: u64 = 10_000;

impl OverviewQuery {
    /// The last hour at `now`: 60 one-minute buckets (the last one the current
    /// minute), counts capped at 10,000, group counts over at most 100,000 rows
    /// per part, `list` running jobs and failures.
    pub fn last_hour(now: crate::Timestamp, list: usize) -> OverviewQuery {
        let minute = now.0.div_euclid(60_000) * 60_000;
        OverviewQuery {
            now,
            since: crate::Timestamp(minute - 59 * 60_000),
            cap: COUNT_CAP,
            group_rows: 100_000,
            list,
        }
    }
}

impl Queue {
    /// The dashboard's snapshot (see [`Overview`]), in one read transaction.
    /// Its cost is bounded by the caps and index ranges of `query`, not by the
    /// number of jobs kept.
    ///
    /// # Errors
    /// Database errors.
    pub fn overview(&self, query: &OverviewQuery) -> Result<Overview> {
        self.backend().overview(query)
    }

    /// A page of jobs matching `filter`, newest first, `limit` at a time (1-500),
    /// after `cursor` (a previous page's next cursor); with the next cursor, or
    /// `None` on the last page. Like [`Queue::list`] without the total, so its
    /// cost does not grow with the history (count with [`Queue::count`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad cursor or limit; database errors.
    pub fn page(
        &self,
        filter: &JobFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Job>, Option<String>)> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::Invalid {
                field: "limit",
                reason: format!("must be 1-{MAX_PAGE}"),
            });
        }
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let jobs = self.backend().find(filter, cursor, limit)?;
        let next = (jobs.len() == limit)
            .then(|| jobs.last())
            .flatten()
            .map(|j| Cursor::after(j).encode());
        Ok((jobs, next))
    }

    /// How many jobs match `filter`, counting no further than `cap`.
    ///
    /// # Errors
    /// Database errors.
    pub fn count(&self, filter: &JobFilter, cap: u64) -> Result<Count> {
        let seen = self.backend().count_up_to(filter, cap.saturating_add(1))?;
        Ok(Count::capped(seen, cap))
    }

    /// Manual retry of every failed or cancelled job matching `filter` (as
    /// [`Queue::retry`] each), 500 per write transaction so the write lock is
    /// never held long; jobs enqueued after the call began are left alone.
    /// Returns how many jobs were retried.
    ///
    /// # Errors
    /// Database errors (the batches before the error stay done).
    pub fn retry_matching(&self, filter: &JobFilter) -> Result<u64> {
        let n = self.bulk(BulkAction::Retry, filter)?;
        if n > 0 {
            self.notify_enqueued();
        }
        Ok(n)
    }

    /// Cancels every pending job matching `filter` and requests a cancel of
    /// every running one (as [`Queue::cancel`] each), in batches as
    /// [`Queue::retry_matching`]. Returns how many jobs were cancelled or had
    /// a cancel requested.
    ///
    /// # Errors
    /// Database errors (the batches before the error stay done).
    pub fn cancel_matching(&self, filter: &JobFilter) -> Result<u64> {
        self.bulk(BulkAction::Cancel, filter)
    }

    fn bulk(&self, action: BulkAction, filter: &JobFilter) -> Result<u64> {
        let until = self.now();
        let mut after = None;
        let mut total = 0u64;
        loop {
            let batch = BulkBatch {
                action,
                filter,
                after,
                until,
                limit: BATCH,
                now: self.now(),
            };
            let done = self.backend().bulk(&batch)?;
            total += done.changed as u64;
            match done.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        log::info!("bulk {action:?}: {total} jobs");
        Ok(total)
    }
}
