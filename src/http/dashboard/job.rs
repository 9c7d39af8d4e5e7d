//! One job's page: its fields, lease and fencing token, progress, timeline,
//! error history per attempt, payload and result as formatted JSON; retry
//! and cancel.

use maud::{html, Markup};
use serde_json::Value;

use crate::http::common::parse_id;
use crate::http::dashboard::guard::{redirect, Signed, BASE};
use crate::http::dashboard::layout::{maybe_when, ms, page, status, when, Nav};
use crate::http::dashboard::overview::progress;
use crate::http::errors::ApiError;
use crate::http::response::Response;
use crate::http::session::Sessions;
use crate::{Job, JobStatus, Queue, Timestamp};

/// `GET /dashboard/jobs/{id}`.
pub(crate) fn show(queue: &Queue, signed: &Signed, id: &str) -> Result<Response, ApiError> {
    let job = queue.get(parse_id(id)?)?;
    let now = queue.now();
    let body = html! {
        section #job data-live {
            p.headline {
                (status(job.status)) " " code { (job.id.to_string()) }
                @if job.status == JobStatus::InProgress && job.started_at.is_none() {
                    " " span.note #reserved { "reserved by a worker's prefetch buffer, not started" }
                }
            }
            (actions(&job, signed))
            (fields(&job, now))
        }
        section #timeline data-live { h2 { "Timeline" } (timeline(&job, now)) }
        section #errors data-live { h2 { "Errors by attempt" } (errors(&job)) }
        section { h2 { "Payload" } pre.json #payload { (pretty(&job.payload)) } }
        section #result-section data-live {
            h2 { "Result" }
            @match &job.result {
                Some(r) => pre.json #result { (pretty(r)) },
                None => p.note { "No result." },
            }
        }
    };
    let title = format!("Job {}", job.job_type);
    Ok(page(&title, Nav::None, &signed.session, true, body))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn actions(job: &Job, signed: &Signed) -> Markup {
    let can_retry = matches!(job.status, JobStatus::Failed | JobStatus::Cancelled);
    let can_cancel = matches!(job.status, JobStatus::Pending | JobStatus::InProgress);
    let button = |action: &str, label: &str| {
        html! {
            form.action method="post" action={(BASE) "/jobs/" (job.id.to_string()) "/" (action)} {
                input type="hidden" name="csrf" value=(signed.session.csrf.0);
                button #(action) type="submit" { (label) }
            }
        }
    };
    html! {
        div.actions {
            @if can_retry { (button("retry", "Retry")) }
            @if can_cancel && !job.cancel_requested { (button("cancel", "Cancel")) }
            // Only while it can still matter: a job that has ended keeps the
            // flag, but its request is history.
            @if can_cancel && job.cancel_requested { span.note { "cancel requested" } }
        }
    }
}

fn fields(j: &Job, now: Timestamp) -> Markup {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    html! {
        dl.fields {
            dt { "Job type" } dd #job-type { (j.job_type) }
            dt { "Queue" } dd { a href={(BASE) "/jobs?queue=" (crate::http::dashboard::overview::enc(&j.queue))} { (j.queue) } }
            dt { "Priority" } dd { (j.priority) }
            dt { "Attempts" } dd { (j.attempts) " of " (j.max_attempts) }
            dt { "Owner" } dd { (text(&j.owner)) }
            dt { "Entity" } dd { (text(&j.entity_type)) " " (text(&j.entity_id)) }
            dt { "Progress" } dd { (progress(j)) }
            dt { "Next run" } dd { @if j.status == JobStatus::Pending { (when(j.next_retry, now)) } @else { "—" } }
            dt { "Lease held by" } dd { (text(&j.locked_by)) }
            dt { "Lease expires" } dd { (maybe_when(j.lease_expires_at, now)) }
            dt { "Fencing token" } dd { (j.lease_token) }
            dt { "Last error" } dd.error { (text(&j.error_message)) }
            @if !j.unreadable.is_empty() {
                dt { "Unreadable" } dd { (j.unreadable.join("; ")) }
            }
        }
    }
}

/// The job's life: created, each failed attempt's start and end (from the
/// error history), a mark where a manual retry started the attempts again,
/// the latest attempt's start, and its end.
fn timeline(j: &Job, now: Timestamp) -> Markup {
    const RETRIED: &str = "retried by hand: attempts count from 1 again";
    let mut events: Vec<(Timestamp, String)> = vec![(j.created_at, "created".into())];
    let mut last_attempt = 0;
    for e in history(j) {
        let at = Timestamp(
            e["failed_at"]
                .as_str()
                .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                .map_or(0, |t| t.0),
        );
        let took = e["duration_ms"].as_i64().unwrap_or(0);
        let n = e["attempt"].as_u64().unwrap_or(0);
        let started = Timestamp(at.0 - took);
        if n <= last_attempt {
            events.push((started, RETRIED.into()));
        }
        last_attempt = n;
        events.push((started, format!("attempt {n} started")));
        let class = e["class"].as_str().unwrap_or("");
        events.push((at, format!("attempt {n} failed ({class})")));
    }
    // The latest failure is the current run's when it carries its fencing
    // token (`run`); entries written before `run` existed compare attempts.
    let failed_last = history(j).last().is_some_and(|e| match e["run"].as_i64() {
        Some(run) => run == j.lease_token,
        None => e["attempt"].as_u64() == Some(u64::from(j.attempts)),
    });
    if let (Some(t), false) = (j.started_at, failed_last || j.attempts == 0) {
        if u64::from(j.attempts) <= last_attempt {
            events.push((t, RETRIED.into()));
        }
        events.push((t, format!("attempt {} started", j.attempts)));
    }
    if let (Some(t), true) = (j.completed_at, j.status.is_final()) {
        events.push((t, format!("ended {}", j.status)));
    }
    events.sort_by_key(|e| e.0);
    html! {
        ol.timeline {
            @for (t, what) in &events { li { (when(*t, now)) " " span { (what) } } }
        }
    }
}

fn history(j: &Job) -> Vec<Value> {
    j.error_context
        .as_ref()
        .and_then(|c| c["errors"].as_array().cloned())
        .unwrap_or_default()
}

fn errors(j: &Job) -> Markup {
    let list = history(j);
    html! {
        @if list.is_empty() { p.note { "No failed attempts." } }
        @else {
            table { thead { tr { th { "Attempt" } th { "Class" } th { "Failed at" } th { "Ran" } th { "Worker" } th { "Message" } } }
                tbody { @for e in &list { tr {
                    td.n { (e["attempt"]) }
                    td { (e["class"].as_str().unwrap_or("")) }
                    td { (e["failed_at"].as_str().unwrap_or("")) }
                    td { (ms(e["duration_ms"].as_u64().unwrap_or(0))) }
                    td { (e["worker"].as_str().unwrap_or("")) }
                    td.error { (e["message"].as_str().unwrap_or("")) }
                } } }
            }
        }
    }
}

/// `POST /dashboard/jobs/{id}/retry` and `/cancel`: then back to the job.
pub(crate) fn act(
    queue: &Queue,
    signed: &Signed,
    sessions: &Sessions,
    id: &str,
    action: &str,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let done = match action {
        "retry" => queue
            .retry(id)
            .map(|_| "Retried: the job is pending again."),
        _ => queue.cancel(id).map(|j| match j.status {
            JobStatus::Cancelled => "Cancelled.",
            _ => "Cancel requested: the handler is told to stop.",
        }),
    };
    let message = match done {
        Ok(m) => m.to_string(),
        Err(e @ crate::Error::Conflict { .. }) => format!("Not done: {e}."),
        Err(e) => return Err(e.into()),
    };
    sessions.flash(&signed.id, message);
    Ok(redirect(&format!("{BASE}/jobs/{id}")))
}
