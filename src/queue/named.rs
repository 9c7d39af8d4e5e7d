//! Named queues: listing them with their counts and settings, changing their
//! limits, pausing and resuming. Settings are stored in the database, so they
//! hold for every process and survive restarts.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::queues::{validate_queue_name, LimitsChange, QueueInfo};

impl Queue {
    /// Every known queue (the catalogue's, the stored ones, and those with
    /// pending or running jobs) with its pending and running counts, limits and
    /// pause, sorted by name.
    ///
    /// # Errors
    /// Database errors.
    pub fn queues(&self) -> Result<Vec<QueueInfo>> {
        let known = self.catalog().queue_names();
        self.backend().queue_infos(&known, self.now())
    }

    /// One queue, as [`Queue::queues`] shows it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad name; [`Error::UnknownQueue`] for a queue that
    /// is not known; database errors.
    pub fn queue_info(&self, name: &str) -> Result<QueueInfo> {
        validate_queue_name(name)?;
        self.queues()?
            .into_iter()
            .find(|q| q.name == name)
            .ok_or_else(|| Error::UnknownQueue {
                name: name.to_string(),
            })
    }

    /// Changes a queue's limits at run time (for every process, until changed
    /// again: a pool started with declared limits writes those). Returns the queue
    /// after the change.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad name, a concurrency of 0 or more than
    /// [`crate::MAX_CONCURRENCY`], or a rate limit [`crate::RateLimit::new`]
    /// refuses;
    /// [`Error::UnknownQueue`]; database errors.
    pub fn set_queue_limits(&self, name: &str, change: LimitsChange) -> Result<QueueInfo> {
        self.queue_info(name)?;
        if change
            .concurrency
            .flatten()
            .is_some_and(|n| !(1..=crate::MAX_CONCURRENCY).contains(&n))
        {
            return Err(Error::Invalid {
                field: "concurrency",
                reason: format!(
                    "must be from 1 to {} (null or `none` for unlimited)",
                    crate::MAX_CONCURRENCY
                ),
            });
        }
        if let Some(Some(r)) = &change.rate_limit {
            r.validate()?;
        }
        self.backend().set_queue_limits(name, change, self.now())?;
        self.queue_info(name)
    }

    /// Pauses a queue for `duration` (`None`: until resumed): no process claims
    /// its jobs from the next claim on; running ones finish. Returns the queue.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `for`) for a zero duration or one longer than
    /// [`crate::state::MAX_WAIT`] (10^11 s, as [`crate::Unique::validate`] holds a
    /// period to); otherwise as [`Queue::set_queue_limits`].
    pub fn pause_queue(&self, name: &str, duration: Option<Duration>) -> Result<QueueInfo> {
        self.queue_info(name)?;
        let now = self.now();
        if duration.is_some_and(|d| d.is_zero()) {
            return Err(Error::Invalid {
                field: "for",
                reason: "a pause must last more than 0".into(),
            });
        }
        if duration.is_some_and(|d| d > crate::state::MAX_WAIT) {
            return Err(Error::Invalid {
                field: "for",
                reason: format!(
                    "a pause lasts at most {} s",
                    crate::state::MAX_WAIT.as_secs()
                ),
            });
        }
        let until = duration.map(|d| now.plus(d));
        self.backend().pause_queue(name, until, now)?;
        log::info!("queue {name} paused");
        self.queue_info(name)
    }

    /// Resumes a paused queue (a no-op for one that is not paused). Returns it.
    ///
    /// # Errors
    /// As [`Queue::set_queue_limits`].
    pub fn resume_queue(&self, name: &str) -> Result<QueueInfo> {
        self.queue_info(name)?;
        self.backend().resume_queue(name, self.now())?;
        self.notify_enqueued();
        log::info!("queue {name} resumed");
        self.queue_info(name)
    }

    /// Writes the limits of the catalogue's declared queues to the database
    /// (worker pools do this when they start, so declared limits hold for every
    /// process on the database).
    ///
    /// # Errors
    /// Database errors.
    pub fn apply_declared_queues(&self) -> Result<()> {
        for spec in self.catalog().queues() {
            let change = LimitsChange {
                concurrency: Some(spec.concurrency),
                rate_limit: Some(spec.rate_limit),
            };
            self.backend()
                .set_queue_limits(spec.name(), change, self.now())?;
        }
        Ok(())
    }
}
