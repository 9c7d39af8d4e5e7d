//! Reads for dashboards and metrics that stay cheap on a big history.

use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::Job;
use crate::overview::{Count, Overview, OverviewQuery};
use crate::queue::{Queue, MAX_PAGE};

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
    /// [`Error::Invalid`] for a bad cursor or limit, or a filter
    /// [`JobFilter::validate`] refuses; database errors.
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
        filter.validate()?;
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
    /// [`Error::Invalid`] for a filter [`JobFilter::validate`] refuses;
    /// database errors.
    pub fn count(&self, filter: &JobFilter, cap: u64) -> Result<Count> {
        filter.validate()?;
        let seen = self.backend().count_up_to(filter, cap.saturating_add(1))?;
        Ok(Count::capped(seen, cap))
    }
}
