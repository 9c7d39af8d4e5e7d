//! Test support, not part of the API: a prefetching pool's round driven by
//! hand, so that the black-box tests can check on every backend what a round
//! writes for reserved jobs (their reservation, and a start written in the
//! same round as the job's completion).

use std::time::Duration;

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::{Job, JobId, JobStatus};
use crate::queue::{ClaimSpec, Finished, Queue};

/// What [`Queue::prefetch_round`] did: the starts' and the completions'
/// outcomes in input order, and the jobs reserved.
#[doc(hidden)]
#[derive(Debug)]
pub struct PrefetchRound {
    /// Per start: written, or its refusal.
    pub started: Vec<Result<()>>,
    /// Per completion: the new status, or its refusal.
    pub completed: Vec<Result<JobStatus>>,
    /// The jobs reserved (claimed, not started) for `worker`.
    pub reserved: Vec<Job>,
}

impl Queue {
    /// Test support, not part of the API: one round of a prefetching pool in
    /// one transaction, as the pool writes it: marks `starts` (id, lease
    /// token, start time) started with a lease of `lease`, completes `done`,
    /// then reserves up to `reserve` due jobs of any type for `worker`, each
    /// for `lease`.
    ///
    /// # Errors
    /// The round's database error (then nothing was written); a refused start
    /// or completion is that entry's outcome.
    #[doc(hidden)]
    pub fn prefetch_round(
        &self,
        worker: &str,
        starts: &[(JobId, i64, Timestamp)],
        done: &[(JobId, i64, Value)],
        reserve: usize,
        lease: Duration,
    ) -> Result<PrefetchRound> {
        let finished = Finished {
            starts,
            start_lease: lease,
            done,
            ..Finished::default()
        };
        let claim = ClaimSpec {
            worker,
            types: None,
            queues: None,
            n: reserve,
            lease,
            reserve: true,
            start_now: reserve,
            live: None,
        };
        let s = self.settle_and_claim(finished, Some(claim))?;
        Ok(PrefetchRound {
            started: s.started,
            completed: s.completed,
            reserved: s.claimed,
        })
    }
}
