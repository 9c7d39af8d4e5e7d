//! Short ids: resolving a prefix to the one job it names, and the shortest
//! prefix that names a job.

use crate::error::{Error, Result};
use crate::id_prefix::{id_prefix, IdPrefix, MAX_LISTED_MATCHES, MIN_ID_PREFIX};
use crate::job::JobId;
use crate::queue::Queue;

impl Queue {
    /// The job named by `text`: a whole job id (any UUID text form, returned as
    /// is without a lookup), or a prefix of at least
    /// [`MIN_ID_PREFIX`](crate::MIN_ID_PREFIX) hex digits of exactly one job's
    /// id (`0193a4f2-8c1e`, or without hyphens). One range scan of the primary key.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `id`) when `text` is neither;
    /// [`Error::NoSuchIdPrefix`] when no job's id starts with the prefix;
    /// [`Error::AmbiguousId`] when several do (listing the newest
    /// [`MAX_LISTED_MATCHES`](crate::MAX_LISTED_MATCHES) of them, newest first);
    /// database errors.
    pub fn resolve_id(&self, text: &str) -> Result<JobId> {
        let prefix: IdPrefix = text.parse()?;
        if let IdPrefix::Full(id) = prefix {
            return Ok(id);
        }
        let (low, high) = prefix.bounds();
        let mut matches = self
            .backend()
            .ids_between(low, high, MAX_LISTED_MATCHES + 1)?;
        match matches.len() {
            0 => Err(Error::NoSuchIdPrefix {
                prefix: prefix.text(),
            }),
            1 => Ok(matches[0]),
            n => {
                matches.truncate(MAX_LISTED_MATCHES);
                Err(Error::AmbiguousId {
                    prefix: prefix.text(),
                    matches,
                    more: n > MAX_LISTED_MATCHES,
                })
            }
        }
    }

    /// The shortest start of `id`'s text, at least
    /// [`MIN_ID_PREFIX`](crate::MIN_ID_PREFIX) hex digits, that no other job's id
    /// starts with now (as `git` abbreviates): what [`Queue::resolve_id`] turns
    /// back into `id` while no job with a longer common prefix is enqueued.
    /// A binary search over the length: about five range scans.
    ///
    /// # Errors
    /// Database errors.
    pub fn short_id(&self, id: JobId) -> Result<String> {
        let (mut shortest_unique, mut longest_shared) = (32, MIN_ID_PREFIX - 1);
        while shortest_unique - longest_shared > 1 {
            let digits = (shortest_unique + longest_shared) / 2;
            if self.names_only(id, digits)? {
                shortest_unique = digits;
            } else {
                longest_shared = digits;
            }
        }
        Ok(id_prefix(id, shortest_unique))
    }

    /// Whether `id` is the only job whose id starts with its first `digits` hex digits.
    fn names_only(&self, id: JobId, digits: usize) -> Result<bool> {
        let prefix: IdPrefix = id_prefix(id, digits).parse()?;
        let (low, high) = prefix.bounds();
        let found = self.backend().ids_between(low, high, 2)?;
        Ok(found.iter().all(|other| *other == id))
    }
}
