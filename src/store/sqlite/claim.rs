//! Claiming due jobs: the claim statements, the job types they take, and
//! ending a claimed job that cannot run as stored.

use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobStatus};
use crate::queues::QueueSettings;
use crate::store::fold::share_slots;
use crate::store::sqlite::row::{cannot_run, claim_columns, job_from_claim_row};
use crate::store::sqlite::{queues, read};

/// pending and due -> in_progress (see [`crate::state`]): one statement, at most
/// `?5` jobs of queue `?6`, run order (`?7` = 1: reserved for the pool's
/// prefetch buffer, not started: `started_at` stays NULL; see `reserve.rs`),
/// through the partial index `jobs_claim`. The subquery yields ids (the
/// table's key, which the partial index stores), so each claimed row is one
/// b-tree seek. It returns [`claim_columns!`]: the columns it sets to values
/// the caller knows are not returned, and the rare ones (`CLAIM_RARE`) come
/// back as one flag, last (a flagged row is read again whole). The stored id
/// (the first column) is also kept as it is, so a row whose id is unreadable
/// can still be addressed.
/// `$types` is the job-type condition on `?4` (see [`TypeFilter`]).
///
/// `LIMIT ?5 + 0`, not `LIMIT ?5`: SQLite's planner reads a bare bound LIMIT and
/// marks the statement to be re-prepared whenever it is bound again, which costs
/// a full parse and plan on every claim (measured: a third of the claim's time).
macro_rules! claim_sql {
    ($types:literal) => {
        concat!(
            "UPDATE jobs SET status = 'in_progress', attempts = attempts + 1, \
             lease_token = lease_token + 1, locked_by = ?1, lease_expires_at = ?2, \
             started_at = CASE ?7 WHEN 1 THEN NULL ELSE ?3 END, updated_at = ?3, progress = NULL \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' AND queue = ?6 \
               AND next_retry <= ?3 AND ",
            $types,
            " ORDER BY priority DESC, next_retry, id LIMIT ?5 + 0) \
             RETURNING ",
            claim_columns!()
        )
    };
}

/// Any type (`?4` is NULL), or the types of a list `,a,b,` (`?4`): a string
/// search, so the claim builds no table of the types. Exact: a stored type
/// with a comma in it matches nothing (no listed type has one).
const CLAIM: &str = claim_sql!(
    "(?4 IS NULL OR (instr(?4, ',' || job_type || ',') > 0 AND instr(job_type, ',') = 0))"
);
/// The types of a JSON array (`?4`), for a list a comma-separated one cannot
/// hold (a listed type that is empty or has a comma in it).
const CLAIM_JSON_TYPES: &str = claim_sql!("job_type IN (SELECT value FROM json_each(?4))");

/// The job types a claim takes, as its statement binds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeFilter {
    /// Any type.
    Any,
    /// `,a,b,` (`,` for no type): no listed type is empty or has a comma.
    Listed(String),
    /// A JSON array, for the other lists.
    Json(String),
}

impl TypeFilter {
    /// The filter for `types` (`None`: any type).
    pub(crate) fn new(types: Option<&[String]>) -> TypeFilter {
        let Some(types) = types else {
            return TypeFilter::Any;
        };
        if types.iter().any(|t| t.is_empty() || t.contains(',')) {
            let json = serde_json::to_string(types).unwrap_or_else(|_| "[]".into());
            return TypeFilter::Json(json);
        }
        let mut list = String::from(",");
        for t in types {
            list.push_str(t);
            list.push(',');
        }
        TypeFilter::Listed(list)
    }

    /// The claim statement and the value bound to `?4`.
    fn statement(&self) -> (&'static str, Option<&str>) {
        match self {
            TypeFilter::Any => (CLAIM, None),
            TypeFilter::Listed(l) => (CLAIM, Some(l)),
            TypeFilter::Json(j) => (CLAIM_JSON_TYPES, Some(j)),
        }
    }
}

/// Ends a claimed job that cannot run as stored (see [`cannot_run`]): failed,
/// permanently, addressed by its stored id as it is (which may be what is unreadable).
const FAIL_UNREADABLE: &str = "UPDATE jobs SET status = 'failed', error_message = ?1, \
     error_context = ?2, completed_at = ?3, updated_at = ?3, locked_by = NULL, \
     lease_expires_at = NULL WHERE id = ?4 AND status = 'in_progress'";

/// What to claim in one round (inside `BEGIN IMMEDIATE`).
pub(crate) struct ClaimArgs<'a> {
    pub worker: &'a str,
    /// The job types it takes.
    pub types: &'a TypeFilter,
    /// Only these queues; `None`: every queue.
    pub queues: Option<&'a [String]>,
    pub n: usize,
    pub now: Timestamp,
    pub lease_until: Timestamp,
    /// Reserve (prefetch: not started yet) instead of starting the jobs.
    pub reserve: bool,
    /// With `reserve`: the pool's idle workers (see `QueueSettings::claimable`).
    pub start_now: usize,
    /// Where the round starts in the list of queues with pending jobs, so that
    /// successive rounds take turns (one busy queue does not starve another).
    pub rotation: usize,
}

/// Claims up to `n` due jobs for `worker`, with leases until `lease_until`,
/// from the queues it serves that are not paused, within each queue's
/// concurrency and rate limits (read in this transaction, so they are exact
/// across processes). Slots are shared between the queues with due jobs (each
/// gets an even share first, then the rest goes to whoever can use it).
/// Returned in run order. Run inside `BEGIN IMMEDIATE`.
///
/// A claimed job that cannot run as stored (an unreadable id, payload or
/// number) is ended `failed` in the same transaction, with a permanent error
/// naming the column, and not returned: it runs never, and stops nothing.
pub(crate) fn claim(conn: &Connection, a: &ClaimArgs<'_>) -> Result<Vec<Job>> {
    let settings = queues::settings(conn)?;
    let mut candidates = queues::pending_queues(conn)?;
    candidates.retain(|q| {
        a.queues.is_none_or(|only| only.contains(q))
            && !settings.get(q).is_some_and(|s| s.is_paused(a.now))
    });
    // Limited queues' reservations share the pool's idle workers.
    let mut start_now = a.start_now;
    share_slots(candidates, a.n, a.rotation, |q, want| {
        let room = queues::room(conn, q, settings.get(q), a.now)?;
        let room = QueueSettings::claimable(settings.get(q), room, a.reserve, start_now);
        let got = claim_queue(conn, a, q, want(room), settings.get(q))?;
        if QueueSettings::limits(settings.get(q)) {
            start_now = start_now.saturating_sub(got.len());
        }
        Ok((room, got))
    })
}

/// Claims up to `n` due jobs of one queue (and records their starts when it is
/// rate-limited).
fn claim_queue(
    conn: &Connection,
    a: &ClaimArgs<'_>,
    queue: &str,
    n: usize,
    settings: Option<&QueueSettings>,
) -> Result<Vec<Job>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let (sql, types) = a.types.statement();
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db("claim"))?;
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![
            a.worker,
            a.lease_until.0,
            a.now.0,
            types,
            limit,
            queue,
            a.reserve
        ])
        .map_err(Error::db("claim"))?;
    // Read into a vector of the claim's size (up to a pool's usual claim: a
    // caller of `Queue::claim` may ask for any number): a job is a few
    // hundred bytes, and a growing vector copies them at every doubling. A
    // row to read whole, or that cannot run, is kept aside with its stored
    // id as it is (which may be what is unreadable); the others' is not
    // copied.
    let (mut jobs, mut aside) = (Vec::with_capacity(n.min(256)), Vec::new());
    while let Some(r) = rows.next().map_err(Error::db("claim"))? {
        let (mut job, rare) = job_from_claim_row(r).map_err(Error::db("claim"))?;
        // What the statement set, not returned (see `CLAIM_KNOWN`).
        job.status = JobStatus::InProgress;
        job.updated_at = a.now;
        job.started_at = (!a.reserve).then_some(a.now);
        job.locked_by = Some(a.worker.to_string());
        job.lease_expires_at = Some(a.lease_until);
        job.progress = None;
        if rare || cannot_run(&job) {
            let stored: Value = r.get(0).map_err(Error::db("claim"))?;
            aside.push((jobs.len(), stored, rare));
        }
        jobs.push(job);
    }
    drop(rows);
    if let Some(limit) = settings.and_then(|s| s.rate_limit) {
        queues::record_starts(conn, queue, limit, jobs.len(), a.now)?;
    }
    let mut ended = Vec::new();
    for (i, stored, rare) in aside {
        if rare {
            // The row as the claim left it, every column read.
            if let Some(whole) = read::get_stored(conn, &stored)? {
                jobs[i] = whole;
            }
        }
        if cannot_run(&jobs[i]) {
            fail_unreadable(conn, &jobs[i], &stored, a.now)?;
            ended.push(i);
        }
    }
    // `ended` is in claim order: removed from the back, each place holds.
    for i in ended.into_iter().rev() {
        jobs.remove(i);
    }
    Ok(jobs)
}

/// Ends `job` (claimed or expired, whose id is stored as `stored`) failed
/// because it cannot run as stored.
pub(crate) fn fail_unreadable(
    conn: &Connection,
    job: &Job,
    stored: &Value,
    now: Timestamp,
) -> Result<()> {
    let message = job.unreadable.join("; ");
    log::error!(
        "job {} ({}) cannot run as stored: {message}; it ends failed",
        job.id,
        job.job_type
    );
    let entry = serde_json::json!({
        "attempt": job.attempts,
        "class": "permanent",
        "failed_at": now,
        "worker": job.locked_by,
        "duration_ms": 0,
    });
    let mut context = entry.clone();
    let mut first = entry;
    first["message"] = serde_json::Value::String(message.clone());
    context["errors"] = serde_json::json!([first]);
    let mut stmt = conn
        .prepare_cached(FAIL_UNREADABLE)
        .map_err(Error::db("claim"))?;
    stmt.execute(params![message, context.to_string(), now.0, stored])
        .map_err(Error::db("claim"))?;
    Ok(())
}

#[cfg(test)]
mod type_tests {
    use super::*;
    use crate::job::JobId;
    use crate::store::sqlite::id::key;

    /// A migrated in-memory database with one pending job of each type.
    fn jobs_of(types: &[&str]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::sqlite::migrate::migrate(&mut conn).unwrap();
        for t in types {
            conn.execute(
                "INSERT INTO jobs (id, job_type, next_retry, created_at, updated_at) \
                 VALUES (?1, ?2, 0, 0, 0)",
                params![key(JobId::new()), t],
            )
            .unwrap();
        }
        conn
    }

    /// The types claimed (all at once) through `types`, sorted.
    fn claimed(conn: &Connection, types: Option<&[String]>) -> Vec<String> {
        let filter = TypeFilter::new(types);
        let args = ClaimArgs {
            worker: "w",
            types: &filter,
            queues: None,
            n: 10,
            now: Timestamp(1),
            lease_until: Timestamp(2),
            reserve: false,
            start_now: 10,
            rotation: 0,
        };
        let mut got: Vec<String> = claim(conn, &args)
            .unwrap()
            .into_iter()
            .map(|j| j.job_type)
            .collect();
        got.sort();
        got
    }

    fn list(types: &[&str]) -> Vec<String> {
        types.iter().map(|t| (*t).to_string()).collect()
    }

    #[test]
    fn a_claim_takes_exactly_the_listed_types() {
        // Stored types a valid name cannot have (a comma, empty) included:
        // written by hand, never by jobq.
        let all = ["a", "b", "ab", "a,b", ""];
        let cases: [(Option<&[&str]>, &[&str]); 7] = [
            (None, &["", "a", "a,b", "ab", "b"]),
            (Some(&["a"]), &["a"]),
            (Some(&["a", "b"]), &["a", "b"]),
            (Some(&[]), &[]),
            (Some(&["b", "zz"]), &["b"]),
            // Lists a comma-separated string cannot hold: the JSON statement.
            (Some(&["a,b"]), &["a,b"]),
            (Some(&["", "ab"]), &["", "ab"]),
        ];
        for (types, want) in cases {
            let conn = jobs_of(&all);
            let types = types.map(list);
            assert_eq!(claimed(&conn, types.as_deref()), list(want), "{types:?}");
        }
        assert!(matches!(
            TypeFilter::new(Some(&list(&["a,b"]))),
            TypeFilter::Json(_)
        ));
        assert_eq!(
            TypeFilter::new(Some(&list(&["a", "b"]))),
            TypeFilter::Listed(",a,b,".into())
        );
        assert_eq!(TypeFilter::new(Some(&[])), TypeFilter::Listed(",".into()));
    }

    /// A claim of `n` jobs of any type for worker `w1` at 10 ms, leases
    /// until 20 ms, with `n` idle workers.
    fn args_w1(n: usize, reserve: bool) -> ClaimArgs<'static> {
        ClaimArgs {
            worker: "w1",
            types: &TypeFilter::Any,
            queues: None,
            n,
            now: Timestamp(10),
            lease_until: Timestamp(20),
            reserve,
            start_now: n,
            rotation: 0,
        }
    }

    #[test]
    fn a_claimed_job_is_the_stored_row_started_or_reserved() {
        // The claim returns only the columns it does not set itself, and the
        // rare ones only through a flag (`claim_columns!`); the job it hands
        // out must still be the row, whether one of the rare columns is set
        // (the row is read again whole) or none is.
        let rare = [
            "",
            ", result = '{\"r\": 1}'",
            ", error_message = 'e'",
            ", error_context = '{\"errors\": []}'",
            ", completed_at = 5",
            ", cancel_requested = 1",
            ", snoozes = 2",
            ", schedule = 's', fire_time = 4",
        ];
        for (reserve, set) in [false, true].into_iter().flat_map(|r| rare.map(|s| (r, s))) {
            let conn = jobs_of(&["a"]);
            conn.execute(
                &format!(
                    "UPDATE jobs SET progress = '{{\"fraction\": 0.5}}', priority = 3, \
                     entity_id = 'x', owner = 'o', backoff = '[1000]', lease_token = 7, \
                     unique_key = x'00', unique_states = 3{set}"
                ),
                [],
            )
            .unwrap();
            let claimed = claim(&conn, &args_w1(1, reserve)).unwrap().pop().unwrap();
            let stored = crate::store::sqlite::read::get(&conn, claimed.id).unwrap();
            assert_eq!(claimed, stored, "reserve: {reserve}, set: {set:?}");
            assert!(claimed.unreadable.is_empty(), "{:?}", claimed.unreadable);
            assert_eq!(claimed.started_at, (!reserve).then_some(Timestamp(10)));
            assert_eq!(claimed.lease_token, 8);
        }
    }

    #[test]
    fn a_claim_of_any_size_takes_what_is_due() {
        // The claim's size is what the caller asks for (`Queue::claim` takes
        // any number): it must not be set aside before the rows come back.
        for n in [usize::MAX, 100_000_000] {
            let conn = jobs_of(&["a"]);
            assert_eq!(claim(&conn, &args_w1(n, false)).unwrap().len(), 1);
        }
    }

    #[test]
    fn an_unreadable_rare_column_is_read_whole_and_ends_the_job_failed() {
        // A rare column (returned only through the flag) that does not fit
        // its type: the row is read again whole, the job cannot run, and
        // the claim ends it failed instead of handing it out.
        let conn = jobs_of(&["a", "b"]);
        conn.execute("UPDATE jobs SET snoozes = 'lots' WHERE job_type = 'a'", [])
            .unwrap();
        let claimed = claim(&conn, &args_w1(2, true)).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].job_type, "b");
        let (status, message): (String, String) = conn
            .query_row(
                "SELECT status, error_message FROM jobs WHERE job_type = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(status, "failed");
        assert!(message.starts_with("snoozes"), "{message}");
    }

    #[test]
    fn both_claim_statements_keep_the_partial_index() {
        for sql in [CLAIM, CLAIM_JSON_TYPES] {
            let p = crate::store::sqlite::overview::tests::plan(sql);
            assert!(p.contains("INDEX jobs_claim"), "{p}");
        }
    }
}

#[cfg(test)]
mod start_now_tests {
    use super::*;
    use crate::job::JobId;
    use crate::store::sqlite::id::key;

    /// A migrated in-memory database with `jobs` pending jobs per queue, and
    /// the concurrency limits `limited`.
    fn db(jobs: &[(&str, usize)], limited: &[(&str, i64)]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::sqlite::migrate::migrate(&mut conn).unwrap();
        for (q, n) in jobs {
            for _ in 0..*n {
                conn.execute(
                    "INSERT INTO jobs (id, job_type, queue, next_retry, created_at, updated_at) \
                     VALUES (?1, 't', ?2, 0, 0, 0)",
                    params![key(JobId::new()), q],
                )
                .unwrap();
            }
        }
        for (q, c) in limited {
            conn.execute(
                "INSERT INTO queues (name, concurrency, updated_at) VALUES (?1, ?2, 0)",
                params![q, c],
            )
            .unwrap();
        }
        conn
    }

    /// The queues of the jobs a prefetching claim of `n` reserves with
    /// `start_now` idle workers.
    fn reserve(conn: &Connection, n: usize, start_now: usize) -> Vec<String> {
        let filter = TypeFilter::Any;
        let args = ClaimArgs {
            worker: "w",
            types: &filter,
            queues: None,
            n,
            now: Timestamp(1),
            lease_until: Timestamp(2),
            reserve: true,
            start_now,
            rotation: 0,
        };
        claim(conn, &args)
            .unwrap()
            .into_iter()
            .map(|j| j.queue)
            .collect()
    }

    #[test]
    fn limited_queues_share_the_idle_workers_of_one_claim() {
        let conn = db(&[("l1", 3), ("l2", 3)], &[("l1", 5), ("l2", 5)]);
        assert_eq!(reserve(&conn, 10, 1).len(), 1);
        // The second pass over the queues counts what the first took.
        let conn = db(&[("a_lim", 10), ("b", 1), ("c", 1)], &[("a_lim", 10)]);
        let got = reserve(&conn, 8, 4);
        assert_eq!(got.iter().filter(|q| *q == "a_lim").count(), 4, "{got:?}");
        assert_eq!(got.len(), 6, "{got:?}");
        // No idle worker: unlimited queues only.
        let conn = db(&[("l1", 3), ("u", 3)], &[("l1", 5)]);
        assert_eq!(reserve(&conn, 10, 0), vec!["u", "u", "u"]);
    }
}
