//! Handing back prefetched jobs no worker started (at shutdown, after a
//! cancel request, when their queue is paused, when their reservation was
//! lost, when the pool has stalled for `prefetch_ttl`): out of the pool
//! under its lock, then one transaction that makes
//! them pending again in their old place (`cancelled` when a cancel was
//! requested), their attempts not counted. If that write fails, their
//! reservations run out and any pool's recovery does the same.

use crate::clock::Timestamp;
use crate::job::JobId;
use crate::worker::shared::{PoolState, Shared};
use crate::worker::StopReason;

/// A job the pool holds, and the attempt (lease token) meant: `None` for
/// whichever attempt it holds now.
pub(crate) type Held = (JobId, Option<i64>);

/// A reserved job taken out of the pool to be given back: its id, lease
/// token, and when it was claimed (the start its claim recorded in a
/// rate-limited queue's window has that time, and is forgotten with it).
pub(crate) type Unstarted = (JobId, i64, Timestamp);

impl Shared {
    /// Takes the prefetched jobs among `ids` that no worker has started out
    /// of the pool (the buffer, or a parked thread's hand-off), telling them
    /// `reason`. An entry naming an attempt is left alone when the pool holds
    /// a later one. Returns them with their lease tokens and claim times, for
    /// [`Shared::give_back`].
    pub fn take_unstarted(st: &mut PoolState, ids: &[Held], reason: StopReason) -> Vec<Unstarted> {
        let unstarted: Vec<JobId> = ids
            .iter()
            .filter(|(id, token)| {
                st.running.get(id).is_some_and(|j| {
                    j.reserved
                        && j.started.is_none()
                        && !j.done
                        && token.is_none_or(|t| t == j.lease_token)
                })
            })
            .map(|(id, _)| *id)
            .collect();
        // Abandoned, each leaves the buffer.
        unstarted
            .into_iter()
            .filter_map(|id| {
                Shared::abandon(st, id, reason).map(|j| (id, j.lease_token, j.claimed_at))
            })
            .collect()
    }

    /// Writes the give-back of `held` (taken by [`Shared::take_unstarted`])
    /// in one transaction, counting those written in the pool's `given_back`;
    /// `why` says when, for the log.
    pub fn give_back(&self, held: &[Unstarted], why: &str) {
        if held.is_empty() {
            return;
        }
        let finished = crate::queue::Finished {
            unstarted: held,
            ..crate::queue::Finished::default()
        };
        match self.queue.settle_and_claim(finished, None) {
            Ok(s) => {
                let mut back = 0;
                for ((id, ..), r) in held.iter().zip(&s.unstarted) {
                    match r {
                        Ok(_) => back += 1,
                        Err(e) => log::warn!("job {id}: prefetched, not handed back: {e}"),
                    }
                }
                log::info!("{back} prefetched jobs handed back unstarted ({why})");
                self.state().counts.given_back += back;
                if back > 0 {
                    // Other pools of this process may run them now (other
                    // processes: the backend's notification, or their watch).
                    self.queue.notify_enqueued();
                }
            }
            Err(e) => log::warn!(
                "{} prefetched jobs not handed back {why} ({e}): they come back when \
                 their reservations run out",
                held.len()
            ),
        }
    }
}
