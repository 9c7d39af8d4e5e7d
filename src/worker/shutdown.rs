//! Shutting a [`WorkerPool`] down: stop claiming, give back the prefetched
//! jobs no worker started, let running jobs finish within the grace, hand
//! back the rest, join the threads and unregister the pool.

use std::time::{Duration, Instant};

use crate::worker::pool::{PoolCounts, WorkerPool};
use crate::worker::shared::Shared;
use crate::worker::StopReason;

impl WorkerPool {
    /// Stops the pool: [`WorkerPool::shutdown`] with its `grace`, a drop with none.
    pub(super) fn stop(&mut self, grace: Duration) -> PoolCounts {
        self.shared.state().stopping = true;
        self.give_back_buffer();
        self.shared.signal.notify();
        let deadline = crate::worker::instant_after(grace);
        while !self.all_written() && Instant::now() < deadline {
            let seen = self.shared.signal.generation();
            self.shared.signal.wait(seen, Duration::from_millis(20));
        }
        self.release_unfinished();
        self.shared.state().give_up = true;
        self.shared.signal.notify();
        if let Some(c) = self.coordinator.take() {
            c.join().ok();
        }
        if let Some(s) = self.supervisor.take() {
            s.join().ok();
        }
        if let Some(w) = self.watcher.take() {
            w.join().ok();
        }
        if let Some(u) = self.unserved.take() {
            u.join().ok();
        }
        {
            let mut st = self.shared.state();
            st.closed = true;
            for (_, t) in st.parked.drain(..) {
                self.shared.wake(&t);
            }
        }
        self.join_idle_threads();
        if let Err(e) = self.shared.queue.remove_pool(&self.shared.config.worker_id) {
            log::warn!("could not unregister worker pool: {e}");
        }
        let counts = self.counts();
        log::log!(
            self.shared.lifecycle_level(),
            "worker pool {} stopped: {counts}",
            self.shared.config.worker_id
        );
        counts
    }

    fn all_written(&self) -> bool {
        let state = self.shared.state();
        !state.in_round
            && state.running.is_empty()
            && state.finished.is_empty()
            && state.starts.is_empty()
    }

    /// Gives back at once the prefetched jobs no worker has started: pending
    /// again in their old place, their attempts not counted, so other
    /// processes can run them while this pool finishes its running jobs.
    fn give_back_buffer(&self) {
        let held = {
            let mut st = self.shared.state_between_rounds();
            let reserved: Vec<_> = st
                .buffer
                .iter()
                .filter(|t| t.reserved)
                .map(|t| (t.job.id, Some(t.job.lease_token)))
                .collect();
            Shared::take_unstarted(&mut st, &reserved, StopReason::Shutdown)
        };
        self.shared.give_back(&held, "at shutdown");
    }

    /// Hands back the jobs whose handlers are still running (and reserved
    /// jobs handed to a worker that has not started them).
    fn release_unfinished(&self) {
        let (held, unstarted): (Vec<_>, Vec<_>) = {
            let mut state = self.shared.state_between_rounds();
            let ids: Vec<_> = state
                .running
                .iter()
                .filter(|(_, r)| !r.done)
                .map(|(id, _)| *id)
                .collect();
            // Jobs waiting in the buffer for a free worker are handed back
            // with the rest (and leave the buffer): none may start now.
            ids.into_iter()
                .filter_map(|id| {
                    let job = Shared::abandon(&mut state, id, StopReason::Shutdown)?;
                    self.shared.settled(&job, None);
                    let unstarted = job.reserved && job.started.is_none();
                    Some(((id, job.lease_token, job.claimed_at), unstarted))
                })
                .partition(|(_, unstarted)| !unstarted)
        };
        let unstarted: Vec<_> = unstarted.into_iter().map(|(u, _)| u).collect();
        self.shared.give_back(&unstarted, "at shutdown");
        for ((id, token, _), _) in held {
            match self.shared.queue.release(id, token) {
                Ok(status) => {
                    log::info!("job {id} handed back at shutdown: now {status}");
                    self.shared.state().counts.released += 1;
                }
                Err(e) => log::warn!("job {id} not handed back at shutdown: {e}"),
            }
        }
        self.shared.signal.notify();
    }

    /// Joins the worker threads, leaving any still stuck in an abandoned handler
    /// (it retires by itself when the handler returns) after a short wait.
    fn join_idle_threads(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        for t in std::mem::take(&mut self.threads) {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                t.join().ok();
            }
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        if self.coordinator.is_some() {
            self.stop(Duration::ZERO);
        }
    }
}
