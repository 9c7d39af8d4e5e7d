//! Reads: one job, a page of jobs, the stats, a health ping.

use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter, JobPage};
use crate::job::{Job, JobId};
use crate::queue::{Queue, MAX_PAGE};
use crate::stats::Stats;

impl Queue {
    /// Reads one job.
    ///
    /// # Errors
    /// [`Error::NotFound`], or a database error.
    pub fn get(&self, id: JobId) -> Result<Job> {
        self.backend().get(id)
    }

    /// Lists jobs newest first (by `created_at`, then id; in SQLite by the id, which
    /// carries `created_at` for every job made from schema version 9 on: see the
    /// README's storage notes), `limit` at a time (1-500),
    /// after `cursor` (from the previous page's `next_cursor`). Keyset pagination:
    /// pages never repeat or skip a job while others are inserted.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad cursor or limit, or a filter
    /// [`JobFilter::validate`] refuses; database errors.
    pub fn list(&self, filter: &JobFilter, limit: usize, cursor: Option<&str>) -> Result<JobPage> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::Invalid {
                field: "limit",
                reason: format!("must be 1-{MAX_PAGE}"),
            });
        }
        filter.validate()?;
        let cursor = cursor.map(Cursor::decode).transpose()?;
        // One row past the page says whether another page follows, so the
        // last page has no cursor even when it is exactly full.
        let (mut jobs, total) = self.backend().list(filter, cursor, limit + 1)?;
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next_cursor = more.then(|| jobs.last()).flatten().map(|j| {
            Cursor {
                created_at: j.created_at.0,
                id: j.id,
            }
            .encode()
        });
        Ok(JobPage {
            jobs,
            next_cursor,
            total,
        })
    }

    /// Counts by status, by type and status, and pending split into ready,
    /// scheduled and retrying, from one snapshot.
    ///
    /// # Errors
    /// Database errors.
    pub fn stats(&self) -> Result<Stats> {
        let now = self.now();
        let mut stats = self.backend().stats(now)?;
        let waiting = self.waiting()?;
        stats.paused = waiting
            .iter()
            .filter(|w| w.paused && w.ready > 0)
            .cloned()
            .collect();
        stats.unserved = super::workers::unserved(waiting, &self.live_workers()?);
        Ok(stats)
    }

    /// Answers when the database answers a trivial read.
    ///
    /// # Errors
    /// Database errors.
    pub fn ping(&self) -> Result<()> {
        self.backend().ping()
    }
}
