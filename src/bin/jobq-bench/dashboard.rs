//! The dashboard on a big history: `--dashboard-history` finished jobs (spread
//! over the last 7 days, 1% failed, 0.5% cancelled, 12 job types) and
//! `--dashboard-pending` pending ones; the time to render the overview and the
//! first jobs page (signed in, over HTTP), and a `/metrics` scrape that reads
//! the database gauges. Target: each page under 100 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use jobq::Durability;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::args::Args;
use crate::report::{percentile, Row};
use crate::util::{open_queue, Scratch};
use crate::{raw, BenchResult};

const INSERT: &str = "INSERT INTO jobs (id, job_type, status, payload, attempts, next_retry, \
     created_at, updated_at, started_at, completed_at, error_message, owner) \
     VALUES (?1, ?2, ?3, '{\"n\": 1}', ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10)";

const WEEK_MS: i64 = 7 * 86_400_000;

/// Renders of each page measured.
fn renders(args: &Args) -> usize {
    if args.tiny {
        1
    } else {
        30
    }
}

pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("dashboard") {
        return Ok(Vec::new());
    }
    let path = scratch.file("dashboard");
    fill(&path, args.dashboard_history, args.dashboard_pending)?;
    let queue = open_queue(&path, Durability::Normal)?;
    let token = queue.create_token("bench", true)?.secret;
    let config = jobq::http::HttpConfig {
        addr: "127.0.0.1:0".into(),
        ..jobq::http::HttpConfig::default()
    };
    let server = jobq::http::start(queue.clone(), jobq::Registry::new(), config)?;
    let base = format!("http://{}", server.addr());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let cookie = sign_in(&agent, &base, &token)?;
    let what = format!(
        "{} finished + {} pending",
        args.dashboard_history, args.dashboard_pending
    );
    let mut rows = Vec::new();
    for (page, path) in [
        ("overview", "/dashboard"),
        ("first jobs page", "/dashboard/jobs"),
    ] {
        let ms = timed(renders(args), || {
            get(&agent, &base, path, &[("Cookie", &cookie)])
        })?;
        rows.push(row(format!("dashboard {page}, {what}"), ms).at_most(100.0));
    }
    let bearer = format!("Bearer {token}");
    let mut ms = Vec::new();
    for _ in 0..renders(args).min(5) {
        std::thread::sleep(Duration::from_millis(2_100)); // past the gauge cache
        let started = Instant::now();
        get(&agent, &base, "/metrics", &[("Authorization", &bearer)])?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    rows.push(row(
        format!("/metrics with the database gauges read, {what}"),
        ms,
    ));
    server.shutdown();
    Scratch::remove(&path);
    Ok(rows)
}

fn row(name: String, mut ms: Vec<f64>) -> Row {
    ms.sort_by(f64::total_cmp);
    let p95 = percentile(&ms, 95.0);
    Row::new(format!("{name} (p95 {p95:.1} ms)"), "ms", ms).lower()
}

/// Times `n` calls of `f` after one warm-up call, in ms each.
fn timed(n: usize, mut f: impl FnMut() -> BenchResult<()>) -> BenchResult<Vec<f64>> {
    f()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f()?;
        out.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

fn get(agent: &ureq::Agent, base: &str, path: &str, headers: &[(&str, &str)]) -> BenchResult<()> {
    let mut req = agent.get(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = req.call()?;
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_string()?;
    if status != 200 || body.is_empty() {
        return Err(format!("GET {path}: {status}").into());
    }
    Ok(())
}

fn sign_in(agent: &ureq::Agent, base: &str, token: &str) -> BenchResult<String> {
    let res = agent
        .post(format!("{base}/dashboard/login"))
        .header("Origin", base)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(format!("token={token}"))?;
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?;
    Ok(cookie.to_string())
}

/// `history` finished jobs over the last 7 days and `pending` due ones.
fn fill(path: &Path, history: usize, pending: usize) -> BenchResult<()> {
    drop(open_queue(path, Durability::Normal)?);
    let mut conn = raw::open(path, Durability::Normal)?;
    let now = raw::now_ms();
    let step = WEEK_MS / i64::try_from(history.max(1))?;
    insert(&mut conn, history, |i| {
        let status = match i % 200 {
            0 | 1 => "failed",
            2 => "cancelled",
            _ => "completed",
        };
        (status, now - WEEK_MS + i64::try_from(i).unwrap_or(0) * step)
    })?;
    insert(&mut conn, pending, |i| {
        ("pending", now - i64::try_from(i).unwrap_or(0))
    })?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

fn insert(
    conn: &mut Connection,
    n: usize,
    at: impl Fn(usize) -> (&'static str, i64),
) -> BenchResult<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(INSERT)?;
            for &i in chunk {
                let (status, t) = at(i);
                let done = (status != "pending").then_some(t);
                let error = (status == "failed").then_some("upstream said: invalid input");
                stmt.execute(params![
                    jobq::JobId::new().as_uuid().as_bytes().to_vec(),
                    format!("type{}", i % 12),
                    status,
                    i64::from(done.is_some()),
                    t,
                    done.unwrap_or(t),
                    done.map(|d| d - 50),
                    done,
                    error,
                    format!("user{}", i % 7),
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}
