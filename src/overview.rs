//! What a dashboard or a metrics scrape reads at once, cheaply on a big history:
//! capped counts by status, counts of the active jobs by queue and job type,
//! jobs started and finished per minute over a window, the running jobs and the
//! latest failures. Every part is bounded by an index range or a cap, never a
//! scan of the whole history (see [`crate::Queue::overview`]).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::job::{Job, JobStatus};

/// A count that stops at a cap: at least `n`; exactly `n` unless `more`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// How many were counted (at most the cap).
    pub n: u64,
    /// True when counting stopped at the cap: there are more than `n`.
    pub more: bool,
}

impl Count {
    /// A count of `seen` items against a cap of `cap`, where at most `cap + 1`
    /// were looked at: more than `cap` seen means "more than `cap`".
    pub fn capped(seen: u64, cap: u64) -> Count {
        Count {
            n: seen.min(cap),
            more: seen > cap,
        }
    }
}

/// Counts of one (queue, job type): the active jobs, failed ones kept, and
/// those that finished within the overview's window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// The queue (`default` for jobs enqueued without one).
    pub queue: String,
    /// The job type.
    pub job_type: String,
    /// Pending and due now.
    pub ready: u64,
    /// Pending, not yet due, never attempted (a delay or `run_at`).
    pub scheduled: u64,
    /// Pending, waiting out a backoff after a failed attempt.
    pub retrying: u64,
    /// In progress.
    pub running: u64,
    /// Failed jobs still kept (until pruned).
    pub failed: u64,
    /// Completed within the window.
    pub completed_recently: u64,
    /// Failed within the window.
    pub failed_recently: u64,
    /// Cancelled within the window.
    pub cancelled_recently: u64,
    /// The earliest due time of the ready jobs; `None` when none is ready.
    pub oldest_ready: Option<Timestamp>,
}

/// Jobs started and finished in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minute {
    /// The minute's first millisecond.
    pub start: Timestamp,
    /// Jobs whose latest attempt started in this minute.
    pub started: u64,
    /// Jobs that ended completed in this minute.
    pub completed: u64,
    /// Jobs that ended failed in this minute.
    pub failed: u64,
    /// Jobs that ended cancelled in this minute.
    pub cancelled: u64,
}

/// Counts by status, each capped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CappedStatusCounts {
    /// Pending jobs.
    pub pending: Count,
    /// Running jobs.
    pub in_progress: Count,
    /// Completed jobs kept.
    pub completed: Count,
    /// Failed jobs kept.
    pub failed: Count,
    /// Cancelled jobs kept.
    pub cancelled: Count,
}

impl CappedStatusCounts {
    /// The count of `status`.
    pub fn get(&self, status: JobStatus) -> Count {
        match status {
            JobStatus::Pending => self.pending,
            JobStatus::InProgress => self.in_progress,
            JobStatus::Completed => self.completed,
            JobStatus::Failed => self.failed,
            JobStatus::Cancelled => self.cancelled,
        }
    }

    pub(crate) fn set(&mut self, status: JobStatus, count: Count) {
        let slot = match status {
            JobStatus::Pending => &mut self.pending,
            JobStatus::InProgress => &mut self.in_progress,
            JobStatus::Completed => &mut self.completed,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Cancelled => &mut self.cancelled,
        };
        *slot = count;
    }
}

/// What to read for an overview (see [`crate::Queue::overview`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewQuery {
    /// The reference time (the queue clock's now).
    pub now: Timestamp,
    /// The start of the window: per-minute activity and "recently" counts
    /// cover `since..=now`. Aligned to a minute by the caller.
    pub since: Timestamp,
    /// Counts by status stop at this many (shown as "10,000+").
    pub cap: u64,
    /// Group counts look at no more than this many rows per part; beyond it
    /// the overview is marked `partial`.
    pub group_rows: u64,
    /// The most running jobs and recent failures listed.
    pub list: usize,
}

/// A snapshot of the queue for a dashboard, read in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// When it was read.
    pub at: Timestamp,
    /// The start of the window of `minutes` and the "recently" counts.
    pub since: Timestamp,
    /// Counts by status, capped.
    pub by_status: CappedStatusCounts,
    /// Counts by queue and job type, sorted by queue then type.
    pub groups: Vec<GroupCounts>,
    /// True when a group count stopped at the row cap (the groups then count
    /// only part of the jobs).
    pub partial: bool,
    /// One entry per minute of the window, oldest first.
    pub minutes: Vec<Minute>,
    /// How long the oldest ready job has been due, in ms; `None` when none is ready.
    pub oldest_ready_age_ms: Option<u64>,
    /// Running jobs, longest running first.
    pub running: Vec<Job>,
    /// The latest failed jobs, most recent first.
    pub recent_failures: Vec<Job>,
}

/// A change applied to every job matching a filter (see [`crate::Queue::retry_matching`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Manual retry of the failed and cancelled jobs.
    Retry,
    /// Cancel the pending jobs; request a cancel of the running ones.
    Cancel,
}

impl BulkAction {
    /// The statuses whose jobs this change can move (the single-job calls'
    /// rule, see [`crate::state`]): retry failed and cancelled ones, cancel
    /// pending and running ones.
    pub fn moves(self) -> &'static [JobStatus] {
        match self {
            BulkAction::Retry => &[JobStatus::Failed, JobStatus::Cancelled],
            BulkAction::Cancel => &[JobStatus::Pending, JobStatus::InProgress],
        }
    }

    /// Why a filter on `status` is refused for this change: it could move no
    /// job (a change of nothing is a mistake, not a success). `None`: accepted.
    pub fn refuses(self, status: Option<JobStatus>) -> Option<String> {
        let s = status?;
        if self.moves().contains(&s) {
            return None;
        }
        let (verb, statuses) = match self {
            BulkAction::Retry => ("retry", "failed or cancelled"),
            BulkAction::Cancel => ("cancel", "pending or in_progress"),
        };
        Some(format!(
            "{verb} changes only {statuses} jobs, never {s} ones"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_change_refuses_a_status_it_never_moves() {
        for s in JobStatus::ALL {
            for a in [BulkAction::Retry, BulkAction::Cancel] {
                assert_eq!(
                    a.refuses(Some(s)).is_none(),
                    a.moves().contains(&s),
                    "{a:?} {s}"
                );
            }
        }
        assert_eq!(
            BulkAction::Retry
                .refuses(Some(JobStatus::Completed))
                .unwrap(),
            "retry changes only failed or cancelled jobs, never completed ones"
        );
        assert!(BulkAction::Cancel.refuses(None).is_none());
    }

    #[test]
    fn a_capped_count_says_when_it_stopped() {
        assert_eq!(Count::capped(5, 10), Count { n: 5, more: false });
        assert_eq!(Count::capped(10, 10), Count { n: 10, more: false });
        assert_eq!(Count::capped(11, 10), Count { n: 10, more: true });
    }

    #[test]
    fn status_counts_are_set_and_read_by_status() {
        let mut c = CappedStatusCounts::default();
        for (i, s) in JobStatus::ALL.into_iter().enumerate() {
            c.set(s, Count::capped(i as u64, 3));
        }
        assert_eq!(c.get(JobStatus::Failed), Count { n: 3, more: false });
        assert_eq!(c.get(JobStatus::Cancelled), Count { n: 3, more: true });
        assert_eq!(c.get(JobStatus::Pending).n, 0);
    }
}
