//! Helpers for the HTTP tests: a real server on 127.0.0.1:0 over a temp file,
//! tokens for an admin and two users, and a small client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use jobq::http::{HttpConfig, HttpServer};
use jobq::{JobError, Queue, Registry};

use crate::backends::Db;
use serde_json::Value;

/// A running server with its queue and three tokens.
pub struct Api {
    pub server: HttpServer,
    pub queue: Queue,
    pub base: String,
    pub admin: String,
    pub alice: String,
    pub bob: String,
    agent: ureq::Agent,
    _db: Option<Db>,
}

/// A response: status, JSON body (Null when not JSON), headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Handlers: `email.send` completes, `always.fail` fails permanently.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("email.send", |_: &jobq::JobContext, p: Value| {
        Ok(serde_json::json!({"sent": p}))
    });
    r.register("always.fail", |_: &jobq::JobContext, _: Value| {
        Err(JobError::Permanent("invalid address".into()))
    });
    r.register("call.later", |_: &jobq::JobContext, _: Value| {
        Err(JobError::Snooze(std::time::Duration::from_secs(60)))
    });
    r.register("jobq.prune", |_: &jobq::JobContext, _: Value| {
        Ok(Value::Null)
    });
    r
}

/// The catalogue of the test server: the registry's types, only those.
pub fn catalog() -> jobq::Catalog {
    let mut c = jobq::Catalog::declared_only();
    for t in registry().types() {
        c.declare(jobq::JobType::new(t)).unwrap();
    }
    c
}

/// Starts a server with the default config changed by `tune`.
pub fn start_with(tune: impl FnOnce(&mut HttpConfig)) -> Api {
    start_opts(|o| o, tune)
}

/// Starts a server whose queue options are changed by `opts` (the catalogue is
/// [`catalog`] unless `opts` replaces it) and whose config is changed by `tune`.
pub fn start_opts(
    opts: impl FnOnce(jobq::QueueOptions) -> jobq::QueueOptions,
    tune: impl FnOnce(&mut HttpConfig),
) -> Api {
    let db = Db::sqlite();
    let mut api = start_on_opts(&db, opts, tune);
    api._db = Some(db);
    api
}

/// Starts a server on `db` with the default config.
pub fn start_on(db: &Db) -> Api {
    start_on_opts(db, |o| o, |_| {})
}

/// Starts a server on `db` with the default config changed by `tune`.
pub fn start_on_with(db: &Db, tune: impl FnOnce(&mut HttpConfig)) -> Api {
    start_on_opts(db, |o| o, tune)
}

/// As [`start_opts`], on `db`.
pub fn start_on_opts(
    db: &Db,
    opts: impl FnOnce(jobq::QueueOptions) -> jobq::QueueOptions,
    tune: impl FnOnce(&mut HttpConfig),
) -> Api {
    let base = jobq::QueueOptions::new(db.location())
        .durability(jobq::Durability::Normal)
        .catalog(catalog());
    let queue = Queue::open_with(opts(base)).unwrap();
    let mut config = HttpConfig {
        addr: "127.0.0.1:0".into(),
        ..HttpConfig::default()
    };
    tune(&mut config);
    let server = jobq::http::start(queue.clone(), registry(), config).unwrap();
    let base = format!("http://{}", server.addr());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        // A fresh connection per request: a pooled one may have just been closed
        // by a test's short idle timeout, which would fail the request at random.
        .max_idle_connections(0)
        .build()
        .into();
    Api {
        admin: queue.create_token("root", true).unwrap().secret,
        alice: queue.create_token("alice", false).unwrap().secret,
        bob: queue.create_token("bob", false).unwrap().secret,
        server,
        queue,
        base,
        agent,
        _db: None,
    }
}

/// Starts a server with the default config.
pub fn start() -> Api {
    start_with(|_| {})
}

impl Api {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Any method, optional token, optional (content type, body).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Answer {
        let uri = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&uri);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let res = match body {
            Some((ct, bytes)) => {
                let req = req.header("Content-Type", ct).body(bytes.to_vec()).unwrap();
                self.agent.run(req)
            }
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut res = res.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            text,
            headers,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call("GET", path, token, None)
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        self.call("POST", path, token, Some(("application/json", &bytes)))
    }

    /// Enqueues `job_type` as `token`'s user and returns the job's id.
    pub fn enqueue(&self, token: &str, job_type: &str) -> String {
        let a = self.post_json(
            "/api/v1/jobs",
            Some(token),
            &serde_json::json!({"job_type": job_type}),
        );
        assert_eq!(a.status, 201, "{}", a.text);
        a.body["id"].as_str().unwrap().to_string()
    }
}

/// Sends raw bytes on a new connection and reads until the server closes it
/// (at most `limit`); returns what came back.
pub fn raw(addr: SocketAddr, bytes: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    read_until_closed(&mut s, limit)
}

/// Reads until the peer closes or `limit` passes.
pub fn read_until_closed(s: &mut TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP response.
pub fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The JSON body of a raw HTTP response.
pub fn body_of(response: &str) -> Value {
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Waits for `cond`, failing with `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
