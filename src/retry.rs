//! The retry rules: the backoff schedule and the classification of error text.
//! Pure functions, table-tested here and documented in README.md ("Retries").

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a failed attempt may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A later attempt may succeed: retry with backoff while attempts remain.
    Retryable,
    /// No later attempt can succeed: the job ends `failed` now.
    Permanent,
}

/// A backoff schedule was given no steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("needs at least one step, e.g. [\"30s\", \"5m\"]")]
pub struct EmptyBackoff;

/// Delays before the next attempt, indexed by the number of attempts already
/// made: after attempt 1 fails the next is due `steps[0]` later, after attempt 2
/// `steps[1]`, and the last step repeats (the cap).
///
/// The default is 60 s, 300 s, 900 s, then 3600 s, so with `max_attempts = 5` a job
/// that always fails runs at t, t+1 min, t+6 min, t+21 min and t+81 min:
///
/// ```
/// use std::time::Duration;
/// let b = jobq::Backoff::default();
/// let mins: Vec<u64> = (1..=6).map(|a| b.delay_after(a).as_secs() / 60).collect();
/// assert_eq!(mins, [1, 5, 15, 60, 60, 60]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    steps: Vec<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            steps: [60, 300, 900, 3600].map(Duration::from_secs).to_vec(),
        }
    }
}

impl Backoff {
    /// A schedule of the given steps (the last one repeats). A step of zero means
    /// the next attempt is due at once: it runs as soon as a worker is free, so
    /// `["0s"]` retries without waiting, up to `max_attempts`.
    ///
    /// # Errors
    /// [`EmptyBackoff`] when `steps` is empty (there is no delay to use: every
    /// attempt would burn at once). It converts into [`crate::Error::Invalid`]
    /// naming `backoff`.
    pub fn new(steps: Vec<Duration>) -> Result<Backoff, EmptyBackoff> {
        if steps.is_empty() {
            return Err(EmptyBackoff);
        }
        Ok(Backoff { steps })
    }

    /// The schedule as stored on a job: a JSON array of milliseconds.
    pub(crate) fn to_stored(&self) -> String {
        let ms: Vec<u64> = self
            .steps
            .iter()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .collect();
        serde_json::to_string(&ms).unwrap_or_else(|_| "[]".into())
    }

    /// A schedule read back from a job; `None` when the text is not one.
    pub(crate) fn from_stored(text: &str) -> Option<Backoff> {
        let ms: Vec<u64> = serde_json::from_str(text).ok()?;
        Backoff::new(ms.into_iter().map(Duration::from_millis).collect()).ok()
    }

    /// The steps of this schedule.
    pub fn steps(&self) -> &[Duration] {
        &self.steps
    }

    /// The delay before the next attempt after `attempts` attempts have run
    /// (`attempts` of 0 is treated as 1).
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let Some(last) = self.steps.len().checked_sub(1) else {
            return Duration::ZERO; // unreachable: `new` refuses an empty schedule
        };
        let i = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        self.steps[i.min(last)]
    }
}

/// Words that make an error retryable (checked first: retryable wins ties).
const RETRYABLE: &[&str] = &[
    "timeout",
    "timed out",
    "connection refused",
    "connection reset",
    "rate limit",
    "rate limited",
    "too many requests",
    "temporarily unavailable",
    "503",
    "429",
];

/// Words that make an error permanent.
const PERMANENT: &[&str] = &[
    "not found",
    "invalid",
    "unsupported",
    "permission denied",
    "unauthorized",
    "forbidden",
    "401",
    "403",
    "404",
];

/// Classifies error text.
///
/// - Retryable when it contains, case-insensitively: timeout, timed out, connection
///   refused, connection reset, rate limit(ed), too many requests, temporarily
///   unavailable, 503, 429.
/// - Permanent when it contains: not found, invalid, unsupported, permission denied,
///   unauthorized, forbidden, 401, 403, 404.
/// - Words match at token boundaries (a letter or digit may not touch either end).
/// - Both lists match, neither matches, or the text is empty: retryable (a wasted
///   retry costs less than a lost job).
///
/// ```
/// use jobq::{classify, ErrorClass::*};
/// assert_eq!(classify("connection timed out"), Retryable);
/// assert_eq!(classify("HTTP 404 Not Found"), Permanent);
/// assert_eq!(classify("request took 4031 ms"), Retryable);
/// assert_eq!(classify("invalid response from upstream: 503"), Retryable);
/// assert_eq!(classify(""), Retryable);
/// ```
pub fn classify(text: &str) -> ErrorClass {
    let lower = text.to_lowercase();
    if RETRYABLE.iter().any(|w| contains_token(&lower, w)) {
        return ErrorClass::Retryable;
    }
    if PERMANENT.iter().any(|w| contains_token(&lower, w)) {
        return ErrorClass::Permanent;
    }
    ErrorClass::Retryable
}

/// True when `word` occurs in `text` with no letter or digit touching either end.
fn contains_token(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    #[test]
    fn classification_table() {
        let table = [
            ("connection timed out", Retryable),
            ("request took 4031 ms", Retryable),
            ("invalid response from upstream: 503", Retryable),
            ("", Retryable),
            ("HTTP 404 Not Found", Permanent),
            ("Timeout while reading", Retryable),
            ("read timeout", Retryable),
            ("Connection refused (os error 111)", Retryable),
            ("connection reset by peer", Retryable),
            ("Rate limited: slow down", Retryable),
            ("rate limit exceeded", Retryable),
            ("429 Too Many Requests", Retryable),
            ("resource temporarily unavailable", Retryable),
            ("user not found", Permanent),
            ("Invalid payload: missing field", Permanent),
            ("unsupported format", Permanent),
            ("open: Permission denied", Permanent),
            ("401 Unauthorized", Permanent),
            ("403 Forbidden", Permanent),
            ("got 403", Permanent),
            ("took 1403 ms", Retryable),
            ("invalidated cache", Retryable),
            ("timeouts", Retryable),
            ("something odd happened", Retryable),
            ("not found: upstream timed out", Retryable),
            ("ERROR 404", Permanent),
            ("code=404;", Permanent),
            ("unicode ünïcödé 404 ✓", Permanent),
        ];
        for (text, want) in table {
            assert_eq!(classify(text), want, "classify({text:?})");
        }
    }

    #[test]
    fn default_schedule_and_cap() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..=7).map(|a| b.delay_after(a).as_secs()).collect();
        assert_eq!(secs, [60, 60, 300, 900, 3600, 3600, 3600, 3600]);
        assert!(Backoff::new(vec![]).is_err());
        let custom =
            Backoff::new(vec![Duration::from_millis(10), Duration::from_millis(20)]).unwrap();
        assert_eq!(custom.delay_after(5), Duration::from_millis(20));
        assert_eq!(custom.to_stored(), "[10,20]");
        assert_eq!(Backoff::from_stored("[10,20]"), Some(custom));
        assert_eq!(Backoff::from_stored("[]"), None);
        assert_eq!(Backoff::from_stored("nope"), None);
    }
}
