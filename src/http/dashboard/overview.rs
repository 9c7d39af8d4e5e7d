//! The overview page: counts by status, by queue and job type, the last hour
//! per minute as an inline SVG chart, the oldest ready job's wait, running
//! jobs with their progress, and the latest failures.

use maud::{html, Markup};

use crate::http::dashboard::guard::{Signed, BASE};
use crate::http::dashboard::layout::{count, job_link, ms, num, page, when, Nav};
use crate::http::errors::ApiError;
use crate::http::response::Response;
use crate::{Job, JobStatus, Minute, Overview, OverviewQuery, Queue, Timestamp};

/// Running jobs and failures listed.
const LISTED: usize = 10;

/// `GET /dashboard`.
pub(crate) fn show(queue: &Queue, signed: &Signed) -> Result<Response, ApiError> {
    let o = queue.overview(&OverviewQuery::last_hour(queue.now(), LISTED))?;
    let body = html! {
        section #counts data-live { (statuses(&o)) }
        section #activity data-live {
            h2 { "Last hour" }
            (chart(&o.minutes))
        }
        section #groups data-live { (groups(&o)) }
        section #running data-live {
            h2 { "Running" }
            (running(&o.running, o.at))
        }
        section #failures data-live {
            h2 { "Recent failures" }
            (failures(&o.recent_failures, o.at))
        }
    };
    Ok(page("Overview", Nav::Overview, &signed.session, true, body))
}

fn statuses(o: &Overview) -> Markup {
    html! {
        ul.cards {
            @for s in JobStatus::ALL {
                li {
                    a href={(BASE) "/jobs?status=" (s.as_str())} {
                        span.label { (s.as_str()) }
                        span.n data-status=(s.as_str()) { (count(o.by_status.get(s))) }
                    }
                }
            }
            li {
                span.label { "oldest ready waits" }
                span.n #oldest-ready { (o.oldest_ready_age_ms.map_or("—".to_string(), ms)) }
            }
        }
    }
}

fn groups(o: &Overview) -> Markup {
    html! {
        h2 { "By queue and job type" }
        @if o.partial {
            p.note { "Counted over the first rows only: there are many active jobs." }
        }
        table {
            thead { tr {
                th { "Queue" } th { "Job type" } th { "Ready" } th { "Scheduled" }
                th { "Retrying" } th { "Running" } th { "Failed (kept)" }
                th { "Completed (1 h)" } th { "Failed (1 h)" } th { "Cancelled (1 h)" }
            } }
            tbody {
                @for g in &o.groups {
                    tr {
                        td { a href={(BASE) "/jobs?queue=" (enc(&g.queue))} { (g.queue) } }
                        td { a href={(BASE) "/jobs?job_type=" (enc(&g.job_type))} { (g.job_type) } }
                        td.n { (num(g.ready)) } td.n { (num(g.scheduled)) }
                        td.n { (num(g.retrying)) } td.n { (num(g.running)) }
                        td.n { (num(g.failed)) } td.n { (num(g.completed_recently)) }
                        td.n { (num(g.failed_recently)) } td.n { (num(g.cancelled_recently)) }
                    }
                }
                @if o.groups.is_empty() {
                    tr { td colspan="10" { "No active jobs and nothing finished in the last hour." } }
                }
            }
        }
    }
}

/// A query-string value.
pub(crate) fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Started and finished per minute: bars of finished jobs (completed, failed,
/// cancelled stacked) and a line of started ones.
fn chart(minutes: &[Minute]) -> Markup {
    const W: u64 = 600;
    const H: u64 = 120;
    let peak = minutes
        .iter()
        .map(|m| m.started.max(m.completed + m.failed + m.cancelled))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = W / (minutes.len().max(1) as u64);
    let y = |n: u64| H - n * H / peak;
    let line: Vec<String> = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{},{}", i as u64 * step + step / 2, y(m.started)))
        .collect();
    let total = |f: fn(&Minute) -> u64| num(minutes.iter().map(f).sum());
    html! {
        p.legend {
            span.k.started { "started " (total(|m| m.started)) }
            span.k.completed { "completed " (total(|m| m.completed)) }
            span.k.failed { "failed " (total(|m| m.failed)) }
            span.k.cancelled { "cancelled " (total(|m| m.cancelled)) }
            span.k { "peak " (num(peak)) " / min" }
        }
        svg.chart viewBox={"0 0 " (W) " " (H)} preserveAspectRatio="none" role="img" aria-label="Jobs started and finished per minute over the last hour" {
            @for b in bars(minutes, step, H, peak) {
                rect class=(b.class) x=(b.x) y=(b.y) width=(step.saturating_sub(1).max(1)) height=(b.h) {
                    title { (b.class) " " (b.n) " at " (b.at.to_rfc3339()) }
                }
            }
            polyline.started points=(line.join(" ")) {}
        }
    }
}

/// One bar segment of the chart.
struct Bar {
    class: &'static str,
    x: u64,
    y: u64,
    h: u64,
    n: u64,
    at: Timestamp,
}

/// The stacked bars: per minute, completed at the bottom, then failed, then
/// cancelled.
fn bars(minutes: &[Minute], step: u64, height: u64, peak: u64) -> Vec<Bar> {
    let mut out = Vec::new();
    for (i, m) in minutes.iter().enumerate() {
        let mut top = height;
        for (class, n) in [
            ("completed", m.completed),
            ("failed", m.failed),
            ("cancelled", m.cancelled),
        ] {
            if n == 0 {
                continue;
            }
            let h = (n * height / peak).clamp(1, top.max(1));
            top = top.saturating_sub(h);
            out.push(Bar {
                class,
                x: i as u64 * step,
                y: top,
                h,
                n,
                at: m.start,
            });
        }
    }
    out
}

fn running(jobs: &[Job], now: Timestamp) -> Markup {
    html! {
        @if jobs.is_empty() { p.note { "Nothing is running." } }
        @else {
            table { tbody {
                @for j in jobs {
                    tr {
                        td { (job_link(j.id)) }
                        td { (j.job_type) }
                        td { (progress(j)) }
                        // A prefetched job is in_progress from its claim, but
                        // has no start until a worker takes it.
                        td { @match j.started_at {
                            Some(t) => { "started " (when(t, now)) },
                            None => span.note { "reserved (not started)" },
                        } }
                    }
                }
            } }
        }
    }
}

/// A job's progress bar and message, or nothing reported.
pub(crate) fn progress(j: &Job) -> Markup {
    let Some(p) = &j.progress else {
        return html! { span.note { "no progress reported" } };
    };
    let fraction = p["fraction"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
    let message = p["message"].as_str().unwrap_or("");
    html! {
        progress value=(format!("{fraction:.3}")) max="1" { (format!("{:.0}%", fraction * 100.0)) }
        " " span.pct { (format!("{:.0}%", fraction * 100.0)) }
        @if !message.is_empty() { " " span.message { (message) } }
    }
}

fn failures(jobs: &[Job], now: Timestamp) -> Markup {
    html! {
        @if jobs.is_empty() { p.note { "No failed jobs." } }
        @else {
            table { tbody {
                @for j in jobs {
                    tr {
                        td { (job_link(j.id)) }
                        td { (j.job_type) }
                        td.error { (j.error_message.as_deref().unwrap_or("")) }
                        td { @if let Some(t) = j.completed_at { (when(t, now)) } }
                    }
                }
            } }
        }
    }
}
