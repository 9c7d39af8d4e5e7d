//! Enqueue-to-start latency on PostgreSQL: another process enqueues at a low
//! rate while this process's idle pool (polling only every `--poll-ms`) is
//! woken by LISTEN/NOTIFY; beside a raw pair of sessions where one commits an
//! INSERT with `pg_notify` and the other, LISTENing, claims on each notification.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use jobq::Durability;
use postgres::fallible_iterator::FallibleIterator;

use crate::args::Args;
use crate::latency::{jobq_cross_process, rows, CROSS_RATE};
use crate::pg_raw;
use crate::util::{mode_name, unix_ns};
use crate::BenchResult;

/// The raw listener: claims on every notification until `n` jobs started;
/// returns when each started (unix ns) by id.
fn raw_listener(url: &str, n: usize, d: Durability) -> BenchResult<HashMap<String, u128>> {
    let mut c = pg_raw::connect(url, d)?;
    c.batch_execute("LISTEN jobq_raw")?;
    let p = pg_raw::Prepared::new(&mut c)?;
    let mut starts = HashMap::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(120);
    while starts.len() < n {
        if Instant::now() > deadline {
            return Err("raw listener: jobs did not start within 120 s".into());
        }
        let got = c
            .notifications()
            .timeout_iter(Duration::from_millis(250))
            .next()?;
        if got.is_none() {
            continue;
        }
        while c.notifications().iter().next()?.is_some() {}
        loop {
            let jobs = pg_raw::claim(&mut c, &p, 100)?;
            if jobs.is_empty() {
                break;
            }
            let at = unix_ns();
            for j in &jobs {
                starts.insert(j.0.clone(), at);
            }
            pg_raw::complete_all(&mut c, &p, &jobs)?;
        }
    }
    Ok(starts)
}

/// Raw: one session enqueues with a notification at `CROSS_RATE` (FULL),
/// another claims on each (under `d`); sorted latencies in ms.
fn raw_cross_session(url: &str, n: usize, d: Durability) -> BenchResult<Vec<f64>> {
    pg_raw::reset(url)?;
    let listener = {
        let url = url.to_string();
        std::thread::spawn(move || raw_listener(&url, n, d).map_err(|e| e.to_string()))
    };
    std::thread::sleep(Duration::from_millis(200)); // the LISTEN is in place
    let mut c = pg_raw::connect(url, Durability::Full)?;
    let gap = Duration::from_secs(1) / CROSS_RATE;
    let mut enqueued = Vec::with_capacity(n);
    let mut next = Instant::now();
    for _ in 0..n {
        next += gap;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let id = pg_raw::insert_notify(&mut c)?;
        enqueued.push((id, unix_ns()));
    }
    let starts = listener.join().map_err(|_| "raw listener panicked")??;
    let mut out = Vec::with_capacity(n);
    for (id, at) in &enqueued {
        let started = starts.get(id).ok_or("a raw job never started")?;
        out.push(started.saturating_sub(*at) as f64 / 1e6);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// The cross-process latency rows: p50 (target <= 5 ms), p99 and max, with
/// the worker side committing its claims under FULL (synchronous_commit on:
/// each claim waits for the WAL flush) and under NORMAL (off).
pub fn run(args: &Args, url: &str) -> BenchResult<Vec<crate::report::Row>> {
    let mut out = Vec::new();
    for d in [Durability::Full, Durability::Normal] {
        let name = format!(
            "pg enqueue-to-start, other process, LISTEN/NOTIFY, poll {} ms, pool {}",
            args.poll_ms,
            mode_name(d)
        );
        if !args.wants(&name) {
            continue;
        }
        pg_raw::reset(url)?;
        let jobq = jobq_cross_process(Path::new(url), args, d)?;
        let raw = raw_cross_session(url, args.latency_jobs.min(100), d)?;
        out.extend(rows(&name, &jobq, Some(&raw), [Some(5.0), None, None]));
    }
    Ok(out)
}
