//! Enqueueing: validate, insert, wake idle workers.

use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::new_job::NewJob;
use crate::queue::{validate, Queue};
use crate::store::NewRow;

impl Queue {
    /// Enqueues one job (one autocommit INSERT) and wakes an idle worker of this
    /// process. Returns the stored job.
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::PayloadTooLarge`], [`Error::Busy`],
    /// [`Error::DiskFull`], [`Error::ReadOnly`], or a database error.
    pub fn enqueue(&self, new: NewJob) -> Result<Job> {
        let (job, payload) = validate::build(new, self.now(), &self.inner.opts)?;
        let row = NewRow { job, payload };
        self.backend().insert(std::slice::from_ref(&row))?;
        self.notify_enqueued();
        Ok(row.job)
    }

    /// Enqueues `new` unless a job of its type is already pending, deciding in one
    /// `BEGIN IMMEDIATE` transaction so that processes starting together never
    /// both enqueue one (used for singleton jobs like the daily prune). Returns
    /// the job when it enqueued one.
    ///
    /// # Errors
    /// As [`Queue::enqueue`].
    pub fn enqueue_unless_pending(&self, new: NewJob) -> Result<Option<Job>> {
        let (job, payload) = validate::build(new, self.now(), &self.inner.opts)?;
        let row = NewRow { job, payload };
        if !self.backend().insert_unless_pending(&row)? {
            return Ok(None);
        }
        self.notify_enqueued();
        Ok(Some(row.job))
    }

    /// Checks a job request as [`Queue::enqueue`] would, writing nothing (used to
    /// validate a whole batch and name the first bad entry in the caller's terms).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field, or [`Error::PayloadTooLarge`].
    pub fn check(&self, new: &NewJob) -> Result<()> {
        validate::build(new.clone(), self.now(), &self.inner.opts).map(|_| ())
    }

    /// Enqueues many jobs in one transaction: all or none. Every job is validated
    /// before anything is written. Returns the ids in input order.
    ///
    /// # Errors
    /// As [`Queue::enqueue`]; a validation error names the index of the first bad job
    /// in its reason (`job 3: ...`).
    pub fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let now = self.now();
        let mut rows = Vec::with_capacity(jobs.len());
        for (i, new) in jobs.into_iter().enumerate() {
            let (job, payload) =
                validate::build(new, now, &self.inner.opts).map_err(|e| at_index(i, e))?;
            rows.push(NewRow { job, payload });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.backend().insert(&rows)?;
        self.notify_enqueued();
        Ok(rows.iter().map(|r| r.job.id).collect())
    }
}

fn at_index(i: usize, e: Error) -> Error {
    match e {
        Error::Invalid { field, reason } => Error::Invalid {
            field,
            reason: format!("job {i}: {reason}"),
        },
        other => other,
    }
}
