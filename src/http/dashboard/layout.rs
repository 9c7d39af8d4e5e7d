//! The page shell (navigation, the signed-in user, sign-out, the live switch)
//! and the small formatters every page shares. Every text goes through maud,
//! which escapes it.

use maud::{html, Markup, DOCTYPE};

use crate::http::dashboard::guard::{harden, BASE};
use crate::http::response::Response;
use crate::http::session::Session;
use crate::{Count, JobStatus, Timestamp};

/// The pages in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Jobs,
    Queues,
    Schedules,
    Workers,
    None,
}

/// A whole page for a signed-in admin. `live`: the script refreshes the
/// page's `data-live` parts every few seconds.
pub(crate) fn page(title: &str, nav: Nav, s: &Session, live: bool, body: Markup) -> Response {
    let item = |href: &str, label: &str, this: Nav| {
        html! { a href=(href) aria-current=[(nav == this).then_some("page")] { (label) } }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-live=[live.then_some("5000")] {
                header {
                    strong { "jobq" }
                    nav {
                        (item(BASE, "Overview", Nav::Overview))
                        (item(&format!("{BASE}/jobs"), "Jobs", Nav::Jobs))
                        (item(&format!("{BASE}/queues"), "Queues", Nav::Queues))
                        (item(&format!("{BASE}/schedules"), "Schedules", Nav::Schedules))
                        (item(&format!("{BASE}/workers"), "Workers", Nav::Workers))
                    }
                    span.user { "Signed in as " b { (s.user) } }
                    @if live {
                        label.live { input #live type="checkbox" checked; " Live" }
                    }
                    form method="post" action={(BASE) "/logout"} {
                        input type="hidden" name="csrf" value=(s.csrf.0);
                        button type="submit" { "Sign out" }
                    }
                }
                @if let Some(message) = &s.flash {
                    p.flash role="status" { (message) }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    html_response(200, markup)
}

/// The `<head>`: the stylesheet and the script, both files of this server.
pub(crate) fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " - jobq" }
            link rel="stylesheet" href={(BASE) "/static/app.css"};
            script src={(BASE) "/static/app.js"} defer {}
        }
    }
}

/// An HTML answer with the dashboard's headers.
pub(crate) fn html_response(status: u16, markup: Markup) -> Response {
    let body = markup.into_string().into_bytes();
    harden(Response::new(status, "text/html; charset=utf-8", body))
}

/// `n` with thousands separators: `1,234,567`.
pub(crate) fn num(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A capped count: `10,000+` when counting stopped at the cap.
pub(crate) fn count(c: Count) -> String {
    format!("{}{}", num(c.n), if c.more { "+" } else { "" })
}

/// A duration in ms, in the largest unit that keeps it readable.
pub(crate) fn ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1e3),
        60_000..=3_599_999 => format!("{:.1} min", ms as f64 / 6e4),
        3_600_000..=172_799_999 => format!("{:.1} h", ms as f64 / 3.6e6),
        _ => format!("{:.1} d", ms as f64 / 8.64e7),
    }
}

/// A time as RFC 3339, with how long ago (or ahead) it is.
pub(crate) fn when(t: Timestamp, now: Timestamp) -> Markup {
    let delta = now.0 - t.0;
    let rel = if delta >= 0 {
        format!("{} ago", ms(delta.unsigned_abs()))
    } else {
        format!("in {}", ms(delta.unsigned_abs()))
    };
    html! { time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (rel) } }
}

/// An optional time, or a dash.
pub(crate) fn maybe_when(t: Option<Timestamp>, now: Timestamp) -> Markup {
    match t {
        Some(t) => when(t, now),
        None => html! { "—" },
    }
}

/// A status as a badge.
pub(crate) fn status(s: JobStatus) -> Markup {
    html! { span class={"status " (s.as_str())} { (s.as_str()) } }
}

/// A link to a job's page, showing the start of its id.
pub(crate) fn job_link(id: crate::JobId) -> Markup {
    let text = id.to_string();
    html! { a.id href={(BASE) "/jobs/" (text)} title=(text) { code { (text[..8]) "…" } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(
            count(Count {
                n: 10_000,
                more: true
            }),
            "10,000+"
        );
        assert_eq!(ms(850), "850 ms");
        assert_eq!(ms(90_000), "1.5 min");
        assert_eq!(ms(7_200_000), "2.0 h");
    }
}
