//! The jobs page: filters, keyset pages (never an OFFSET), a capped count,
//! and bulk retry and cancel of the selected jobs or of all matching ones.

use maud::{html, Markup};

use crate::http::dashboard::confirm;
use crate::http::dashboard::guard::{field, redirect, Signed, BASE};
use crate::http::dashboard::layout::{count, job_link, page, status, when, Nav};
use crate::http::dashboard::overview::enc;
use crate::http::errors::ApiError;
use crate::http::request::cut;
use crate::http::response::Response;
use crate::{BulkAction, Error, Job, JobFilter, JobId, JobStatus, Queue, COUNT_CAP};

/// Jobs per page.
const PAGE: usize = 50;
/// The filter fields, as query parameters and form fields.
const FIELDS: [&str; 6] = [
    "status",
    "queue",
    "job_type",
    "owner",
    "entity_type",
    "entity_id",
];

/// The filter of a query string or form (empty fields are unset; a field
/// given twice is refused, as the API refuses it).
pub(crate) fn filter_of(pairs: &[(String, String)]) -> Result<JobFilter, ApiError> {
    for name in FIELDS {
        if pairs.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("{name} is given more than once"),
            ));
        }
    }
    let get = |name: &str| {
        field(pairs, name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let status = match get("status") {
        Some(s) => Some(
            s.parse::<JobStatus>()
                .map_err(|e| ApiError::bad_request("bad_query", e.to_string()))?,
        ),
        None => None,
    };
    Ok(JobFilter {
        status,
        queue: get("queue"),
        job_type: get("job_type"),
        entity_type: get("entity_type"),
        entity_id: get("entity_id"),
        owner: get("owner"),
    })
}

/// The filter as a query string (`status=failed&owner=al`), for links.
pub(super) fn query_of(f: &JobFilter) -> String {
    let values = [
        f.status.map(|s| s.as_str().to_string()),
        f.queue.clone(),
        f.job_type.clone(),
        f.owner.clone(),
        f.entity_type.clone(),
        f.entity_id.clone(),
    ];
    FIELDS
        .iter()
        .zip(values)
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(&v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /dashboard/jobs`.
pub(crate) fn list(
    queue: &Queue,
    signed: &Signed,
    query: &[(String, String)],
) -> Result<Response, ApiError> {
    let f = filter_of(query)?;
    let cursor = field(query, "cursor").filter(|c| !c.is_empty());
    let (jobs, next) = queue.page(&f, PAGE, cursor).map_err(|e| match e {
        Error::Invalid { .. } => ApiError::bad_request("bad_query", e.to_string()),
        other => ApiError::from(other),
    })?;
    let matching = queue.count(&f, COUNT_CAP)?;
    let q = query_of(&f);
    let body = html! {
        (filters(&f))
        p #matching { (count(matching)) " matching" @if cursor.is_some() { " · " a href={(BASE) "/jobs?" (q)} { "back to the newest" } } }
        (bulk_form(signed, &f))
        (table(&jobs, queue.now()))
        @if let Some(next) = next {
            p.pager { a #older href={(BASE) "/jobs?" (q) @if !q.is_empty() { "&" } "cursor=" (enc(&next))} { "Older →" } }
        }
    };
    Ok(page("Jobs", Nav::Jobs, &signed.session, false, body))
}

fn filters(f: &JobFilter) -> Markup {
    let text = |name: &'static str, label: &'static str, value: &Option<String>| {
        html! { label { (label) " " input type="text" name=(name) value=[value.as_deref()]; } }
    };
    html! {
        form #filters method="get" action={(BASE) "/jobs"} {
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in JobStatus::ALL {
                    option value=(s.as_str()) selected[f.status == Some(s)] { (s.as_str()) }
                }
            } }
            (text("queue", "Queue", &f.queue))
            (text("job_type", "Job type", &f.job_type))
            (text("owner", "Owner", &f.owner))
            (text("entity_type", "Entity type", &f.entity_type))
            (text("entity_id", "Entity id", &f.entity_id))
            button type="submit" { "Filter" }
        }
    }
}

/// The filter's set fields as (name, value) form fields.
pub(super) fn fields_of(f: &JobFilter) -> Vec<(&'static str, String)> {
    let values = [
        f.status.map(|s| s.as_str().to_string()),
        f.queue.clone(),
        f.job_type.clone(),
        f.owner.clone(),
        f.entity_type.clone(),
        f.entity_id.clone(),
    ];
    FIELDS
        .into_iter()
        .zip(values)
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

/// The bulk form: its buttons act on the checked rows (`form="bulk"`) or on
/// every job matching the filter, carried as hidden fields (those ask first:
/// see `confirm.rs`).
fn bulk_form(signed: &Signed, f: &JobFilter) -> Markup {
    html! {
        form #bulk method="post" action={(BASE) "/jobs/bulk"} {
            input type="hidden" name="csrf" value=(signed.session.csrf.0);
            @for (k, v) in fields_of(f) {
                input type="hidden" name=(k) value=(v);
            }
            button name="action" value="retry_selected" { "Retry selected" }
            button name="action" value="cancel_selected" { "Cancel selected" }
            // Only the changes the status filter leaves something to move.
            @if BulkAction::Retry.refuses(f.status).is_none() {
                button name="action" value="retry_matching" { "Retry all matching" }
            }
            @if BulkAction::Cancel.refuses(f.status).is_none() {
                button name="action" value="cancel_matching" { "Cancel all matching" }
            }
        }
    }
}

fn table(jobs: &[Job], now: crate::Timestamp) -> Markup {
    html! {
        table #jobs {
            thead { tr {
                th { input #select-all type="checkbox" aria-label="Select all"; }
                th { "Job" } th { "Queue" } th { "Type" } th { "Status" } th { "Attempts" }
                th { "Priority" } th { "Owner" } th { "Entity" } th { "Created" } th { "Updated" }
            } }
            tbody {
                @for j in jobs {
                    tr data-id=(j.id.to_string()) {
                        td { input type="checkbox" name="id" value=(j.id.to_string()) form="bulk" aria-label="Select"; }
                        td { (job_link(j.id)) }
                        td { (j.queue) }
                        td { (j.job_type) }
                        td { (status(j.status)) }
                        td.n { (j.attempts) "/" (j.max_attempts) }
                        td.n { (j.priority) }
                        td { (j.owner.as_deref().unwrap_or("")) }
                        td { @if let (Some(t), Some(i)) = (&j.entity_type, &j.entity_id) { (t) ":" (i) } }
                        td { (when(j.created_at, now)) }
                        td { (when(j.updated_at, now)) }
                    }
                }
                @if jobs.is_empty() { tr { td colspan="11" { "No jobs match." } } }
            }
        }
    }
}

/// `POST /dashboard/jobs/bulk`: the action on the selected or matching jobs,
/// then back to the list with what was done. As the API and the CLI: an id
/// that is not one is refused (400), an id selected twice counts once, and a
/// "matching" change with a status it never moves is refused (400).
pub(crate) fn bulk(
    queue: &Queue,
    signed: &Signed,
    form: &[(String, String)],
    sessions: &crate::http::session::Sessions,
) -> Result<Response, ApiError> {
    let f = filter_of(form)?;
    let mut ids: Vec<JobId> = Vec::new();
    for (_, v) in form.iter().filter(|(k, _)| k == "id") {
        let id: JobId = v.parse().map_err(|_| {
            ApiError::bad_request("bad_form", format!("not a job id: {:?}", cut(v)))
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let message = match field(form, "action").unwrap_or("") {
        "retry_selected" => each(&ids, "retried", |id| queue.retry(id).map(drop))?,
        "cancel_selected" => each(&ids, "cancelled", |id| queue.cancel(id).map(drop))?,
        a @ ("retry_matching" | "cancel_matching") => {
            let (action, done) = match a {
                "retry_matching" => (BulkAction::Retry, "Retried"),
                _ => (BulkAction::Cancel, "Cancelled"),
            };
            refused_by(&f, action)?;
            let Some(confirmed) = field(form, "confirm") else {
                return confirm::page_for(queue, signed, action, &f);
            };
            let shown: i64 = confirmed.parse().map_err(|_| {
                ApiError::bad_request("bad_form", format!("not a time: {:?}", cut(confirmed)))
            })?;
            let n = queue.change_matching(action, &f, crate::Timestamp(shown))?;
            format!("{done} {}.", jobs(n))
        }
        _ => return Err(ApiError::bad_request("bad_form", "unknown action")),
    };
    sessions.flash(&signed.id, message);
    let q = query_of(&f);
    Ok(redirect(&format!("{BASE}/jobs?{q}")))
}

/// `1 matching job`, `3 matching jobs`.
fn jobs(n: u64) -> String {
    match n {
        1 => "1 matching job".into(),
        n => format!("{n} matching jobs"),
    }
}

/// Refuses a status filter that `action` never moves (it would change
/// nothing), as the API (422) and the CLI (exit 2) do.
fn refused_by(f: &JobFilter, action: BulkAction) -> Result<(), ApiError> {
    match action.refuses(f.status) {
        Some(why) => Err(ApiError::bad_request("bad_form", why)),
        None => Ok(()),
    }
}

/// Applies `act` to each id; says how many it changed, how many were not
/// found, and how many their status kept from changing. Any other error
/// (the database) ends the action with that error.
fn each(
    ids: &[JobId],
    done: &str,
    act: impl Fn(JobId) -> crate::Result<()>,
) -> Result<String, ApiError> {
    let (mut ok, mut missing, mut refused) = (0, 0, 0);
    for id in ids {
        match act(*id) {
            Ok(()) => ok += 1,
            Err(Error::NotFound { .. }) => missing += 1,
            Err(e @ (Error::Conflict { .. } | Error::UniqueConflict { .. })) => {
                log::info!("dashboard bulk: {e}");
                refused += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let noun = |n: usize| if n == 1 { "job" } else { "jobs" };
    let mut text = format!("{ok} {} {done}", noun(ok));
    if missing > 0 {
        text += &format!("; {missing} not found");
    }
    if refused > 0 {
        text += &format!("; {refused} could not be (their status does not allow it)");
    }
    Ok(text + ".")
}
