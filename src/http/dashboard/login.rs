//! Signing in with an admin token (a form; the server sets the session
//! cookie) and signing out (the session ends, the cookie is cleared).

use maud::{html, DOCTYPE};

use crate::http::context::Ctx;
use crate::http::dashboard::guard::{cookie, field, form, redirect, set_cookie, BASE, COOKIE};
use crate::http::dashboard::layout::{head, html_response};
use crate::http::errors::ApiError;
use crate::http::request::Request;
use crate::http::response::Response;

/// `GET /dashboard/login`: the form (with `problem` said above it).
pub(crate) fn form_page(status: u16, problem: Option<&str>) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.login {
                main {
                    h1 { "jobq" }
                    @if let Some(p) = problem { p.error role="alert" { (p) } }
                    form method="post" action={(BASE) "/login"} {
                        label { "Admin token" input #token type="password" name="token" autocomplete="current-password" required; }
                        button #sign-in type="submit" { "Sign in" }
                    }
                    p.note { "Create one with " code { "jobq token create --user NAME --admin" } "." }
                }
            }
        }
    };
    html_response(status, markup)
}

/// `POST /dashboard/login`: a live admin token starts a session.
pub(crate) fn sign_in(ctx: &Ctx, req: &Request) -> Result<Response, ApiError> {
    let fields = form(req);
    let token = field(&fields, "token").unwrap_or("").trim();
    let who = if token.is_empty() {
        None
    } else {
        ctx.queue.authenticate(token)?
    };
    match who {
        Some(t) if t.admin => {
            let id = ctx.sessions.create(&t.user, token);
            log::info!("dashboard: {} signed in", t.user);
            Ok(redirect(BASE).with_header("Set-Cookie", set_cookie(req, Some(&id))))
        }
        Some(_) => Ok(form_page(403, Some("That token is not an admin's."))),
        None => Ok(form_page(401, Some("That token is not valid."))),
    }
}

/// `POST /dashboard/logout`: ends the session and clears the cookie.
pub(crate) fn sign_out(ctx: &Ctx, req: &Request) -> Response {
    if let Some(id) = cookie(req, COOKIE) {
        ctx.sessions.end(id);
    }
    redirect(&format!("{BASE}/login")).with_header("Set-Cookie", set_cookie(req, None))
}
