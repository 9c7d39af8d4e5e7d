//! The tiny_http server behind the guard: a fixed pool of request threads, each
//! reading a request, routing it inside `catch_unwind`, answering JSON, and
//! writing one access log line.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use tiny_http::{Header, Request, Response};

use crate::http::errors::ApiError;
use crate::http::framing::RELAY_HEADER;
use crate::http::request::{ApiRequest, Reply};
use crate::http::routes::{self, Ctx};
use crate::secrets_match;

/// The inner server and its request threads.
pub(crate) struct Inner {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl Inner {
    /// Listens on a loopback port and starts `threads` request threads.
    pub fn start(ctx: Arc<Ctx>, threads: usize) -> std::io::Result<Inner> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let server = Arc::new(server);
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (server, ctx) = (server.clone(), ctx.clone());
            let h = thread::Builder::new()
                .name(format!("jobq-http-{i}"))
                .spawn(move || serve(&server, &ctx))?;
            handles.push(h);
        }
        Ok(Inner {
            server,
            addr,
            threads: handles,
        })
    }

    /// The loopback address the guard relays to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the request threads after the requests they are serving.
    pub fn shutdown(&mut self) {
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

fn serve(server: &tiny_http::Server, ctx: &Ctx) {
    while let Ok(request) = server.recv() {
        answer(request, ctx);
    }
}

/// Reads, routes and answers one request; logs it.
fn answer(mut request: Request, ctx: &Ctx) {
    let started = Instant::now();
    let method = request.method().as_str().to_uppercase();
    let (path, query) = ApiRequest::split_url(request.url());
    let mut req = ApiRequest {
        method,
        path,
        query,
        authorization: header(&request, "Authorization"),
        content_type: header(&request, "Content-Type"),
        body: Vec::new(),
    };
    let limit = u64::try_from(ctx.max_body_bytes).unwrap_or(u64::MAX);
    let read = request
        .as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut req.body);
    let relayed = header(&request, RELAY_HEADER).is_some_and(|k| secrets_match(&k, &ctx.relay_key));
    let result = match read {
        _ if !relayed => Err(ApiError::bad_request(
            "bad_request",
            "connect to the API's address, not to the internal one",
        )),
        Err(_) => Err(ApiError::bad_request(
            "bad_request",
            "could not read the body",
        )),
        Ok(_) => {
            catch_unwind(AssertUnwindSafe(|| routes::handle(ctx, &req))).unwrap_or_else(|_| {
                log::error!("request handler panicked: {} {}", req.method, req.path);
                Err(ApiError::internal())
            })
        }
    };
    let status = respond(request, result);
    log::info!(
        target: "jobq::http::access",
        "{} {} {} {}ms",
        req.method,
        req.path,
        status,
        started.elapsed().as_millis()
    );
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

/// Sends the reply or error as JSON. Returns the status sent.
fn respond(request: Request, result: Result<Reply, ApiError>) -> u16 {
    let (status, body, extra) = match result {
        Ok(r) => (r.status, r.body, Vec::new()),
        Err(e) => (e.status, e.body(), e.headers.clone()),
    };
    let text = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::from_data(text).with_status_code(status);
    let fixed = [
        ("Content-Type", "application/json".to_string()),
        ("Cache-Control", "no-store".to_string()),
    ];
    for (k, v) in fixed.into_iter().chain(extra) {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    if let Err(e) = request.respond(response) {
        log::debug!("could not send a response: {e}");
    }
    status
}
