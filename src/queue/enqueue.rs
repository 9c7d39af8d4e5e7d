//! Enqueueing: validate, insert (a duplicate of a unique job returns the job
//! holding the key), wake idle workers.

use crate::error::{Error, Result};
use crate::job::JobId;
use crate::new_job::NewJob;
use crate::queue::{validate, Queue};
use crate::store::NewRow;
use crate::unique::Enqueued;

impl Queue {
    /// Enqueues one job and wakes an idle worker of this process. Returns the
    /// stored job; for a job with a uniqueness rule whose key another job holds,
    /// that job instead, marked `duplicate` (nothing is inserted). The check is
    /// the insert's own (a unique index), so it holds across processes.
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::PayloadTooLarge`], [`Error::Busy`],
    /// [`Error::DiskFull`], [`Error::ReadOnly`], or a database error.
    pub fn enqueue(&self, new: NewJob) -> Result<Enqueued> {
        let (job, payload) = validate::build(new, self.now(), &self.inner.opts)?;
        let mut out = self.insert(vec![NewRow { job, payload }])?;
        out.pop().ok_or_else(|| Error::Invalid {
            field: "job",
            reason: "nothing was enqueued".into(),
        })
    }

    /// Checks a job request as [`Queue::enqueue`] would, writing nothing (used to
    /// validate a whole batch and name the first bad entry in the caller's terms).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field, or [`Error::PayloadTooLarge`].
    pub fn check(&self, new: &NewJob) -> Result<()> {
        validate::build(new.clone(), self.now(), &self.inner.opts).map(|_| ())
    }

    /// Enqueues many jobs in one transaction: all or none (a duplicate is not a
    /// failure). Every job is validated before anything is written. Returns the
    /// ids in input order: a duplicate's is the id of the job holding its key
    /// (an earlier job of the same batch, or one already stored).
    ///
    /// # Errors
    /// As [`Queue::enqueue`]; a validation error names the index of the first bad job
    /// in its reason (`job 3: ...`).
    pub fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        Ok(self
            .enqueue_batch(jobs)?
            .into_iter()
            .map(|e| e.job.id)
            .collect())
    }

    /// As [`Queue::enqueue_many`], with each job's outcome: inserted, or the job
    /// holding its unique key, marked `duplicate`.
    ///
    /// # Errors
    /// As [`Queue::enqueue_many`].
    pub fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        let now = self.now();
        let mut rows = Vec::with_capacity(jobs.len());
        for (i, new) in jobs.into_iter().enumerate() {
            let (job, payload) =
                validate::build(new, now, &self.inner.opts).map_err(|e| at_index(i, e))?;
            rows.push(NewRow { job, payload });
        }
        self.insert(rows)
    }

    fn insert(&self, rows: Vec<NewRow>) -> Result<Vec<Enqueued>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let held = self.backend().insert(&rows)?;
        if held.iter().any(Option::is_none) {
            self.notify_enqueued();
        }
        Ok(rows
            .into_iter()
            .zip(held)
            .map(|(row, holder)| match holder {
                None => Enqueued {
                    job: row.job,
                    duplicate: false,
                },
                Some(job) => Enqueued {
                    job,
                    duplicate: true,
                },
            })
            .collect())
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
