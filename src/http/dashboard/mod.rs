//! The web dashboard under `/dashboard`: server-rendered HTML (maud, which
//! escapes every text), its CSS and script embedded in the binary, a strict
//! Content-Security-Policy, and no request to anywhere else. It works without
//! JavaScript; the script only refreshes the live parts of a page.
//!
//! Signing in takes an admin token and starts a session (HttpOnly,
//! SameSite=Strict cookie). Every POST must come from a page of this server
//! (`Sec-Fetch-Site`/`Origin`), carry the session and its form token.
//!
//! Files, each using only those listed before it: `guard` (sessions,
//! same-origin, headers), `layout` (the page shell, formatters), `overview`,
//! `jobs`, `job`, `queues`, `schedules`, `workers`, `login` (the pages), and this router.

mod confirm;
mod guard;
mod job;
mod jobs;
mod layout;
mod login;
mod overview;
mod queues;
mod schedules;
mod workers;

use crate::http::context::Ctx;
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::Response;

use guard::{field, form, harden, redirect, same_origin, signed_in, Signed, BASE};

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// The routes, for the request counter: templates, never ids.
pub(crate) const ROUTES: [&str; 14] = [
    "/dashboard",
    "/dashboard/login",
    "/dashboard/logout",
    "/dashboard/jobs",
    "/dashboard/jobs/bulk",
    "/dashboard/jobs/{id}",
    "/dashboard/jobs/{id}/{action}",
    "/dashboard/static/{file}",
    "/dashboard/{unknown}",
    "/dashboard/queues",
    "/dashboard/queues/{name}/{action}",
    "/dashboard/schedules",
    "/dashboard/schedules/{name}/run",
    "/dashboard/workers",
];

/// Answers a request below `/dashboard` (`rest` is the path after it); with
/// the route's template for the request counter.
pub(crate) fn answer(ctx: &Ctx, req: &Request, rest: &str) -> (&'static str, Response) {
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let post = req.method == "POST";
    let (route, result) = match (segments.as_slice(), get, post) {
        ([""], true, _) => (ROUTES[0], page(ctx, req, |s| overview::show(&ctx.queue, s))),
        (["login"], true, _) => (ROUTES[1], Ok(login::form_page(200, None))),
        (["login"], _, true) => (
            ROUTES[1],
            checked(req).and_then(|()| login::sign_in(ctx, req)),
        ),
        (["logout"], _, true) => (
            ROUTES[2],
            change(ctx, req, |_, _| Ok(login::sign_out(ctx, req))),
        ),
        (["jobs"], true, _) => (
            ROUTES[3],
            page(ctx, req, |s| jobs::list(&ctx.queue, s, &req.query)),
        ),
        (["jobs", "bulk"], _, true) => (
            ROUTES[4],
            change(ctx, req, |s, f| jobs::bulk(&ctx.queue, s, f, &ctx.sessions)),
        ),
        (["jobs", id], true, _) => (ROUTES[5], page(ctx, req, |s| job::show(&ctx.queue, s, id))),
        (["jobs", id, action @ ("retry" | "cancel")], _, true) => (
            ROUTES[6],
            change(ctx, req, |s, _| {
                job::act(&ctx.queue, s, &ctx.sessions, id, action)
            }),
        ),
        (["static", file], true, _) => (ROUTES[7], asset(file)),
        (["queues"], true, _) => (ROUTES[9], page(ctx, req, |s| queues::list(&ctx.queue, s))),
        (["queues", name, action @ ("pause" | "resume" | "limits")], _, true) => (
            ROUTES[10],
            change(ctx, req, |s, f| {
                queues::act(&ctx.queue, s, &ctx.sessions, f, name, action)
            }),
        ),
        (["schedules"], true, _) => (
            ROUTES[11],
            page(ctx, req, |s| schedules::list(&ctx.queue, s)),
        ),
        (["schedules", name, "run"], _, true) => (
            ROUTES[12],
            change(ctx, req, |s, _| {
                schedules::run(&ctx.queue, s, &ctx.sessions, name)
            }),
        ),
        (["workers"], true, _) => (ROUTES[13], page(ctx, req, |s| workers::list(&ctx.queue, s))),
        (known, _, _) => match allowed(known) {
            Some((route, allow)) => (route, Err(ApiError::method_not_allowed(allow))),
            None => (ROUTES[8], Err(ApiError::not_found("no such page"))),
        },
    };
    (route, result.unwrap_or_else(error_page))
}

/// A dashboard path asked with a method it does not answer: its route and
/// the methods it does (405 with `Allow`, as the API); `None`: no such page.
fn allowed(segments: &[&str]) -> Option<(&'static str, &'static [&'static str])> {
    const GET: &[&str] = &["GET"];
    const POST: &[&str] = &["POST"];
    Some(match segments {
        [""] => (ROUTES[0], GET),
        ["login"] => (ROUTES[1], &["GET", "POST"]),
        ["logout"] => (ROUTES[2], POST),
        ["jobs"] => (ROUTES[3], GET),
        ["jobs", "bulk"] => (ROUTES[4], POST),
        ["jobs", _] => (ROUTES[5], GET),
        ["jobs", _, "retry" | "cancel"] => (ROUTES[6], POST),
        ["static", _] => (ROUTES[7], GET),
        ["queues"] => (ROUTES[9], GET),
        ["queues", _, "pause" | "resume" | "limits"] => (ROUTES[10], POST),
        ["schedules"] => (ROUTES[11], GET),
        ["schedules", _, "run"] => (ROUTES[12], POST),
        ["workers"] => (ROUTES[13], GET),
        _ => return None,
    })
}

/// A page for a signed-in admin; anyone else is sent to sign in.
fn page(
    ctx: &Ctx,
    req: &Request,
    show: impl FnOnce(&Signed) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    match signed_in(ctx, req) {
        Some(s) => show(&s),
        None => Ok(redirect(&format!("{BASE}/login"))),
    }
}

/// Refuses a state-changing request from another site.
fn checked(req: &Request) -> Result<(), ApiError> {
    if same_origin(req) {
        return Ok(());
    }
    log::warn!("dashboard: cross-site {} {} refused", req.method, req.path);
    Err(ApiError::new(
        403,
        "cross_site",
        "cross-site requests are refused",
    ))
}

/// A change: same origin, signed in, and the session's form token.
fn change(
    ctx: &Ctx,
    req: &Request,
    act: impl FnOnce(&Signed, &[(String, String)]) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    checked(req)?;
    let Some(s) = signed_in(ctx, req) else {
        return Err(ApiError::new(403, "signed_out", "sign in first"));
    };
    let fields = form(req);
    if !s.session.csrf_ok(field(&fields, "csrf").unwrap_or("")) {
        return Err(ApiError::new(
            403,
            "bad_form_token",
            "the form is stale; reload the page",
        ));
    }
    act(&s, &fields)
}

fn asset(file: &str) -> Result<Response, ApiError> {
    let (kind, text) = match file {
        "app.css" => ("text/css; charset=utf-8", CSS),
        "app.js" => ("text/javascript; charset=utf-8", JS),
        _ => return Err(ApiError::not_found("no such file")),
    };
    Ok(harden(Response::new(200, kind, text.as_bytes().to_vec())))
}

/// An error as a small page (never the error's internals).
fn error_page(e: ApiError) -> Response {
    use maud::html;
    let markup = html! {
        (maud::DOCTYPE)
        html lang="en" {
            (layout::head("Error"))
            body { main {
                h1 { (e.status) " " (crate::http::response::reason(e.status)) }
                p.error { (e.message) }
                p { a href=(BASE) { "Back to the dashboard" } }
            } }
        }
    };
    let mut r = layout::html_response(e.status, markup);
    for (k, v) in e
        .headers
        .into_iter()
        .filter(|(k, _)| *k != "WWW-Authenticate")
    {
        r = r.with_header(k, v);
    }
    r
}
