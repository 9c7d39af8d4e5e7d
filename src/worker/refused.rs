//! A round the database refused for a value it held (a result too big for
//! it, a text a constraint or trigger refuses; see `Error::refuses_value`).
//! Written again as it was, such a round fails again however long the pool
//! waits, and every job behind it would wait too. Instead its outcomes are
//! written one per round until the refused one is found. That outcome is
//! replaced by a failed attempt saying why; if the database refuses that too,
//! the outcome is given up and the job runs again once its lease expires.

use crate::error::Error;
use crate::failure::Failure;
use crate::job::JobId;
use crate::retry::ErrorClass;
use crate::worker::execute::Outcome;
use crate::worker::round::RoundWork;
use crate::worker::round_record::{forget, put_back};
use crate::worker::shared::{PoolState, Shared};
use crate::worker::StopReason;

/// Takes the next outcome (a start first) as a round of its own that claims
/// nothing; `None` when none is left.
pub(super) fn take_one(st: &mut PoolState, generation: u64) -> Option<RoundWork> {
    let mut w = RoundWork {
        generation,
        isolated: true,
        ..RoundWork::default()
    };
    if !st.starts.is_empty() {
        w.starts.push(st.starts.remove(0));
        return Some(w);
    }
    if st.finished.is_empty() {
        return None;
    }
    match st.finished.remove(0) {
        (id, token, Outcome::Success(v)) => w.done.push((id, token, v)),
        (id, token, Outcome::Failure(f)) => w.failed.push((id, token, f)),
        (id, token, Outcome::Release) => w.released.push((id, token)),
        (id, token, Outcome::Snooze(d)) => w.snoozed.push((id, token, d)),
    }
    if st.finished.is_empty() {
        st.first_finished = None;
    }
    Some(w)
}

/// Handles a round refused for a value: a round of one outcome that claimed
/// nothing has found it (replaced or given up); any other round's outcomes
/// go back to be written one by one. No error backoff: the next round can
/// succeed at once.
pub(super) fn refused(shared: &Shared, st: &mut PoolState, work: RoundWork, e: &Error) {
    let n = work.entries();
    if work.isolated || (n == 1 && work.want == 0) {
        replace(shared, st, work, e);
        return;
    }
    log::warn!(
        "worker pool {}: {e}; the database refused a value in a round of {n} outcome(s): writing them one by one",
        shared.config.worker_id
    );
    st.isolating = st.isolating.max(n);
    put_back(st, work);
}

/// Puts back a failed attempt in place of the refused outcome of `work` (its
/// only one), or gives the outcome up when it was a replacement already, a
/// start, a hand-back or a snooze.
fn replace(shared: &Shared, st: &mut PoolState, mut work: RoundWork, e: &Error) {
    let ran = |st: &PoolState, id: &JobId| {
        let job = st.running.get(id)?;
        Some(job.ended? - job.started?)
    };
    let (id, token, what, failure) = if let Some((id, token, _)) = work.done.pop() {
        (id, token, "result", Some(for_result(e)))
    } else if let Some((id, token, f)) = work.failed.pop() {
        (id, token, "failure", Some(for_failure(f, e)))
    } else if let Some((id, token, _)) = work.starts.pop() {
        (id, token, "start", None)
    } else if let Some((id, token)) = work.released.pop() {
        (id, token, "hand-back", None)
    } else if let Some((id, token, _)) = work.snoozed.pop() {
        (id, token, "snooze", None)
    } else {
        return;
    };
    match failure {
        Some(f) if st.replaced.insert(id) => {
            log::error!("job {id}: the database refused its {what} ({e}); recording a failed attempt instead");
            let f = match ran(st, &id) {
                Some(d) => f.with_duration(d),
                None => f,
            };
            st.finished.insert(0, (id, token, Outcome::Failure(f)));
        }
        _ => give_up(shared, st, (id, token), what, e),
    }
}

/// The failed attempt recorded in place of a result the database refused.
/// Permanent: the handler's work is done, and running it again would do it
/// twice (a manual retry runs it again).
pub(super) fn for_result(e: &Error) -> Failure {
    let text = format!("the handler returned, but its result could not be stored: {e}");
    Failure::new(&text, ErrorClass::Permanent)
}

/// The failed attempt recorded in place of one whose text the database
/// refused: the same class, delay and duration, a text saying why.
pub(super) fn for_failure(f: Failure, e: &Error) -> Failure {
    let text = format!("the attempt failed, but its error could not be stored: {e}");
    Failure {
        message: crate::failure::clean_error_text(&text),
        ..f
    }
}

/// Gives up an outcome the database refuses in every form: the job stays in
/// progress until its lease expires, and then runs again (or ends `failed`
/// when it has no attempt left), as after a crash.
fn give_up(shared: &Shared, st: &mut PoolState, (id, token): (JobId, i64), what: &str, e: &Error) {
    log::error!(
        "job {id}: the database refused its {what} ({e}); given up: the job runs again once its lease expires"
    );
    st.replaced.remove(&id);
    st.isolating = st.isolating.saturating_sub(1);
    if what == "start" {
        // Its row still holds the short reservation, which another process
        // may take back: the handler is told to stop.
        if let Some(job) = st.running.get(&id).filter(|j| j.lease_token == token) {
            job.stop.request(StopReason::LeaseLost);
        }
        return;
    }
    if let Some(job) = forget(st, id, token) {
        shared.settled(&job, None);
    }
}
