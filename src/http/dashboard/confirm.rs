//! The jobs page's "all matching" changes ask first: a page that says how
//! many jobs the change would move now and under which filter, with the
//! button that makes it. As `jobq retry`/`cancel` with a filter, jobs enqueued
//! after that page was shown are left alone.

use maud::{html, Markup};

use crate::http::dashboard::guard::{Signed, BASE};
use crate::http::dashboard::jobs::{fields_of, query_of};
use crate::http::dashboard::layout::{num, page, Nav};
use crate::http::errors::ApiError;
use crate::http::response::Response;
use crate::{BulkAction, JobFilter, Queue};

/// The confirmation page of `action` on every job matching `f`: the filter
/// carried as hidden form fields, a link back to the jobs page it came from.
pub(crate) fn page_for(
    queue: &Queue,
    signed: &Signed,
    action: BulkAction,
    f: &JobFilter,
) -> Result<Response, ApiError> {
    let fields = fields_of(f);
    let back = format!("{BASE}/jobs?{}", query_of(f));
    let now = queue.now();
    let n = queue.count_matching(action, f, now)?;
    let (verb, value) = match action {
        BulkAction::Retry => ("Retry", "retry_matching"),
        BulkAction::Cancel => ("Cancel", "cancel_matching"),
    };
    let jobs = if n == 1 { "job" } else { "jobs" };
    let title = format!("{verb} {} matching {jobs}?", num(n));
    let body = html! {
        p { "Filter: " (describe(&fields)) }
        @if action == BulkAction::Cancel {
            p { "Pending jobs end cancelled; running ones are asked to stop." }
        } @else {
            p { "Failed and cancelled jobs become pending, due now, their attempts reset." }
        }
        p { "Jobs enqueued from now on are left alone." }
        form method="post" action={(BASE) "/jobs/bulk"} {
            input type="hidden" name="csrf" value=(signed.session.csrf.0);
            @for (k, v) in &fields {
                input type="hidden" name=(k) value=(v);
            }
            input type="hidden" name="confirm" value=(now.0);
            button name="action" value=(value) disabled[n == 0] { (verb) " " (num(n)) " " (jobs) }
            " "
            a href=(back) { "Back to the jobs" }
        }
    };
    Ok(page(&title, Nav::Jobs, &signed.session, false, body))
}

/// `queue emails, status pending`, or that no filter is set.
fn describe(fields: &[(&str, String)]) -> Markup {
    html! {
        @if fields.is_empty() {
            strong { "none: every job, in every queue" }
        } @else {
            @for (i, (k, v)) in fields.iter().enumerate() {
                @if i > 0 { ", " }
                (k) " " code { (v) }
            }
        }
    }
}
