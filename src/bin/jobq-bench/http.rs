//! Workload 8: the HTTP API in process. Threads of the process per idle
//! keep-alive connection (from `/proc/self/status`), and request latency of
//! `GET /healthz` and `POST /api/v1/jobs` with 1 and 8 keep-alive clients over
//! plain `TcpStream`s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use jobq::http::{HttpConfig, HttpServer};
use jobq::{Durability, Registry};
use serde_json::Value;

use crate::args::Args;
use crate::report::{percentile, Row};
use crate::util::{open_queue, per_second, Scratch};
use crate::BenchResult;

/// Idle keep-alive connections opened for the thread count.
const IDLE_CLIENTS: usize = 10;

/// One keep-alive connection that sends a request and reads its whole response.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> BenchResult<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends `request` and returns the response's status once its body is read.
    fn call(&mut self, request: &[u8]) -> BenchResult<u16> {
        self.stream.write_all(request)?;
        loop {
            if let Some((status, end)) = parse_response(&self.buf)? {
                self.buf.drain(..end);
                return Ok(status);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err("the server closed a keep-alive connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The status and the end of the first whole response in `buf`, if there is one.
fn parse_response(buf: &[u8]) -> BenchResult<Option<(u16, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head = match res.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let length = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .ok_or("a response without Content-Length")?;
    let status = res.code.unwrap_or(0);
    Ok((buf.len() >= head + length).then_some((status, head + length)))
}

/// Threads of this process, from `/proc/self/status`.
fn threads() -> BenchResult<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("Threads:"))
        .ok_or("no Threads: line")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("empty line")?
        .parse()?)
}

fn health_request() -> Vec<u8> {
    b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n".to_vec()
}

pub fn enqueue_request(token: &str) -> Vec<u8> {
    let body = r#"{"job_type":"noop","payload":{"n":1}}"#;
    format!(
        "POST /api/v1/jobs HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Extra threads of the process per idle keep-alive connection that has had
/// one request answered.
fn threads_per_idle_connection(addr: SocketAddr) -> BenchResult<f64> {
    let before = threads()?;
    let mut clients = Vec::new();
    for _ in 0..IDLE_CLIENTS {
        let mut c = Client::connect(addr)?;
        if c.call(&health_request())? != 200 {
            return Err("GET /healthz did not answer 200".into());
        }
        clients.push(c);
    }
    let after = threads()?;
    eprintln!("jobq-bench: http threads {before} -> {after} with {IDLE_CLIENTS} idle clients");
    drop(clients);
    Ok((after as f64 - before as f64) / IDLE_CLIENTS as f64)
}

/// Sorted latencies in ms of `per_client` requests from each of `clients`
/// keep-alive connections sending at once, each expecting `status`; and the
/// requests answered per second.
pub fn latencies(
    addr: SocketAddr,
    clients: usize,
    per_client: usize,
    request: &[u8],
    status: u16,
) -> BenchResult<(Vec<f64>, f64)> {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.to_vec();
            std::thread::spawn(move || -> BenchResult<Vec<f64>> {
                let mut c = Client::connect(addr)?;
                let mut out = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let started = Instant::now();
                    let got = c.call(&request)?;
                    out.push(started.elapsed().as_secs_f64() * 1e3);
                    if got != status {
                        return Err(format!("status {got}, expected {status}").into());
                    }
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "a client panicked")??);
    }
    let rate = per_second(all.len(), started.elapsed());
    all.sort_by(f64::total_cmp);
    Ok((all, rate))
}

/// A server in process on a fresh queue at `path`, and a user's token.
pub fn start_server(path: &Path, durability: Durability) -> BenchResult<(HttpServer, String)> {
    let queue = open_queue(path, durability)?;
    let token = queue.create_token("bench", false)?.secret;
    let mut registry = Registry::new();
    registry.register("noop", |_: &jobq::JobContext, _: Value| Ok(Value::Null));
    let config = HttpConfig {
        addr: "127.0.0.1:0".into(),
        ..HttpConfig::default()
    };
    Ok((jobq::http::start(queue, registry, config)?, token))
}

/// Every HTTP workload.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("http") {
        return Ok(Vec::new());
    }
    let (server, token) = start_server(&scratch.file("http"), Durability::Normal)?;
    let addr = server.addr();
    let per_idle = threads_per_idle_connection(addr)?;
    let mut out = vec![Row::new(
        format!("http threads per idle keep-alive connection ({IDLE_CLIENTS})"),
        "threads",
        vec![per_idle],
    )
    .lower()
    .at_most(1.0)];
    let cases = [
        ("GET /healthz", health_request(), 200),
        ("POST /api/v1/jobs NORMAL", enqueue_request(&token), 201),
    ];
    for (label, request, status) in &cases {
        for clients in [1, 8] {
            let per_client = (args.http_requests / clients).max(1);
            let (got, rate) = latencies(addr, clients, per_client, request, *status)?;
            let name = format!("http {label}, {clients} keep-alive clients");
            out.push(Row::new(format!("{name} rate"), "req/s", vec![rate]));
            for (p, p_name) in [(50.0, "p50"), (99.0, "p99")] {
                let row = Row::new(format!("{name} {p_name}"), "ms", vec![percentile(&got, p)]);
                out.push(row.lower());
            }
        }
    }
    server.shutdown();
    Ok(out)
}
