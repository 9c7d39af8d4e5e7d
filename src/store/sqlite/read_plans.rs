//! The index each read of jobs uses (schema version 10), from SQLite's query
//! plan with the values bound (a partial index is usable only when a bound
//! status implies its predicate, so the values matter). Dropping an index a
//! read needs makes its test fail.

use rusqlite::types::ToSql;
use rusqlite::{params_from_iter, Connection};

use crate::clock::Timestamp;
use crate::filter::JobFilter;
use crate::job::JobStatus;
use crate::overview::BulkAction;
use crate::store::sqlite::parts::StatusTerm;
use crate::store::sqlite::{admin, bulk, find, id, read, transfer, workers};
use crate::store::BulkBatch;

/// The plan's steps for `sql` with `values` bound, on the current schema.
fn plan(sql: &str, values: &[&dyn ToSql]) -> Vec<String> {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::store::sqlite::migrate::migrate(&mut conn).unwrap();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(params_from_iter(values), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// Asserts that the plan reads every index of `indexes` and never the whole
/// table (a walk of the key in order, stopped by a LIMIT, is allowed when
/// `walk` says so: no sort then).
fn assert_uses(what: &str, steps: &[String], indexes: &[&str], walk: bool) {
    let joined = steps.join(" | ");
    for ix in indexes {
        assert!(
            joined.contains(&format!("INDEX {ix} "))
                || joined.ends_with(&format!("INDEX {ix}"))
                || joined.contains(&format!("INDEX {ix} (")),
            "{what}: no {ix}: {joined}"
        );
    }
    let scans = steps.iter().any(|s| s == "SCAN jobs");
    if walk {
        assert!(!joined.contains("TEMP B-TREE"), "{what}: sorts: {joined}");
    } else {
        assert!(!scans, "{what}: scans the table: {joined}");
    }
}

fn filter(status: Option<JobStatus>, job_type: Option<&str>) -> JobFilter {
    JobFilter {
        status,
        job_type: job_type.map(str::to_string),
        ..JobFilter::default()
    }
}

#[test]
fn a_page_of_jobs_reads_the_index_of_its_filter() {
    let lim = 50_i64;
    let after = id::key(crate::job::JobId::new());
    let cases: Vec<(JobFilter, &[&str])> = vec![
        (filter(None, Some("mail")), &["jobs_claim", "jobs_status"]),
        (
            filter(Some(JobStatus::Pending), Some("mail")),
            &["jobs_claim"],
        ),
        (
            filter(Some(JobStatus::InProgress), Some("mail")),
            &["jobs_status"],
        ),
        (
            filter(Some(JobStatus::Completed), Some("mail")),
            &["jobs_status"],
        ),
        (filter(Some(JobStatus::Failed), None), &["jobs_status"]),
        (filter(Some(JobStatus::Pending), None), &["jobs_claim"]),
        (
            JobFilter {
                owner: Some("alice".into()),
                ..JobFilter::default()
            },
            &["jobs_owner"],
        ),
        (
            JobFilter {
                entity_type: Some("doc".into()),
                entity_id: Some("7".into()),
                ..JobFilter::default()
            },
            &["jobs_entity"],
        ),
    ];
    for (f, indexes) in &cases {
        for cursor in [None, Some(&after)] {
            let (sql, values) = find::page(f, StatusTerm::Indexed, cursor, &lim);
            assert_uses(&format!("{f:?}"), &plan(&sql, &values), indexes, false);
        }
        let (sql, values) = find::count(f, &lim);
        assert_uses(
            &format!("count {f:?}"),
            &plan(&sql, &values),
            indexes,
            false,
        );
    }
    // Owner and entity pages come out of their index in key order: no sort.
    for (f, _) in &cases[6..] {
        let (sql, values) = find::page(f, StatusTerm::Indexed, None, &lim);
        let p = plan(&sql, &values).join(" | ");
        assert!(!p.contains("TEMP B-TREE"), "{f:?}: {p}");
    }
}

#[test]
fn newest_first_walks_the_key_without_sorting() {
    let lim = 50_i64;
    let all = JobFilter::default();
    let (sql, values) = find::page(&all, StatusTerm::Indexed, None, &lim);
    assert_uses("no filter", &plan(&sql, &values), &[], true);
    let dense = filter(Some(JobStatus::Completed), None);
    let (sql, values) = find::page(&dense, StatusTerm::Scanned, None, &lim);
    assert_uses("a dense status", &plan(&sql, &values), &[], true);
    for f in [
        filter(None, Some("mail")),
        filter(Some(JobStatus::Completed), Some("mail")),
    ] {
        let (sql, values) = find::page(&f, StatusTerm::Scanned, None, &lim);
        assert_uses(
            &format!("a dense type {f:?}"),
            &plan(&sql, &values),
            &[],
            true,
        );
    }
    let nulls = [&None::<String> as &dyn ToSql; 7];
    let mut values: Vec<&dyn ToSql> = nulls.to_vec();
    values.push(&lim);
    assert_uses("Queue::list", &plan(read::LIST, &values), &[], true);
}

#[test]
fn bulk_batches_read_the_index_of_their_filter() {
    let typed = filter(None, Some("mail"));
    let lim = 100_i64;
    for (action, indexes) in [
        (BulkAction::Retry, &["jobs_status"][..]),
        (BulkAction::Cancel, &["jobs_claim", "jobs_status"][..]),
    ] {
        let b = BulkBatch {
            action,
            filter: &typed,
            after: None,
            until: Timestamp(1),
            limit: 100,
            now: Timestamp(1),
        };
        let (sql, values) =
            bulk::candidates_statement(&b, StatusTerm::Indexed, &id::BEFORE_ALL, &lim);
        assert_uses(&format!("{action:?}"), &plan(&sql, &values), indexes, false);
    }
}

#[test]
fn prune_waiting_and_key_ranges_use_their_index() {
    let (list, cutoff, lim) = (r#"["completed"]"#, 1_i64, 10_i64);
    assert_uses(
        "prune",
        &plan(admin::PRUNE, &[&list, &cutoff, &lim]),
        &["jobs_status"],
        false,
    );
    let now = 1_i64;
    assert_uses(
        "waiting",
        &plan(workers::WAITING, &[&now]),
        &["jobs_claim"],
        false,
    );
    let k = id::key(crate::job::JobId::new());
    for (what, sql, values) in [
        (
            "transfer page",
            transfer::NEXT_PAGE,
            vec![&k as &dyn ToSql, &lim],
        ),
        (
            "ids between",
            read::IDS_BETWEEN,
            vec![&k as &dyn ToSql, &k, &lim],
        ),
    ] {
        let p = plan(sql, &values).join(" | ");
        assert!(
            p.contains("PRIMARY KEY") && !p.contains("TEMP B-TREE"),
            "{what}: {p}"
        );
    }
}
