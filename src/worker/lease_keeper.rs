//! Keeping the lease of a job run outside a pool ([`super::run_due`]): a
//! thread renews it every third of the lease and passes a cancel request or
//! a lost lease on to the attempt's stop flag, as a pool's supervisor does,
//! so a job that runs longer than the lease is never recovered while it runs.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::Error;
use crate::job::JobId;
use crate::queue::Queue;
use crate::worker::{StopFlag, StopReason};

/// The shortest interval between renewals (a lease of under 30 ms).
const MIN_EVERY: Duration = Duration::from_millis(10);

/// The attempt whose lease is kept, if any, and whether the keeper ends.
#[derive(Default)]
struct Held {
    attempt: Option<(JobId, i64, Arc<StopFlag>)>,
    done: bool,
}

/// Shared by the thread that runs jobs and the thread that renews leases.
#[derive(Default)]
pub(crate) struct LeaseKeeper {
    held: Mutex<Held>,
    wake: Condvar,
}

impl LeaseKeeper {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on the lease of attempt `token` of job `id` is kept.
    pub fn hold(&self, id: JobId, token: i64, stop: Arc<StopFlag>) {
        self.held().attempt = Some((id, token, stop));
    }

    /// The attempt ended: its lease is no longer renewed.
    pub fn release(&self) {
        self.held().attempt = None;
    }

    /// Ends [`LeaseKeeper::run`] at once.
    pub fn finish(&self) {
        self.held().done = true;
        self.wake.notify_all();
    }

    /// Renews the held attempt's lease to `lease` from now every third of
    /// `lease`, until [`LeaseKeeper::finish`].
    pub fn run(&self, queue: &Queue, lease: Duration) {
        let every = (lease / 3).max(MIN_EVERY);
        let mut held = self.held();
        loop {
            held = self
                .wake
                .wait_timeout_while(held, every, |h| !h.done)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if held.done {
                return;
            }
            let Some((id, token, stop)) = held.attempt.clone() else {
                continue;
            };
            drop(held);
            let renewed = queue.heartbeat(id, token, lease);
            held = self.held();
            let current = held
                .attempt
                .as_ref()
                .is_some_and(|a| a.0 == id && a.1 == token);
            match renewed {
                Ok(true) => stop.request(StopReason::Cancelled),
                Ok(false) => {}
                // Ended meanwhile (its outcome written): nothing to keep.
                Err(_) if !current => {}
                Err(e @ (Error::LeaseLost { .. } | Error::NotFound { .. })) => {
                    log::warn!("job {id}: {e}; telling its handler to stop");
                    stop.request(StopReason::LeaseLost);
                }
                Err(e) => log::error!("job {id}: lease renewal failed: {e}"),
            }
        }
    }
}
