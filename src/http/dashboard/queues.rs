//! The queues page: every queue's pending and running jobs, limits and pause;
//! pause, resume and change the limits (for every process, as `jobq queue`).

use maud::{html, Markup};

use crate::http::dashboard::guard::{field, redirect, Signed, BASE};
use crate::http::dashboard::layout::{maybe_when, num, page, Nav};
use crate::http::dashboard::overview::enc;
use crate::http::errors::ApiError;
use crate::http::response::Response;
use crate::http::session::Sessions;
use crate::{LimitsChange, Queue, QueueInfo, RateLimit};

/// `GET /dashboard/queues`.
pub(crate) fn list(queue: &Queue, signed: &Signed) -> Result<Response, ApiError> {
    let queues = queue.queues()?;
    let now = queue.now();
    let body = html! {
        table #queues {
            thead { tr {
                th { "Queue" } th { "Pending" } th { "Running" } th { "Paused" }
                th { "Limits" } th { "" }
            } }
            tbody {
                @for q in &queues {
                    tr data-queue=(q.name) {
                        td { a href={(BASE) "/jobs?queue=" (enc(&q.name))} { (q.name) } }
                        td.n { (num(q.pending)) }
                        td.n { (num(q.running)) }
                        td.paused { @if q.paused { "paused" @if q.paused_until.is_some() { " until " (maybe_when(q.paused_until, now)) } } @else { "no" } }
                        td { (limits(q, signed)) }
                        td { (pause_button(q, signed)) }
                    }
                }
                @if queues.is_empty() { tr { td colspan="6" { "No queues yet." } } }
            }
        }
        p.note { "Limits: concurrency is the most jobs of the queue running at once in all processes; a rate such as 100/1m is the most starts per period. Empty: unlimited." }
    };
    // Not live: a refresh would wipe a half-typed limit.
    Ok(page("Queues", Nav::Queues, &signed.session, false, body))
}

fn form_action(q: &QueueInfo, what: &str) -> String {
    format!("{BASE}/queues/{}/{what}", enc(&q.name))
}

fn limits(q: &QueueInfo, signed: &Signed) -> Markup {
    let rate = q.rate_limit.map(|r| r.to_string());
    html! {
        form.limits method="post" action=(form_action(q, "limits")) {
            input type="hidden" name="csrf" value=(signed.session.csrf.0);
            label { "concurrency " input type="text" name="concurrency" size="4" value=[q.concurrency]; }
            label { " rate " input type="text" name="rate_limit" size="7" placeholder="100/1m" value=[rate.as_deref()]; }
            " " button type="submit" { "Save" }
        }
    }
}

fn pause_button(q: &QueueInfo, signed: &Signed) -> Markup {
    let (what, label) = if q.paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    };
    html! {
        form method="post" action=(form_action(q, what)) {
            input type="hidden" name="csrf" value=(signed.session.csrf.0);
            button type="submit" { (label) }
        }
    }
}

/// `POST /dashboard/queues/{name}/pause`, `/resume` and `/limits`.
pub(crate) fn act(
    queue: &Queue,
    signed: &Signed,
    sessions: &Sessions,
    form: &[(String, String)],
    name: &str,
    action: &str,
) -> Result<Response, ApiError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let message = match action {
        "pause" => queue
            .pause_queue(&name, None)
            .map(|_| format!("Queue {name} paused.")),
        "resume" => queue
            .resume_queue(&name)
            .map(|_| format!("Queue {name} resumed.")),
        _ => queue
            .set_queue_limits(&name, change(form)?)
            .map(|_| format!("Queue {name}: limits saved.")),
    };
    let message = message.map_err(|e| match e {
        crate::Error::Invalid { .. } => ApiError::bad_request("bad_form", e.to_string()),
        other => ApiError::from(other),
    })?;
    sessions.flash(&signed.id, message);
    Ok(redirect(&format!("{BASE}/queues")))
}

/// The limits of the form: an empty field removes the limit.
fn change(form: &[(String, String)]) -> Result<LimitsChange, ApiError> {
    let bad = |e: String| ApiError::bad_request("bad_form", e);
    let concurrency = match field(form, "concurrency").map(str::trim) {
        None | Some("") => None,
        Some(n) => Some(n.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            bad(format!(
                "concurrency must be a whole number from 1, not {n:?}"
            ))
        })?),
    };
    let rate = match field(form, "rate_limit").map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(r.parse::<RateLimit>().map_err(|e| bad(e.to_string()))?),
    };
    Ok(LimitsChange {
        concurrency: Some(concurrency),
        rate_limit: Some(rate),
    })
}
