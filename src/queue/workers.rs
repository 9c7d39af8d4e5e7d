//! Live worker pools: registering and beating (pools do it), listing them,
//! what waits by type and queue, due jobs no live pool serves, and handing a
//! dead pool's jobs back at once.

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::stats::Waiting;
use crate::store::Recovered;
use crate::workers::{WorkerInfo, WORKER_STALE};

/// How long a dead pool that holds no job stays listed after its last
/// heartbeat.
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

impl Queue {
    pub(crate) fn register_pool(
        &self,
        id: &str,
        types: &[String],
        queues: Option<&[String]>,
    ) -> Result<()> {
        self.backend()
            .register_worker(id, types, queues, self.now())
    }

    /// Beats pool `id`'s heartbeat. A live pool whose row is gone (forgotten
    /// after a long silence, or recovered by hand while it lived) registers
    /// again, so it is listed and alive once more.
    pub(crate) fn beat_pool(
        &self,
        id: &str,
        types: &[String],
        queues: Option<&[String]>,
    ) -> Result<()> {
        let now = self.now();
        // Pools silent for an hour and holding nothing are forgotten.
        let forget_before = now.minus(FORGET_AFTER);
        if !self.backend().beat_worker(id, now, forget_before)? {
            log::warn!("worker pool {id} was not registered (its registration at start failed, or it was forgotten or recovered as dead); registering it");
            self.register_pool(id, types, queues)?;
        }
        Ok(())
    }

    pub(crate) fn remove_pool(&self, id: &str) -> Result<()> {
        self.backend().remove_worker(id)
    }

    /// Every recorded worker pool, alive or not, with the jobs it holds.
    ///
    /// # Errors
    /// Database errors.
    pub fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.backend().workers(self.now().minus(WORKER_STALE))
    }

    /// Pending jobs by type and queue: how many are due, how many wait, and when
    /// the next of those is due.
    ///
    /// # Errors
    /// Database errors.
    pub fn waiting(&self) -> Result<Vec<Waiting>> {
        let mut waiting = self.backend().waiting(self.now())?;
        let paused = self.paused_queues()?;
        for w in &mut waiting {
            w.paused = paused.contains(&w.queue);
        }
        Ok(waiting)
    }

    /// The names of the queues paused now.
    ///
    /// # Errors
    /// Database errors.
    pub fn paused_queues(&self) -> Result<Vec<String>> {
        self.backend().paused_queues(self.now())
    }

    /// Due jobs that no live worker pool serves (no pool with the type, or none
    /// serving the queue), by type and queue; those of a paused queue are not
    /// counted (they wait for its resume: [`Queue::waiting`] marks them).
    ///
    /// # Errors
    /// Database errors.
    pub fn unserved(&self) -> Result<Vec<Waiting>> {
        Ok(unserved(self.waiting()?, &self.live_workers()?))
    }

    pub(super) fn live_workers(&self) -> Result<Vec<WorkerInfo>> {
        Ok(self.workers()?.into_iter().filter(|w| w.alive).collect())
    }

    /// Hands back at once every job worker pool `worker` holds in progress,
    /// instead of waiting for the leases: each is a failed attempt with the
    /// retryable error "worker NAME stopped (recovered by hand)", and a job that
    /// goes back to pending keeps its place in the run order (a reserved job,
    /// prefetched and never started, goes back unstarted, its attempt not
    /// counted). Refused while the
    /// pool's heartbeat is fresh, unless `force`; a pool that is not alive is
    /// also removed from [`Queue::workers`]. Returns how many jobs.
    ///
    /// # Errors
    /// [`Error::WorkerAlive`] for a live pool without `force`; database errors.
    pub fn recover_worker(&self, worker: &str, force: bool) -> Result<usize> {
        let alive = self.workers()?.iter().any(|w| w.id == worker && w.alive);
        if alive && !force {
            return Err(Error::WorkerAlive {
                worker: worker.to_string(),
            });
        }
        let message = format!("worker {worker} stopped (recovered by hand)");
        let backoff_for = |t: &str| self.backoff(t);
        let done = self
            .backend()
            .recover_worker(worker, &message, self.now(), &backoff_for)?;
        for r in &done {
            log_recovered(worker, r);
        }
        if !alive {
            // Dead, and now holding nothing: off the list of pools.
            self.remove_pool(worker)?;
        }
        if !done.is_empty() {
            self.notify_enqueued();
        }
        Ok(done.len())
    }

    /// [`Queue::recover_worker`] for every worker holding a job whose heartbeat
    /// is not fresh (or that never registered one). Returns how many jobs.
    ///
    /// # Errors
    /// Database errors.
    pub fn recover_dead_workers(&self) -> Result<usize> {
        let live: Vec<String> = self
            .workers()?
            .into_iter()
            .filter(|w| w.alive)
            .map(|w| w.id)
            .collect();
        let holders = self.backend().running_workers()?;
        let mut total = 0;
        for w in holders.iter().filter(|w| !live.contains(w)) {
            total += self.recover_worker(w, true)?;
        }
        Ok(total)
    }
}

/// Logs a job recovered by hand from pool `worker`: a lost attempt is a
/// warning, a reservation handed back unstarted is not.
fn log_recovered(worker: &str, r: &Recovered) {
    let (id, status) = (r.id, r.status);
    if r.reserved {
        log::info!(
            "job {id} reserved by worker {worker} (not started, or its start not yet written) handed back, attempt not counted: now {status}"
        );
    } else {
        log::warn!("job {id} of worker {worker} handed back: now {status}");
    }
}

/// The due ones of `waiting` that no pool of `live` serves, a paused queue's
/// left out.
pub(super) fn unserved(waiting: Vec<Waiting>, live: &[WorkerInfo]) -> Vec<Waiting> {
    waiting
        .into_iter()
        .filter(|w| {
            w.ready > 0 && !w.paused && !live.iter().any(|p| p.serves(&w.job_type, &w.queue))
        })
        .collect()
}
