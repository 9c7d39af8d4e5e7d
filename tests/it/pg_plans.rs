//! PostgreSQL only: the overview's statements (the dashboard's home page and
//! the metrics' gauges) read the indexes meant for them, as SQLite's plan test
//! checks there. Each statement is EXPLAINed on a real server over jobs in
//! every status, with `enable_seqscan = off`: a statement that has its index
//! names it in the plan; one whose index is gone falls back to a sequential
//! scan or to another index, and the test fails naming the statement.

use std::time::Duration;

use jobq::{ErrorClass, Failure, JobFilter, JobStatus, NewJob, Queue, QueueOptions};
use postgres::types::{ToSql, Type};
use serde_json::json;

use crate::pg::TestDb;

const LEASE: Duration = Duration::from_secs(300);

/// Jobs in every status: pending (due and delayed), running, completed,
/// failed and cancelled, then ANALYZE so the planner knows them.
fn fill(url: &str) -> Queue {
    let q = Queue::open_with(QueueOptions::new(url)).unwrap();
    let batch = (0..400).map(|i| NewJob::new("mail", json!(i))).collect();
    q.enqueue_many(batch).unwrap();
    for i in 0..50 {
        q.enqueue(NewJob::new("mail", json!(i)).delay(Duration::from_secs(600)))
            .unwrap();
    }
    let claimed = q.claim("w", None, 300, LEASE).unwrap();
    for (i, job) in claimed.iter().enumerate() {
        match i % 3 {
            0 => {
                q.complete(job.id, job.lease_token, &json!(1)).unwrap();
            }
            1 => {
                let f = Failure::new("bad", ErrorClass::Permanent);
                q.fail(job.id, job.lease_token, &f).unwrap();
            }
            _ if i % 2 == 0 => {} // stays running
            _ => {
                q.cancel(job.id).unwrap();
            }
        }
    }
    let pending = JobFilter {
        status: Some(JobStatus::Pending),
        ..JobFilter::default()
    };
    for job in q.list(&pending, 20, None).unwrap().jobs {
        q.cancel(job.id).unwrap();
    }
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute("ANALYZE jobq.jobs").unwrap();
    q
}

/// The plan of `sql` with its parameters bound: every bigint to `since` (a
/// time an hour ago, also a harmless LIMIT), every text to `status`.
fn plan(c: &mut postgres::Client, sql: &str, since: i64, status: &str) -> String {
    let stmt = c.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let values: Vec<Box<dyn ToSql + Sync>> = stmt
        .params()
        .iter()
        .map(|t| -> Box<dyn ToSql + Sync> {
            match *t {
                Type::INT8 => Box::new(since),
                Type::TEXT => Box::new(status.to_string()),
                ref other => panic!("{sql}: no test value for a parameter of type {other}"),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
    let rows = c.query(&stmt, &refs).unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The indexes a statement may read (any one of them, in each part).
fn intended(name: &str, status: &str) -> &'static [&'static str] {
    match (name, status) {
        ("count_status", "pending") | ("pending", _) => &["jobs_claim"],
        ("count_status", "in_progress") | ("running_groups" | "running", _) => {
            &["jobs_lease", "jobs_status"]
        }
        ("started_per_minute", _) => &["jobs_status", "jobs_lease", "jobs_claim"],
        _ => &["jobs_status"],
    }
}

/// What is wrong with `plan` for statement `name`, if anything.
fn check(name: &str, status: &str, plan: &str) -> Option<String> {
    let wanted = intended(name, status);
    let seq = plan.contains("Seq Scan");
    let named = wanted.iter().any(|i| plan.contains(i));
    (seq || !named).then(|| format!("{name} ({status}): wants one of {wanted:?}, got\n{plan}"))
}

#[test]
fn the_overview_statements_read_their_indexes() {
    let Some(db) = TestDb::new("the_overview_statements_read_their_indexes") else {
        return;
    };
    let q = fill(&db.url);
    let since = q.now().as_millis() - 3_600_000;
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    c.batch_execute("SET enable_seqscan = off").unwrap();
    let statements = jobq::postgres_overview_statements();
    assert_eq!(statements.len(), 9, "every statement of the overview");
    let mut wrong = Vec::new();
    for (name, sql) in statements {
        let statuses: Vec<&str> = if *name == "count_status" {
            JobStatus::ALL.iter().map(|s| s.as_str()).collect()
        } else {
            vec!["failed"]
        };
        for status in statuses {
            wrong.extend(check(name, status, &plan(&mut c, sql, since, status)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // The started-per-minute statement reads the three parts by three indexes.
    let started = statements
        .iter()
        .find(|(n, _)| *n == "started_per_minute")
        .unwrap()
        .1;
    let p = plan(&mut c, started, since, "failed");
    for index in ["jobs_status", "jobs_claim"] {
        assert!(p.contains(index), "{index}:\n{p}");
    }
}
