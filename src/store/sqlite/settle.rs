//! A claim round on SQLite, in the one write transaction of
//! [`Backend::settle_and_claim`](crate::store::Backend::settle_and_claim):
//! the starts of prefetched jobs, the give-backs, completions, failures,
//! releases and snoozes, each entry with its own outcome, then the claim.

use rusqlite::Connection;

use crate::error::Result;
use crate::store::sqlite::{claim, finish, reserve};
use crate::store::starts::Starts;
use crate::store::{refusal_is_an_outcome, Round, Settled};

/// Writes `round` and claims its jobs (`types`: the claim's types as its
/// statement binds them; `rotation`: where the claim starts among the queues).
/// Run inside the round's write transaction.
pub(super) fn round(
    tx: &Connection,
    round: &Round<'_>,
    types: &claim::TypeFilter,
    rotation: usize,
) -> Result<Settled> {
    let now = round.now;
    let starts = Starts::split(round.starts, round.done);
    let alone = starts
        .alone
        .iter()
        .map(|(id, token, at)| reserve::start(tx, *id, *token, *at, round.started_until))
        .map(refusal_is_an_outcome)
        .collect::<Result<_>>()?;
    let unstarted = round
        .unstarted
        .iter()
        .map(|(id, token, claimed_at)| reserve::give_back(tx, *id, *token, Some(*claimed_at), now))
        .map(refusal_is_an_outcome)
        .collect::<Result<_>>()?;
    let completed = finish::complete_many(tx, round.done, &starts.with_done, now)?;
    let started = starts.outcomes(alone, &completed);
    let failed = round
        .failed
        .iter()
        .map(|(id, token, f)| finish::fail(tx, *id, *token, f, round.backoff_for, now))
        .map(refusal_is_an_outcome)
        .collect::<Result<_>>()?;
    let released = round
        .released
        .iter()
        .map(|(id, token)| finish::release(tx, *id, *token, now))
        .map(refusal_is_an_outcome)
        .collect::<Result<_>>()?;
    let snoozed = round
        .snoozed
        .iter()
        .map(|(id, token, delay)| finish::snooze(tx, *id, *token, *delay, now))
        .map(refusal_is_an_outcome)
        .collect::<Result<_>>()?;
    let sized = round.claim.map(|c| (c, c.sized()));
    let claimed = match sized {
        Some((c, (n, start_now))) if n > 0 => claim::claim(
            tx,
            &claim::ClaimArgs {
                worker: c.worker,
                types,
                queues: c.queues,
                n,
                now,
                lease_until: c.lease_until,
                reserve: c.reserve,
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
