//! What a failed attempt writes, decided once for every backend: the backend
//! reads the running attempt ([`Running`]), [`plan_failure`] decides (pure, from
//! the state machine in [`crate::state`]), and the backend writes the
//! [`FailurePlan`] with one fenced statement.

use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::job::{Job, JobStatus};
use crate::retry::{Backoff, ErrorClass};
use crate::state::{next, Move, Transition};

/// The most failed attempts kept in `error_context.errors`.
pub const ERROR_HISTORY: usize = 20;

/// What a backend knows of a running attempt when it fails.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub attempts: u32,
    pub max_attempts: u32,
    pub cancel_requested: bool,
    /// The stored `error_context` text (unreadable text starts the history afresh).
    pub error_context: Option<String>,
    pub locked_by: Option<String>,
    pub job_type: String,
    /// The schedule stored with the job, if any (and readable).
    pub backoff: Option<Backoff>,
    /// When the job was due before this attempt's claim.
    pub next_retry: Timestamp,
    /// The attempt's fencing token: grows at every claim and never resets, so it
    /// numbers the job's runs across manual retries.
    pub lease_token: i64,
}

/// The row a failed attempt leaves.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailurePlan {
    pub status: JobStatus,
    pub next_retry: Timestamp,
    pub error_message: String,
    pub error_context: Value,
    pub completed_at: Option<Timestamp>,
}

/// Decides a failed attempt: back to pending after its backoff when retryable
/// with attempts left, else failed; cancelled when a cancel was requested (or
/// the handler cancelled). The delay is the failure's `retry_after`, else the
/// schedule stored with the job, else `backoff_for(job_type)`.
pub(crate) fn plan_failure(
    run: &Running,
    failure: &Failure,
    backoff_for: &dyn Fn(&str) -> Backoff,
    now: Timestamp,
) -> FailurePlan {
    let retry = failure.class == ErrorClass::Retryable && run.attempts < run.max_attempts;
    let cancelled = failure.cancelled || run.cancel_requested;
    let status = match next(JobStatus::InProgress, cancelled, Transition::Fail { retry }) {
        Some(Move::To(to)) => to,
        _ => unreachable!("fail is always allowed from in_progress"),
    };
    let delay = failure
        .retry_after
        .unwrap_or_else(|| {
            run.backoff
                .clone()
                .unwrap_or_else(|| backoff_for(&run.job_type))
                .delay_after(run.attempts)
        })
        .min(crate::state::MAX_WAIT);
    FailurePlan {
        status,
        next_retry: if status == JobStatus::Pending {
            now.plus(delay)
        } else {
            now
        },
        error_message: failure.message.clone(),
        error_context: error_context(run, failure, now),
        completed_at: status.is_final().then_some(now),
    }
}

fn error_context(run: &Running, failure: &Failure, now: Timestamp) -> Value {
    let class = match failure.class {
        ErrorClass::Retryable => "retryable",
        ErrorClass::Permanent => "permanent",
    };
    let entry = json!({
        "attempt": run.attempts,
        "run": run.lease_token,
        "class": class,
        "message": failure.message,
        "failed_at": now,
        "worker": run.locked_by,
        "duration_ms": failure.duration_ms,
    });
    let mut errors: Vec<Value> = run
        .error_context
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    errors.push(entry.clone());
    let skip = errors.len().saturating_sub(ERROR_HISTORY);
    let mut context = entry;
    context["errors"] = Value::Array(errors.split_off(skip));
    if let Some(map) = context.as_object_mut() {
        map.remove("message");
    }
    context
}

/// True when a claimed job cannot be run as stored: its id, payload or one of the
/// numbers that drive its run does not fit its type. (Unreadable history, i.e.
/// result, error_context or progress, or an unreadable backoff, which falls back
/// to the default, does not stop a run.)
pub(crate) fn cannot_run(job: &Job) -> bool {
    const HISTORY: [&str; 4] = ["result ", "error_context ", "progress ", "backoff "];
    job.unreadable
        .iter()
        .any(|u| !HISTORY.iter().any(|h| u.starts_with(h)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(attempts: u32, max: u32) -> Running {
        Running {
            attempts,
            max_attempts: max,
            cancel_requested: false,
            error_context: None,
            locked_by: Some("w".into()),
            job_type: "t".into(),
            backoff: None,
            next_retry: Timestamp(0),
            lease_token: 1,
        }
    }

    #[test]
    fn retries_until_attempts_run_out_on_the_stored_or_catalogue_schedule() {
        let now = Timestamp(1_000_000);
        let default = |_: &str| Backoff::default();
        let retryable = Failure::new("timed out", ErrorClass::Retryable);
        let p = plan_failure(&run(1, 3), &retryable, &default, now);
        assert_eq!(
            (p.status, p.next_retry),
            (JobStatus::Pending, now.plus(Duration::from_secs(60)))
        );
        let mut stored = run(2, 3);
        stored.backoff = Some(Backoff::new(vec![Duration::from_secs(7)]).unwrap());
        let p = plan_failure(&stored, &retryable, &default, now);
        assert_eq!(p.next_retry, now.plus(Duration::from_secs(7)));
        let p = plan_failure(&run(3, 3), &retryable, &default, now);
        assert_eq!((p.status, p.completed_at), (JobStatus::Failed, Some(now)));
        let permanent = Failure::new("not found", ErrorClass::Permanent);
        assert_eq!(
            plan_failure(&run(1, 3), &permanent, &default, now).status,
            JobStatus::Failed
        );
        let mut asked = run(1, 3);
        asked.cancel_requested = true;
        assert_eq!(
            plan_failure(&asked, &retryable, &default, now).status,
            JobStatus::Cancelled
        );
    }

    #[test]
    fn the_error_history_keeps_the_last_twenty() {
        let now = Timestamp(5);
        let mut r = run(1, 100);
        let f = Failure::new("boom", ErrorClass::Retryable);
        for i in 1..=25 {
            r.attempts = i;
            let p = plan_failure(&r, &f, &|_| Backoff::default(), now);
            r.error_context = Some(p.error_context.to_string());
        }
        let ctx: Value = serde_json::from_str(r.error_context.as_deref().unwrap()).unwrap();
        let errors = ctx["errors"].as_array().unwrap();
        assert_eq!(errors.len(), ERROR_HISTORY);
        assert_eq!(errors[0]["attempt"], 6);
        assert_eq!(ctx["attempt"], 25);
        assert!(ctx.get("message").is_none());
    }
}
