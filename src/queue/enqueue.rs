//! Enqueueing: validate, insert, wake idle workers.

use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::new_job::NewJob;
use crate::queue::{validate, Queue};
use crate::store::enqueue;

impl Queue {
    /// Enqueues one job (one autocommit INSERT) and wakes an idle worker of this
    /// process. Returns the stored job.
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::PayloadTooLarge`], [`Error::Busy`],
    /// [`Error::DiskFull`], [`Error::ReadOnly`], or a database error.
    pub fn enqueue(&self, new: NewJob) -> Result<Job> {
        let (job, payload) = validate::build(new, self.now(), &self.inner.opts)?;
        self.inner.store.write_autocommit(|c| {
            enqueue::insert(c, &job, &payload).map_err(Error::db("enqueue"))
        })?;
        self.notify_enqueued();
        Ok(job)
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
        let added = self.inner.store.write("enqueue_unless_pending", |tx| {
            let op = Error::db("enqueue_unless_pending");
            if enqueue::pending_of_type(tx, &job.job_type).map_err(op)? {
                return Ok(false);
            }
            enqueue::insert(tx, &job, &payload).map_err(Error::db("enqueue_unless_pending"))?;
            Ok(true)
        })?;
        if !added {
            return Ok(None);
        }
        self.notify_enqueued();
        Ok(Some(job))
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
        let mut built = Vec::with_capacity(jobs.len());
        for (i, new) in jobs.into_iter().enumerate() {
            built.push(validate::build(new, now, &self.inner.opts).map_err(|e| at_index(i, e))?);
        }
        let ids = self.inner.store.write("enqueue_many", |tx| {
            for (job, payload) in &built {
                enqueue::insert(tx, job, payload).map_err(Error::db("enqueue_many"))?;
            }
            Ok(built.iter().map(|(j, _)| j.id).collect())
        })?;
        self.notify_enqueued();
        Ok(ids)
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
