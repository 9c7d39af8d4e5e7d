//! The schedules page: every declared schedule with its cron, time zone, next
//! and last fire and the last job's status; run one now (as `jobq schedule run`).

use maud::{html, Markup};

use crate::http::dashboard::guard::{redirect, Signed, BASE};
use crate::http::dashboard::layout::{job_link, maybe_when, page, status, Nav};
use crate::http::dashboard::overview::enc;
use crate::http::errors::ApiError;
use crate::http::response::Response;
use crate::http::session::Sessions;
use crate::{Queue, ScheduleInfo};

/// `GET /dashboard/schedules`.
pub(crate) fn list(queue: &Queue, signed: &Signed) -> Result<Response, ApiError> {
    let schedules = queue.schedules()?;
    let now = queue.now();
    let body = html! {
        table #schedules data-live {
            thead { tr {
                th { "Schedule" } th { "Cron" } th { "Job type" } th { "Next" }
                th { "Last" } th { "Last job" } th { "" }
            } }
            tbody {
                @for s in &schedules {
                    tr data-schedule=(s.name) {
                        td { (s.name) }
                        td { code { (s.cron) } " " small { (s.timezone) } }
                        td { a href={(BASE) "/jobs?job_type=" (enc(&s.job_type))} { (s.job_type) } }
                        td.next { @if s.enabled { (maybe_when(s.next_fire, now)) } @else { "disabled" } }
                        td { (maybe_when(s.last_fire, now)) }
                        td { (last_job(s)) }
                        td { (run_button(s, signed)) }
                    }
                }
                @if schedules.is_empty() {
                    tr { td colspan="7" { "No schedules: declare them as [schedules.NAME] in jobq.toml." } }
                }
            }
        }
        p.note { "Run now enqueues the schedule's job at once; its cron times stay as they are." }
    };
    Ok(page(
        "Schedules",
        Nav::Schedules,
        &signed.session,
        true,
        body,
    ))
}

fn last_job(s: &ScheduleInfo) -> Markup {
    html! {
        @if let Some(id) = s.last_job_id {
            (job_link(id)) " "
            @match s.last_job_status {
                Some(st) => (status(st)),
                None => "pruned",
            }
        } @else { "—" }
    }
}

fn run_button(s: &ScheduleInfo, signed: &Signed) -> Markup {
    html! {
        form method="post" action={(BASE) "/schedules/" (enc(&s.name)) "/run"} {
            input type="hidden" name="csrf" value=(signed.session.csrf.0);
            button type="submit" { "Run now" }
        }
    }
}

/// `POST /dashboard/schedules/{name}/run`.
pub(crate) fn run(
    queue: &Queue,
    signed: &Signed,
    sessions: &Sessions,
    name: &str,
) -> Result<Response, ApiError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let out = queue.run_schedule(&name)?;
    let message = match out.duplicate {
        true => format!(
            "Schedule {name}: job {} already holds this run.",
            out.job.id
        ),
        false => format!("Schedule {name}: job {} enqueued.", out.job.id),
    };
    sessions.flash(&signed.id, message);
    Ok(redirect(&format!("{BASE}/schedules")))
}
