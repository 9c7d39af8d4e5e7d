//! Moving a queue to another database (SQLite or PostgreSQL, either way):
//! refuse while the source has live leases (or hand them back first), refuse a
//! target that is not empty, copy the jobs in pages (one transaction per page on
//! the target) and the tokens, queue settings and schedule state, then read both
//! sides back and compare their counts and digests.

use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobId, JobStatus};
use crate::queue::{Queue, MAX_PAGE};
use crate::stats::StatusCounts;
use crate::store::Round;
use crate::transfer::{Canonical, Census, MigrateOptions, MigrateStep, Migrated};
use crate::workers::WORKER_STALE;

/// A progress report: the step, rows done so far, rows in all (an estimate).
pub type MigrateProgress<'a> = &'a mut dyn FnMut(MigrateStep, u64, u64);

impl Queue {
    /// Copies every job (every column: history, attempts, fencing token, lease,
    /// unique key, schedule and fire time, progress), every API token (hashes),
    /// the queues' settings and the schedules' state from this queue's database
    /// into `target`'s, `opts.batch` jobs per transaction, then reads both back
    /// and returns their [`Census`]es (compare with [`Migrated::verified`]).
    /// Rows are copied as stored: a job in progress whose lease has expired
    /// stays so, and the target's recovery hands it back once workers run there.
    /// `progress` is called after every page.
    ///
    /// # Errors
    /// [`Error::LiveLeases`] when this database has jobs with a live lease or
    /// live worker pools (unless `opts.release_leases`); [`Error::TargetNotEmpty`];
    /// [`Error::UnreadableRow`] for a row that cannot be copied unchanged (the
    /// pages before it were copied); database errors of either side.
    pub fn migrate_into(
        &self,
        target: &Queue,
        opts: MigrateOptions,
        progress: MigrateProgress<'_>,
    ) -> Result<Migrated> {
        let batch = opts.batch.max(1);
        target.check_empty()?;
        let released = self.check_leases(opts.release_leases)?;
        let total = self.backend().stats(self.now())?.total;
        let copied = self.copy_jobs(target, batch, total, progress)?;
        let settings = self.backend().export_settings()?;
        target.backend().import_settings(&settings)?;
        let source = self.census_with(batch, MigrateStep::VerifySource, total, progress)?;
        let target = target.census_with(batch, MigrateStep::VerifyTarget, total, progress)?;
        Ok(Migrated {
            copied,
            released,
            source,
            target,
        })
    }

    /// Counts by status and digests of every row, read in pages of 1,000: what
    /// [`Queue::migrate_into`] compares. The digest is computed from the decoded
    /// rows, so it is the same for the same rows on SQLite and PostgreSQL.
    ///
    /// # Errors
    /// Database errors.
    pub fn census(&self) -> Result<Census> {
        let batch = MigrateOptions::default().batch;
        self.census_with(batch, MigrateStep::VerifySource, 0, &mut |_, _, _| {})
    }

    fn census_with(
        &self,
        batch: usize,
        step: MigrateStep,
        total: u64,
        progress: MigrateProgress<'_>,
    ) -> Result<Census> {
        let mut digest = Canonical::new();
        let mut jobs = StatusCounts::default();
        let mut after = None;
        let mut read = 0u64;
        loop {
            let page = self.backend().export_jobs(after, batch)?;
            for job in &page {
                digest.job(job);
                jobs.add(job.status, 1);
            }
            read += page.len() as u64;
            progress(step, read, total.max(read));
            match next_after(after, &page)? {
                Some(next) if page.len() == batch => after = Some(next),
                _ => break,
            }
        }
        let settings = self.backend().export_settings()?;
        let mut sd = Canonical::new();
        sd.settings(&settings);
        Ok(Census {
            jobs,
            tokens: settings.tokens.len() as u64,
            queues: settings.queues.len() as u64,
            schedules: settings.schedules.len() as u64,
            jobs_digest: digest.finish(),
            settings_digest: sd.finish(),
        })
    }

    fn copy_jobs(
        &self,
        target: &Queue,
        batch: usize,
        total: u64,
        progress: MigrateProgress<'_>,
    ) -> Result<u64> {
        let mut after = None;
        let mut copied = 0u64;
        loop {
            let page = self.backend().export_jobs(after, batch)?;
            if let Some(bad) = page.iter().find(|j| !j.unreadable.is_empty()) {
                return Err(unreadable(bad));
            }
            if !page.is_empty() {
                target.backend().import_jobs(&page)?;
            }
            copied += page.len() as u64;
            progress(MigrateStep::Copy, copied, total.max(copied));
            match next_after(after, &page)? {
                Some(next) if page.len() == batch => after = Some(next),
                _ => return Ok(copied),
            }
        }
    }

    /// Refuses a target holding any job, token, queue setting or schedule state.
    fn check_empty(&self) -> Result<()> {
        let jobs = self.backend().stats(self.now())?.total;
        let s = self.backend().export_settings()?;
        let others = (s.tokens.len() + s.queues.len() + s.schedules.len()) as u64;
        if jobs > 0 || others > 0 {
            return Err(Error::TargetNotEmpty { jobs, others });
        }
        Ok(())
    }

    /// Refuses live leases and live pools, or with `release` hands the jobs
    /// back (one transaction, the attempt not counted) and forgets the pools.
    /// Returns how many jobs were handed back.
    /// Checks what would make [`Queue::migrate_into`] refuse this database as
    /// its source without `release_leases`: jobs `in_progress` with a live
    /// lease, or worker pools whose heartbeat is fresh. Reads only, so a
    /// caller can check before it opens (and so creates) the target.
    ///
    /// # Errors
    /// [`Error::LiveLeases`]; database errors.
    pub fn check_no_live_leases(&self) -> Result<()> {
        self.check_leases(false).map(|_| ())
    }

    fn check_leases(&self, release: bool) -> Result<u64> {
        let now = self.now();
        let held: Vec<(JobId, i64)> = self
            .running_jobs()?
            .into_iter()
            .filter(|j| j.lease_expires_at.is_some_and(|t| t > now))
            .map(|j| (j.id, j.lease_token))
            .collect();
        let pools: Vec<String> = self
            .backend()
            .workers(now.minus(WORKER_STALE))?
            .into_iter()
            .filter(|w| w.alive)
            .map(|w| w.id)
            .collect();
        if held.is_empty() && pools.is_empty() {
            return Ok(0);
        }
        if !release {
            return Err(Error::LiveLeases {
                jobs: held.len() as u64,
                workers: pools.len() as u64,
            });
        }
        self.hand_back(&held)?;
        for id in &pools {
            self.backend().remove_worker(id)?;
        }
        log::info!("handed {} job(s) back to pending", held.len());
        Ok(held.len() as u64)
    }

    /// As a pool shutting down does: pending again, the attempt not counted.
    fn hand_back(&self, held: &[(JobId, i64)]) -> Result<()> {
        let backoff_for = |t: &str| self.backoff(t);
        let now = self.now();
        self.backend().settle_and_claim(Round {
            starts: &[],
            started_until: now,
            unstarted: &[],
            done: &[],
            failed: &[],
            released: held,
            snoozed: &[],
            claim: None,
            backoff_for: &backoff_for,
            now,
        })?;
        Ok(())
    }

    /// Every job in progress, newest first.
    fn running_jobs(&self) -> Result<Vec<Job>> {
        let filter = JobFilter {
            status: Some(JobStatus::InProgress),
            ..JobFilter::default()
        };
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.backend().find(&filter, cursor, MAX_PAGE)?;
            cursor = page.last().map(Cursor::after);
            let more = page.len() == MAX_PAGE;
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }
}

/// Where the page after `page` starts; an id that does not move forward (a
/// row whose id is not a UUID) stops the move.
fn next_after(after: Option<JobId>, page: &[Job]) -> Result<Option<JobId>> {
    let Some(last) = page.last() else {
        return Ok(None);
    };
    if after.is_some_and(|a| last.id <= a) {
        return Err(unreadable(last));
    }
    Ok(Some(last.id))
}

fn unreadable(job: &Job) -> Error {
    Error::UnreadableRow {
        id: job.id,
        problem: job.unreadable.first().cloned().unwrap_or_default(),
    }
}
