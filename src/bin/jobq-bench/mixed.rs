//! A realistic mixed workload: jobs shaped like a real application's (from
//! `--data`, or synthesized alike), enqueued in batches and run by 4 workers whose
//! handlers read their payloads, beside the same work in raw SQL.

use std::io::BufRead;
use std::path::Path;

use jobq::{Durability, JobContext, JobError, NewJob, Registry};
use rusqlite::TransactionBehavior;
use serde_json::{json, Value};

use crate::args::Args;
use crate::pool::{drain_config, drain_with};
use crate::raw::{self, Typed};
use crate::report::Row;
use crate::util::{open_queue, per_second, Scratch};
use crate::BenchResult;

/// Jobs per `enqueue_many` call (an application's bulk request).
const BATCH: usize = 100;

/// Reads `--data` (JSONL of enqueue requests) or synthesizes 1,000 jobs.
fn records(data: Option<&Path>) -> BenchResult<Vec<NewJob>> {
    let Some(path) = data else {
        return Ok((0..1_000).map(synthetic).collect());
    };
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for line in file.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            out.push(serde_json::from_str::<NewJob>(&line)?);
        }
    }
    if out.is_empty() {
        return Err("--data holds no jobs".into());
    }
    Ok(out)
}

/// A job like the sample's: small documents, mid-size embeddings, big imports.
fn synthetic(i: usize) -> NewJob {
    let rows = |n: usize| (0..n).map(|r| json!({"row": r, "name": format!("élément {r} ✓")}));
    let (job_type, payload) = match i % 10 {
        0..=3 => (
            "document_processing",
            json!({"document_id": i, "pages": i % 40}),
        ),
        4..=6 => (
            "embedding_generation",
            json!({"chunks": (0..(i % 30)).collect::<Vec<_>>()}),
        ),
        7 => (
            "bulk_import",
            json!({"rows": rows(50 + i % 750).collect::<Vec<_>>()}),
        ),
        _ => ("audit_cleanup", json!({"older_than_days": 90})),
    };
    NewJob::new(job_type, payload)
        .priority((i % 3) as i32)
        .owner(format!("user-{:03}", i % 20))
}

/// The error one job in 20 fails with (retryable: it goes back to pending).
const FAILURE: &str = "upstream rate limited (429)";

/// What every handler does: walk the payload and report its size; one job in
/// 20 (by its size) fails as rate limited.
fn work(payload: &Value) -> Result<Value, &'static str> {
    fn nodes(v: &Value) -> u64 {
        match v {
            Value::Array(a) => 1 + a.iter().map(nodes).sum::<u64>(),
            Value::Object(o) => 1 + o.values().map(nodes).sum::<u64>(),
            _ => 1,
        }
    }
    let n = nodes(payload);
    if n % 20 == 7 {
        return Err(FAILURE);
    }
    Ok(json!({"ok": true, "nodes": n}))
}

fn registry(types: &[String]) -> Registry {
    let mut r = Registry::new();
    for t in types {
        r.register(t, |_: &JobContext, p: Value| {
            work(&p).map_err(|e| JobError::Retryable(e.to_string()))
        });
    }
    r
}

/// jobq: enqueue_many in batches, then a 4-worker drain. (enqueue, drain) jobs/s.
fn jobq_mixed(path: &Path, jobs: &[NewJob]) -> BenchResult<(f64, f64)> {
    let queue = open_queue(path, Durability::Full)?;
    let batches: Vec<Vec<NewJob>> = jobs.chunks(BATCH).map(<[NewJob]>::to_vec).collect();
    let started = std::time::Instant::now();
    for batch in batches {
        queue.enqueue_many(batch)?;
    }
    let enqueue = per_second(jobs.len(), started.elapsed());
    let mut types: Vec<String> = jobs.iter().map(|j| j.job_type.clone()).collect();
    types.sort();
    types.dedup();
    let (drain, _) = drain_with(&queue, registry(&types), drain_config(4), jobs.len())?;
    Ok((enqueue, drain))
}

/// Raw: the same rows inserted `BATCH` per transaction, then the claim(100) loop
/// parsing each payload and writing the same result or failure.
fn raw_mixed(path: &Path, jobs: &[NewJob]) -> BenchResult<(f64, f64)> {
    let mut conn = raw::open(path, Durability::Full)?;
    let started = std::time::Instant::now();
    for chunk in jobs.chunks(BATCH) {
        let texts: Vec<String> = chunk.iter().map(|j| j.payload.to_string()).collect();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (j, text) in chunk.iter().zip(&texts) {
            let typed = Typed {
                job_type: &j.job_type,
                priority: j.priority.unwrap_or(0),
                payload: text,
                max_attempts: j.max_attempts.unwrap_or(5),
                refs: [
                    j.entity_type.as_deref(),
                    j.entity_id.as_deref(),
                    j.owner.as_deref(),
                ],
            };
            raw::insert_typed(&tx, &typed)?;
        }
        tx.commit()?;
    }
    let enqueue = per_second(jobs.len(), started.elapsed());
    let started = std::time::Instant::now();
    let done = raw::claim_batch_loop(&mut conn, &|job| {
        let payload: Value = serde_json::from_str(&job.2).unwrap_or(Value::Null);
        work(&payload).map(|v| v.to_string()).map_err(String::from)
    })?;
    Ok((enqueue, per_second(done, started.elapsed())))
}

/// The mixed workload's rows.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("mixed") {
        return Ok(Vec::new());
    }
    let base = records(args.data.as_deref())?;
    let jobs: Vec<NewJob> = base.iter().cycle().take(args.mixed).cloned().collect();
    let bytes: usize = jobs.iter().map(|j| j.payload.to_string().len()).sum();
    let source = if args.data.is_some() {
        "data"
    } else {
        "synthetic"
    };
    let label = format!(
        "mixed {} jobs ({source}, {:.1} MB payloads), FULL",
        jobs.len(),
        bytes as f64 / 1e6
    );
    let (mut je, mut jd, mut re, mut rd) = (vec![], vec![], vec![], vec![]);
    for _ in 0..args.runs {
        let p = scratch.file("mixed");
        let (e, d) = jobq_mixed(&p, &jobs)?;
        Scratch::remove(&p);
        let p = scratch.file("mixed-raw");
        let (e2, d2) = raw_mixed(&p, &jobs)?;
        Scratch::remove(&p);
        je.push(e);
        jd.push(d);
        re.push(e2);
        rd.push(d2);
    }
    let median = crate::report::median;
    Ok(vec![
        Row::new(format!("{label}: enqueue_many x{BATCH}"), "jobs/s", je).raw(median(&re)),
        Row::new(format!("{label}: drain, 4 workers"), "jobs/s", jd).raw(median(&rd)),
    ])
}
