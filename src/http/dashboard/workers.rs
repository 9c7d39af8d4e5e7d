//! The workers page: every worker pool the database knows (as `jobq workers`),
//! alive or not, what it serves, its heartbeat, the jobs it runs and those its
//! prefetch holds reserved; refreshed live.

use maud::html;

use crate::http::dashboard::guard::{Signed, BASE};
use crate::http::dashboard::layout::{num, page, when, Nav};
use crate::http::dashboard::overview::enc;
use crate::http::errors::ApiError;
use crate::http::response::Response;
use crate::Queue;

/// `GET /dashboard/workers`.
pub(crate) fn list(queue: &Queue, signed: &Signed) -> Result<Response, ApiError> {
    let workers = queue.workers()?;
    let now = queue.now();
    let alive = workers.iter().filter(|w| w.alive).count();
    let body = html! {
        p #pools data-live { (alive) " of " (workers.len()) " pools alive." }
        table #workers data-live {
            thead { tr {
                th { "Pool" } th { "Alive" } th { "Running" } th { "Reserved" } th { "Job types" }
                th { "Queues" } th { "Heartbeat" } th { "Started" }
            } }
            tbody {
                @for w in &workers {
                    tr data-worker=(w.id) class=(if w.alive { "alive" } else { "dead" }) {
                        td { code { (w.id) } }
                        td.alive { @if w.alive { "yes" } @else { "no" } }
                        td.n { (num(w.running)) }
                        td.n { (num(w.reserved)) }
                        td { @for (i, t) in w.types.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={(BASE) "/jobs?job_type=" (enc(t))} { (t) }
                        } }
                        td { @match &w.queues { Some(qs) => (qs.join(", ")), None => "all" } }
                        td { (when(w.heartbeat_at, now)) }
                        td { (when(w.started_at, now)) }
                    }
                }
                @if workers.is_empty() {
                    tr { td colspan="8" { "No worker pool has run on this database yet." } }
                }
            }
        }
        p.note {
            "Reserved: jobs a pool's prefetch holds claimed (in progress) that no worker has started. "
            "A pool beats every 5 s and counts as dead after 15 s without a beat; "
            code { "jobq recover --worker ID" } " hands a dead pool's jobs back at once."
        }
    };
    Ok(page("Workers", Nav::Workers, &signed.session, true, body))
}
