//! A claim round on PostgreSQL, in one transaction: the round's writes and
//! its claim ([`round`]).
//!
//! The starts and completions go in one statement: two data-modifying CTEs,
//! one marking the reserved jobs started, one completing the finished ones
//! (each row is in at most one of them: a job whose start and completion are
//! in the same round is only in the completions, see
//! [`crate::store::starts`]). One round trip fewer per round than a statement
//! each; every entry keeps its own outcome, in input order.

use std::collections::HashMap;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::{JobId, JobStatus};
use crate::store::postgres::claim::{self, outcomes_by_id};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::finish::{self, complete_many_sql, status_of};
use crate::store::postgres::reserve;
use crate::store::starts::Starts;
use crate::store::{refusal_is_an_outcome, Round, Settled};

/// The starts' and the completions' outcomes, each in input order.
type Outcomes = (Vec<Result<()>>, Vec<Result<JobStatus>>);

/// `$1`-`$5` as the completion statement of `finish`, `$6`-`$9` as the start
/// statement of `reserve`; returns (false, id, NULL) per start written and
/// (true, id, status) per completion.
const STARTS_AND_COMPLETIONS: &str = concat!(
    "WITH s AS (UPDATE jobq.jobs j SET started_at = d.at, \
       updated_at = d.at, lease_expires_at = $6 \
       FROM unnest($7::text[], $8::bigint[], $9::bigint[]) AS d(id, token, at) \
       WHERE j.id = d.id AND j.status = 'in_progress' AND j.lease_token = d.token \
       RETURNING j.id, d.token), \
     c AS (",
    complete_many_sql!(),
    ") \
     SELECT false, id, token, NULL::text FROM s UNION ALL SELECT true, id, token, status FROM c"
);

/// Writes `round` and claims its jobs (`rotation`: where the claim starts
/// among the queues), in the round's transaction: the starts and completions
/// in one statement ([`starts_and_completions`]), then the give-backs,
/// failures, releases and snoozes, each entry with its own outcome, then the
/// claim.
///
/// # Errors
/// Database errors (the whole round then rolls back).
pub(super) fn round(c: &mut Conn, round: &Round<'_>, rotation: usize) -> Result<Settled> {
    let now = round.now;
    let starts = Starts::split(round.starts, round.done);
    let (alone, completed) = starts_and_completions(
        c,
        &starts.alone,
        round.started_until,
        round.done,
        &starts.with_done,
        now,
    )?;
    let started = starts.outcomes(alone, &completed);
    let unstarted = round
        .unstarted
        .iter()
        .map(|(id, token, claimed_at)| {
            let back = reserve::give_back(c, *id, *token, Some(*claimed_at), now);
            refusal_is_an_outcome(back)
        })
        .collect::<Result<_>>()?;
    let failed = round
        .failed
        .iter()
        .map(|(id, token, f)| {
            refusal_is_an_outcome(finish::fail(c, *id, *token, f, round.backoff_for, now))
        })
        .collect::<Result<_>>()?;
    let released = round
        .released
        .iter()
        .map(|(id, token)| refusal_is_an_outcome(finish::release(c, *id, *token, now)))
        .collect::<Result<_>>()?;
    let snoozed = round
        .snoozed
        .iter()
        .map(|(id, token, delay)| {
            refusal_is_an_outcome(finish::snooze(c, *id, *token, *delay, now))
        })
        .collect::<Result<_>>()?;
    let sized = round.claim.map(|k| (k, k.sized()));
    let claimed = match sized {
        Some((k, (n, start_now))) if n > 0 => claim::claim(
            c,
            &claim::ClaimArgs {
                worker: k.worker,
                types: k.types,
                queues: k.queues,
                n,
                now,
                lease_until: k.lease_until,
                reserve: k.reserve,
                start_now,
                rotation,
            },
        )?,
        _ => Vec::new(),
    };
    Ok(Settled {
        started,
        unstarted,
        completed,
        failed,
        released,
        snoozed,
        claimed,
    })
}

/// Marks `starts` (id, lease token, start time) started, their leases held
/// until `lease_until`, and completes `done` (`started`: per entry, the start
/// time written with it, see [`finish::complete_many`]), in one statement when
/// there are both. Returns the starts' and the completions' outcomes in input
/// order; a refused entry ([`crate::Error::LeaseLost`],
/// [`crate::Error::NotFound`]) does not stop the others.
///
/// # Errors
/// Database errors (the whole round then rolls back).
pub(crate) fn starts_and_completions(
    c: &mut Conn,
    starts: &[(JobId, i64, Timestamp)],
    lease_until: Timestamp,
    done: &[(JobId, i64, String)],
    started: &[Option<Timestamp>],
    now: Timestamp,
) -> Result<Outcomes> {
    if starts.is_empty() || done.is_empty() {
        let s = reserve::start_many(c, starts, lease_until)?;
        return Ok((s, finish::complete_many(c, done, started, now)?));
    }
    let s = reserve::StartArrays::of(starts);
    let d = finish::CompleteArrays::of(done, started);
    let rows = c.query(
        "complete",
        STARTS_AND_COMPLETIONS,
        &[
            &now.0,
            &d.ids,
            &d.tokens,
            &d.results,
            &d.started,
            &lease_until.0,
            &s.ids,
            &s.tokens,
            &s.ats,
        ],
    )?;
    let mut written: HashMap<(String, i64), ()> = HashMap::new();
    let mut changed: HashMap<(String, i64), JobStatus> = HashMap::new();
    for r in &rows {
        let entry = (r.get(1), r.get(2));
        if r.get::<_, bool>(0) {
            changed.insert(entry, status_of(r.get(3)));
        } else {
            written.insert(entry, ());
        }
    }
    let entries = starts.iter().map(|s| (s.0, s.1));
    let started = outcomes_by_id(c, entries, &s.ids, written, "start")?;
    let entries = done.iter().map(|d| (d.0, d.1));
    let completed = outcomes_by_id(c, entries, &d.ids, changed, "complete")?;
    Ok((started, completed))
}
