//! The starts of a round's prefetched jobs, split for writing: a job whose
//! start and successful end are in the same round (a short handler that
//! finished before any round wrote its start) gets one statement, its
//! completion setting `started_at` too; every other start is written on its
//! own, before the round's other statements. Both are fenced by the same lease
//! token in the same transaction, so the folded start is refused exactly when
//! its completion is.

use std::collections::HashMap;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobId, JobStatus};

/// Where one entry of [`crate::store::Round::starts`] is written.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// On its own: the index in [`Starts::alone`].
    Alone(usize),
    /// With the completion at this index of [`crate::store::Round::done`]
    /// (the job's id and lease token kept for a refusal).
    WithDone(usize, JobId, i64),
}

/// A round's starts, split (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Starts {
    /// Per completion of the round: the start time to write with it (`None`:
    /// the job's start is not in this round).
    pub with_done: Vec<Option<Timestamp>>,
    /// The starts to write on their own (id, lease token, start time), in
    /// their order in the round.
    pub alone: Vec<(JobId, i64, Timestamp)>,
    slots: Vec<Slot>,
}

impl Starts {
    /// Splits `starts` against the completions `done` (matched by id and
    /// lease token).
    pub(crate) fn split(starts: &[(JobId, i64, Timestamp)], done: &[(JobId, i64, String)]) -> Self {
        if starts.is_empty() {
            // Every round of a pool without prefetch: no map to build.
            return Starts {
                with_done: vec![None; done.len()],
                ..Starts::default()
            };
        }
        let mut at: HashMap<(JobId, i64), usize> = HashMap::with_capacity(done.len());
        for (i, (id, token, _)) in done.iter().enumerate() {
            at.entry((*id, *token)).or_insert(i);
        }
        let mut s = Starts {
            with_done: vec![None; done.len()],
            ..Starts::default()
        };
        for &(id, token, when) in starts {
            match at.remove(&(id, token)) {
                Some(i) => {
                    s.with_done[i] = Some(when);
                    s.slots.push(Slot::WithDone(i, id, token));
                }
                None => {
                    s.slots.push(Slot::Alone(s.alone.len()));
                    s.alone.push((id, token, when));
                }
            }
        }
        s
    }

    /// Every start's outcome in the round's order: a start written on its own
    /// has its own (`alone`, one per [`Starts::alone`]); a folded one took
    /// effect when its completion did, and is refused as it was.
    pub(crate) fn outcomes(
        self,
        alone: Vec<Result<()>>,
        completed: &[Result<JobStatus>],
    ) -> Vec<Result<()>> {
        let mut alone: Vec<Option<Result<()>>> = alone.into_iter().map(Some).collect();
        self.slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Alone(i) => alone[i].take().unwrap_or(Ok(())),
                Slot::WithDone(i, id, lease_token) => match &completed[i] {
                    Ok(_) => Ok(()),
                    Err(Error::NotFound { .. }) => Err(Error::NotFound { id }),
                    Err(_) => Err(Error::LeaseLost {
                        id,
                        lease_token,
                        operation: "start",
                    }),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> JobId {
        let mut bytes = [0u8; 16];
        bytes[15] = n;
        JobId::from_uuid(uuid::Uuid::from_bytes(bytes))
    }

    #[test]
    fn only_a_start_with_its_own_completion_is_folded() {
        let t = |ms| Timestamp(ms);
        let starts = [(id(1), 7, t(10)), (id(2), 3, t(11)), (id(3), 5, t(12))];
        // id 2 completes under another token: its start stays on its own.
        let done = [
            (id(3), 5, "null".to_string()),
            (id(2), 4, "null".to_string()),
            (id(4), 1, "null".to_string()),
        ];
        let s = Starts::split(&starts, &done);
        assert_eq!(s.with_done, vec![Some(t(12)), None, None]);
        assert_eq!(s.alone, vec![(id(1), 7, t(10)), (id(2), 3, t(11))]);
        let lost = Error::LeaseLost {
            id: id(1),
            lease_token: 7,
            operation: "start",
        };
        let completed = [
            Err(Error::NotFound { id: id(3) }),
            Ok(JobStatus::Completed),
            Ok(JobStatus::Completed),
        ];
        let out = s.outcomes(vec![Err(lost), Ok(())], &completed);
        assert!(matches!(
            out[0],
            Err(Error::LeaseLost {
                operation: "start",
                ..
            })
        ));
        assert!(out[1].is_ok());
        assert!(matches!(out[2], Err(Error::NotFound { .. })));
    }
}
