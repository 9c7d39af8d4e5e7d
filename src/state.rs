//! The job state machine, in one place. The store asks [`next`] which status a
//! call leads to, and its guarded statements (`WHERE status = ...`) repeat the
//! same edges; the tests walk this table against the store.
//!
//! | call | from | to |
//! |---|---|---|
//! | enqueue | (new) | pending |
//! | claim | pending, due | in_progress (attempts + 1, new lease token) |
//! | complete | in_progress | completed (cancelled if a cancel was requested) |
//! | fail | in_progress | pending (retryable, attempts left) or failed (cancelled if requested) |
//! | recover | in_progress, lease expired | as fail, with the retryable error "lease expired" |
//! | release | in_progress | pending, attempt not used (shutdown) |
//! | snooze | in_progress | pending after the delay, attempt not used, snoozes + 1 (failed at [`MAX_SNOOZES`]) |
//! | cancel | pending | cancelled |
//! | cancel | in_progress | in_progress with a cancel request |
//! | cancel | cancelled | cancelled (no-op) |
//! | retry | failed, cancelled | pending (attempts = 0, due now) |
//!
//! Every other pair is refused: `complete`/`fail`/`heartbeat`/`release` as lease
//! lost, `cancel`/`retry` as a conflict naming the current status.

use crate::job::JobStatus;

/// The most times a job may snooze (run later without using an attempt); the
/// next snooze ends it `failed`, so no job loops forever.
pub const MAX_SNOOZES: u32 = 100;

/// The shortest snooze: a shorter delay (zero, or a `Retry-After` date already
/// past, as a server with a skewed clock sends) waits this long instead, so a
/// snoozing job cannot spin through its [`MAX_SNOOZES`] in a burst of requests.
pub const MIN_SNOOZE: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest wait a snooze or a retry delay (`JobError::RetryAfter`, a
/// backoff step) sets: [`crate::MAX_DELAY_S`] seconds, as the longest delay
/// an enqueue accepts, so a due time stays a date the job JSON can show (a
/// longer one, e.g. `Duration::MAX` for "never", waits this long).
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(100_000_000_000);

/// A call that moves a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A worker takes a due pending job.
    Claim,
    /// The handler succeeded.
    Complete,
    /// The handler failed; `retry` is true when the error is retryable and
    /// attempts remain.
    Fail {
        /// Whether the job goes back to pending.
        retry: bool,
    },
    /// Shutdown hands an unfinished job back.
    Release,
    /// The handler asked to run later without using an attempt; `exhausted`
    /// when the job has snoozed [`MAX_SNOOZES`] times already.
    Snooze {
        /// Whether the snoozes are used up.
        exhausted: bool,
    },
    /// A cancel request.
    Cancel,
    /// A manual retry.
    Retry,
}

/// What a transition does to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The job moves to this status.
    To(JobStatus),
    /// The job stays in progress with a cancel request for its handler.
    RequestCancel,
    /// Nothing changes, and that is a success (cancelling a cancelled job).
    Unchanged,
}

/// The move `t` makes from `from`; `cancel_requested` is the job's flag.
/// `None` means the transition is refused.
pub fn next(from: JobStatus, cancel_requested: bool, t: Transition) -> Option<Move> {
    use JobStatus::*;
    use Transition as T;
    let stop_if_cancelled =
        |to: JobStatus| Some(Move::To(if cancel_requested { Cancelled } else { to }));
    match (from, t) {
        (Pending, T::Claim) => Some(Move::To(InProgress)),
        (InProgress, T::Complete) => stop_if_cancelled(Completed),
        (InProgress, T::Fail { retry: true }) => stop_if_cancelled(Pending),
        (InProgress, T::Fail { retry: false }) => stop_if_cancelled(Failed),
        (InProgress, T::Release) => stop_if_cancelled(Pending),
        (InProgress, T::Snooze { exhausted: false }) => stop_if_cancelled(Pending),
        (InProgress, T::Snooze { exhausted: true }) => stop_if_cancelled(Failed),
        (Pending, T::Cancel) => Some(Move::To(Cancelled)),
        (InProgress, T::Cancel) => Some(Move::RequestCancel),
        (Cancelled, T::Cancel) => Some(Move::Unchanged),
        (Failed | Cancelled, T::Retry) => Some(Move::To(Pending)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn every_edge_allowed_and_refused() {
        let ts = [
            Transition::Claim,
            Transition::Complete,
            Transition::Fail { retry: true },
            Transition::Fail { retry: false },
            Transition::Release,
            Transition::Snooze { exhausted: false },
            Transition::Snooze { exhausted: true },
            Transition::Cancel,
            Transition::Retry,
        ];
        let mut allowed = vec![];
        for from in JobStatus::ALL {
            for t in ts {
                if let Some(m) = next(from, false, t) {
                    allowed.push((from, t, m));
                }
            }
        }
        let want = vec![
            (Pending, Transition::Claim, Move::To(InProgress)),
            (Pending, Transition::Cancel, Move::To(Cancelled)),
            (InProgress, Transition::Complete, Move::To(Completed)),
            (
                InProgress,
                Transition::Fail { retry: true },
                Move::To(Pending),
            ),
            (
                InProgress,
                Transition::Fail { retry: false },
                Move::To(Failed),
            ),
            (InProgress, Transition::Release, Move::To(Pending)),
            (
                InProgress,
                Transition::Snooze { exhausted: false },
                Move::To(Pending),
            ),
            (
                InProgress,
                Transition::Snooze { exhausted: true },
                Move::To(Failed),
            ),
            (InProgress, Transition::Cancel, Move::RequestCancel),
            (Failed, Transition::Retry, Move::To(Pending)),
            (Cancelled, Transition::Cancel, Move::Unchanged),
            (Cancelled, Transition::Retry, Move::To(Pending)),
        ];
        assert_eq!(allowed, want);
    }

    #[test]
    fn a_cancel_request_ends_every_exit_from_in_progress_cancelled() {
        for t in [
            Transition::Complete,
            Transition::Fail { retry: true },
            Transition::Fail { retry: false },
            Transition::Release,
            Transition::Snooze { exhausted: false },
        ] {
            assert_eq!(
                next(InProgress, true, t),
                Some(Move::To(Cancelled)),
                "{t:?}"
            );
        }
    }
}
