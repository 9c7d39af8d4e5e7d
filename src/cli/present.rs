//! How a job's state reads to a person: which error is news, when a pending
//! job is due, how far a running one is. The JSON output stays the stored job.

use std::time::Duration;

use jobq::{Job, JobStatus, Timestamp};

use crate::cli::table::short;

/// The attempt of the job's last failure, from `error_context.attempt`.
fn failed_attempt(job: &Job) -> Option<u64> {
    job.error_context.as_ref()?.get("attempt")?.as_u64()
}

/// The job's error when it explains the job's current status: a failed job's
/// last error; a pending or cancelled job's when its last failure was its
/// latest attempt (it waits for its retry, or was cancelled while waiting).
/// `None` when the error is history: a running or completed job, a job pending
/// again after a manual retry (attempts reset to 0), a job cancelled while a
/// later attempt ran. `show --json` and `error_context` keep the history.
pub fn current_error(job: &Job) -> Option<&str> {
    let message = job.error_message.as_deref()?;
    let latest =
        job.attempts > 0 && failed_attempt(job).is_none_or(|a| a == u64::from(job.attempts));
    let current = match job.status {
        JobStatus::Failed => true,
        JobStatus::Pending | JobStatus::Cancelled => latest,
        JobStatus::InProgress | JobStatus::Completed => false,
    };
    current.then_some(message)
}

/// A duration in its largest sensible unit, rounded: `42s`, `5m`, `3h`, `2d`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", (s + 30) / 60),
        7_200..172_800 => format!("{}h", (s + 1_800) / 3_600),
        _ => format!("{}d", (s + 43_200) / 86_400),
    }
}

/// A running job's last progress report: `40% compressing`.
fn progress(job: &Job) -> Option<String> {
    let p = job.progress.as_ref()?;
    let fraction = p.get("fraction").and_then(serde_json::Value::as_f64);
    let message = p.get("message").and_then(|m| m.as_str()).unwrap_or("");
    let percent = fraction.map(|f| format!("{:.0}%", (f * 100.0).clamp(0.0, 100.0)));
    let text = [percent.unwrap_or_default(), short(message, 40)].join(" ");
    Some(text.trim().to_string())
}

/// When a pending job is due (`ready`, `in 5m`; `, queue paused` after either
/// when `paused`) and how far a running one is (`40% compressing`, or
/// `running 12s` without a report; `reserved` for a prefetched job no worker
/// has started); empty otherwise.
pub fn due_or_progress(job: &Job, now: Timestamp, paused: bool) -> String {
    let held = if paused { ", queue paused" } else { "" };
    match job.status {
        JobStatus::Pending if job.next_retry <= now => format!("ready{held}"),
        JobStatus::Pending => format!("in {}{held}", human(job.next_retry.since(now))),
        JobStatus::InProgress if job.cancel_requested => "cancel requested".into(),
        JobStatus::InProgress => progress(job).unwrap_or_else(|| match job.started_at {
            Some(started) => format!("running {}", human(now.since(started))),
            None => "reserved (not started)".into(),
        }),
        _ => String::new(),
    }
}

/// One line about the job's state, stable while the state is (no clock
/// reading): for `show --follow`.
pub fn describe(job: &Job) -> String {
    let attempt = format!("attempt {} of {}", job.attempts, job.max_attempts);
    let error = current_error(job).map(|e| short(e, 200));
    match (job.status, error) {
        (JobStatus::Pending, Some(e)) => format!(
            "pending: {attempt} failed: {e}; next attempt in {}",
            human(job.next_retry.since(job.updated_at))
        ),
        (JobStatus::Pending, None) if job.next_retry > job.updated_at => {
            let wait = human(job.next_retry.since(job.updated_at));
            format!("pending: due in {wait} ({})", job.next_retry)
        }
        (JobStatus::Pending, None) => "pending: due now".into(),
        (JobStatus::InProgress, _) => running(job, &attempt),
        (JobStatus::Completed, _) => {
            let result = job.result.as_ref().map_or("null".into(), |r| r.to_string());
            format!("completed: result {}", short(&result, 200))
        }
        (JobStatus::Failed, e) => {
            format!("failed after {attempt}: {}", e.as_deref().unwrap_or("-"))
        }
        (JobStatus::Cancelled, _) => "cancelled".into(),
    }
}

fn running(job: &Job, attempt: &str) -> String {
    let mut line = format!("in_progress: {attempt}");
    if let Some(p) = progress(job) {
        line.push_str(&format!(", {p}"));
    }
    if job.cancel_requested {
        line.push_str(", cancel requested");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(status: JobStatus, attempts: u32, failed_at_attempt: u64) -> Job {
        serde_json::from_value(json!({
            "id": "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01", "job_type": "t", "queue": "default",
            "status": status, "priority": 0, "payload": null, "result": null,
            "attempts": attempts, "max_attempts": 3, "next_retry": "2026-01-01T00:00:10.000Z",
            "error_message": "boom", "error_context": {"attempt": failed_at_attempt},
            "entity_type": null, "entity_id": null, "owner": null,
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:05.000Z",
            "started_at": null, "completed_at": null, "locked_by": null,
            "lease_expires_at": null, "cancel_requested": false, "progress": null
        }))
        .unwrap()
    }

    #[test]
    fn an_error_is_news_only_while_it_explains_the_status() {
        use JobStatus::*;
        let table = [
            (Failed, 3, 3, true),
            (Pending, 1, 1, true),     // waiting for its retry
            (Pending, 0, 3, false),    // manually retried
            (InProgress, 1, 3, false), // running again after a manual retry
            (InProgress, 2, 1, false), // running its retry
            (Cancelled, 1, 1, true),
            (Cancelled, 2, 1, false),
            (Completed, 2, 1, false),
        ];
        for (status, attempts, failed, shown) in table {
            let j = job(status, attempts, failed);
            assert_eq!(
                current_error(&j).is_some(),
                shown,
                "{status} {attempts} {failed}"
            );
        }
    }

    #[test]
    fn durations_read_in_their_largest_unit() {
        let s = Duration::from_secs;
        assert_eq!(human(s(42)), "42s");
        assert_eq!(human(s(300)), "5m");
        assert_eq!(human(s(3 * 3600)), "3h");
        assert_eq!(human(s(3 * 86_400)), "3d");
        assert_eq!(human(s(3 * 3600 - 1)), "3h", "rounded, not cut");
        assert_eq!(human(Duration::from_millis(41_600)), "42s");
    }

    #[test]
    fn a_retrying_job_says_why_and_when() {
        let j = job(JobStatus::Pending, 1, 1);
        assert_eq!(
            describe(&j),
            "pending: attempt 1 of 3 failed: boom; next attempt in 5s"
        );
    }

    #[test]
    fn a_reserved_job_is_not_shown_running() {
        let now = Timestamp::parse_rfc3339("2026-01-01T00:00:12.000Z").unwrap();
        let mut j = job(JobStatus::InProgress, 1, 0);
        j.error_message = None;
        assert_eq!(due_or_progress(&j, now, false), "reserved (not started)");
        j.started_at = Some(Timestamp::parse_rfc3339("2026-01-01T00:00:07.000Z").unwrap());
        assert_eq!(due_or_progress(&j, now, true), "running 5s");
    }

    #[test]
    fn a_pending_job_of_a_paused_queue_says_so() {
        let now = Timestamp::parse_rfc3339("2026-01-01T00:00:12.000Z").unwrap();
        let mut j = job(JobStatus::Pending, 0, 0);
        j.next_retry = now;
        assert_eq!(due_or_progress(&j, now, false), "ready");
        assert_eq!(due_or_progress(&j, now, true), "ready, queue paused");
        j.next_retry = Timestamp::parse_rfc3339("2026-01-01T00:05:12.000Z").unwrap();
        assert_eq!(due_or_progress(&j, now, true), "in 5m, queue paused");
    }
}
