//! Named queues: the name rule, rate limits (`"100/1m"`), a queue's declared
//! limits ([`QueueSpec`]) and what `jobq queue list` shows ([`QueueInfo`]).
//!
//! Every job has a queue (default [`DEFAULT_QUEUE`]). A queue may have a
//! concurrency limit (the most jobs in progress at once across every process on
//! the database), a rate limit (the most starts per sliding period across every
//! process) and a pause; all three are stored in the database and checked in the
//! claim's own transaction.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// The queue of jobs enqueued without one.
pub const DEFAULT_QUEUE: &str = "default";

/// Checks a queue name: 1-64 characters of `[a-z0-9_.:-]` (as job types).
///
/// # Errors
/// [`Error::Invalid`] naming `queue`.
pub fn validate_queue_name(name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        let shown: String = name.chars().take(64).collect();
        return Err(Error::Invalid {
            field: "queue",
            reason: format!("{shown:?}: must be 1-64 characters of [a-z0-9_.:-]"),
        });
    }
    Ok(())
}

/// The largest concurrency limit accepted: 2,147,483,647 (2^31 - 1), the
/// largest both backends store (PostgreSQL keeps it in an `integer`).
pub const MAX_CONCURRENCY: u32 = 2_147_483_647;

/// At most `count` starts per sliding `period`, written `"100/1m"` (a count, a
/// slash, a duration as in `jobq.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Starts allowed per period, at least 1.
    pub count: u32,
    /// The sliding window, more than 0.
    pub period: Duration,
}

impl RateLimit {
    /// The largest count: 999,999,999 (nine digits, as the text form allows).
    pub const MAX_COUNT: u32 = 999_999_999;

    /// The longest period: 999,999,999 days (nine digits of the largest unit,
    /// as the text form allows; its milliseconds, doubled, still fit an `i64`).
    pub const MAX_PERIOD: Duration = Duration::from_secs(999_999_999 * 86_400);

    /// A limit of `count` starts per `period`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `rate_limit` when `count` is 0 or over
    /// [`RateLimit::MAX_COUNT`], or `period` is zero or over
    /// [`RateLimit::MAX_PERIOD`].
    pub fn new(count: u32, period: Duration) -> Result<RateLimit> {
        let limit = RateLimit { count, period };
        limit.validate()?;
        Ok(limit)
    }

    /// Checks a limit built from its public fields, as [`RateLimit::new`] does.
    ///
    /// # Errors
    /// As [`RateLimit::new`].
    pub fn validate(&self) -> Result<()> {
        let (count, period) = (self.count, self.period);
        if count == 0 || period.is_zero() {
            return Err(Error::Invalid {
                field: "rate_limit",
                reason: "needs a count of at least 1 and a period of more than 0, e.g. \"100/1m\""
                    .into(),
            });
        }
        if count > RateLimit::MAX_COUNT || period > RateLimit::MAX_PERIOD {
            return Err(Error::Invalid {
                field: "rate_limit",
                reason:
                    "a count and a period of at most 9 digits each (up to 999999999/999999999d)"
                        .into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            crate::duration::format_duration(self.period)
        )
    }
}

/// What [`RateLimit`]'s text looks like: a count of at least 1, a slash, and a
/// period of one whole number (at least 1) and one unit (as a regular
/// expression, for the OpenAPI document; counts and periods of up to 9 digits,
/// leading zeros aside, as the parser checks).
pub(crate) const RATE_LIMIT_PATTERN: &str = "^0*[1-9][0-9]{0,8}/0*[1-9][0-9]{0,8}(ms|s|m|h|d)$";

/// In the OpenAPI document: a string like `100/1m`.
impl utoipa::PartialSchema for RateLimit {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(RATE_LIMIT_PATTERN))
            .description(Some("most starts per sliding period, e.g. 100/1m"))
            .into()
    }
}

impl utoipa::ToSchema for RateLimit {}

impl FromStr for RateLimit {
    type Err = Error;

    /// Parses `"100/1m"`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `rate_limit` and quoting the text.
    fn from_str(text: &str) -> Result<RateLimit> {
        let shown: String = text.chars().take(32).collect();
        let bad = || Error::Invalid {
            field: "rate_limit",
            reason: format!(
                "{shown:?}: expected COUNT/PERIOD, e.g. \"100/1m\" or \"20/1s\" \
                 (one whole number and a unit: ms, s, m, h or d)"
            ),
        };
        let (count, period) = text.split_once('/').ok_or_else(bad)?;
        let digits = |t: &str| t.trim_start_matches('0').len();
        let number = period.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        if digits(count) > 9 || digits(number) > 9 {
            return Err(Error::Invalid {
                field: "rate_limit",
                reason: format!("{shown:?}: a count and a period of at most 9 digits each"),
            });
        }
        let count: u32 = count.parse().map_err(|_| bad())?;
        // One whole number and one unit (the documented `100/1m`), not every
        // duration form `jobq.toml` accepts: a limit reads the same everywhere.
        let unit = period.trim_start_matches(|c: char| c.is_ascii_digit());
        if unit.len() == period.len() || !["ms", "s", "m", "h", "d"].contains(&unit) {
            return Err(bad());
        }
        let period = crate::duration::parse_duration(period).map_err(|_| bad())?;
        // Well formed but out of range (a zero count or period): say which.
        RateLimit::new(count, period).map_err(|e| match e {
            Error::Invalid { field, reason } => Error::Invalid {
                field,
                reason: format!("{shown:?}: {reason}"),
            },
            other => other,
        })
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A queue's declared limits (`[queues.NAME]` in `jobq.toml`, or
/// [`crate::Catalog::declare_queue`]). Written to the database when a worker
/// pool starts, so they hold for every process on the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    name: String,
    /// The most jobs of the queue in progress at once, across every process.
    /// `None`: unlimited.
    pub concurrency: Option<u32>,
    /// The most starts per sliding period, across every process. `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

impl QueueSpec {
    /// A queue named `name` with no limits (the name is checked when declared).
    pub fn new(name: impl Into<String>) -> QueueSpec {
        QueueSpec {
            name: name.into(),
            concurrency: None,
            rate_limit: None,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the concurrency limit (checked when declared: 1 to [`MAX_CONCURRENCY`]).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// Sets the rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_queue_name(&self.name)?;
        if self
            .concurrency
            .is_some_and(|n| !(1..=MAX_CONCURRENCY).contains(&n))
        {
            return Err(Error::Invalid {
                field: "concurrency",
                reason: format!("{}: must be from 1 to {MAX_CONCURRENCY}", self.name),
            });
        }
        if let Some(r) = &self.rate_limit {
            r.validate()?;
        }
        Ok(())
    }
}

/// A queue as `jobq queue list` and `GET /api/v1/admin/queues` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueInfo {
    /// The queue's name.
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub name: String,
    /// Jobs waiting (pending, due or not).
    pub pending: u64,
    /// Jobs in progress.
    pub running: u64,
    /// The concurrency limit: most jobs in progress at once across every
    /// process; null: unlimited.
    #[schema(required = true, minimum = 1, format = Int64)]
    pub concurrency: Option<u32>,
    /// The rate limit, e.g. `"100/1m"`; null: unlimited.
    #[schema(required = true)]
    pub rate_limit: Option<RateLimit>,
    /// True while paused: no job of the queue is claimed (running ones finish).
    pub paused: bool,
    /// When a timed pause ends (UTC); null when not paused or paused until resumed.
    #[schema(required = true)]
    pub paused_until: Option<Timestamp>,
}

/// A queue's stored settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueSettings {
    pub concurrency: Option<u32>,
    pub rate_limit: Option<RateLimit>,
    /// `Some(None)`: paused until resumed; `Some(Some(t))`: until `t`.
    pub paused: Option<Option<Timestamp>>,
}

impl QueueSettings {
    /// True when `settings` set a concurrency or rate limit.
    pub fn limits(settings: Option<&QueueSettings>) -> bool {
        settings.is_some_and(|s| s.concurrency.is_some() || s.rate_limit.is_some())
    }

    /// How many jobs of this queue a claim may take, given `room` (what its
    /// limits leave) and, for a prefetching pool's claim (`reserve`), how
    /// many more jobs of limited queues it may reserve in this claim
    /// (`start_now`: the pool's idle workers, less the limited jobs already
    /// claimed in it). A reserved job holds one of its queue's slots (and
    /// counts as a start of its rate window) from its claim, so a queue with
    /// a concurrency or rate limit is reserved only for idle workers: a busy
    /// pool must not hold its slots while other pools could run the jobs
    /// (found by a fresh-user pass). The worker that writes a round is idle,
    /// so a limited queue still gets a turn in every round a worker writes.
    pub fn claimable(
        settings: Option<&QueueSettings>,
        room: usize,
        reserve: bool,
        start_now: usize,
    ) -> usize {
        if reserve && QueueSettings::limits(settings) {
            room.min(start_now)
        } else {
            room
        }
    }

    /// True when the queue is paused at `now`.
    pub fn is_paused(&self, now: Timestamp) -> bool {
        match self.paused {
            Some(None) => true,
            Some(Some(until)) => until > now,
            None => false,
        }
    }
}

/// The names of the queues among `settings` that are paused at `now`.
pub(crate) fn paused_at(
    settings: std::collections::BTreeMap<String, QueueSettings>,
    now: Timestamp,
) -> Vec<String> {
    settings
        .into_iter()
        .filter(|(_, s)| s.is_paused(now))
        .map(|(name, _)| name)
        .collect()
}

/// A change to a queue's limits: `None` leaves a limit as it is; `Some(None)`
/// removes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsChange {
    /// The new concurrency limit.
    pub concurrency: Option<Option<u32>>,
    /// The new rate limit.
    pub rate_limit: Option<Option<RateLimit>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_queue_is_reserved_only_for_workers_free_to_start_it() {
        let open = QueueSettings::default();
        let limited = QueueSettings {
            concurrency: Some(2),
            ..QueueSettings::default()
        };
        let rated = QueueSettings {
            rate_limit: Some("5/1s".parse().unwrap()),
            ..QueueSettings::default()
        };
        // Claims that start their jobs, and unlimited queues: the room.
        assert_eq!(QueueSettings::claimable(Some(&limited), 2, false, 0), 2);
        assert_eq!(QueueSettings::claimable(Some(&open), 50, true, 0), 50);
        assert_eq!(QueueSettings::claimable(None, 50, true, 0), 50);
        // Reserving a limited queue: no more than the pool can start.
        assert_eq!(QueueSettings::claimable(Some(&limited), 2, true, 0), 0);
        assert_eq!(QueueSettings::claimable(Some(&limited), 2, true, 1), 1);
        assert_eq!(QueueSettings::claimable(Some(&limited), 2, true, 4), 2);
        assert_eq!(QueueSettings::claimable(Some(&rated), 5, true, 1), 1);
    }

    #[test]
    fn rate_limits_parse_and_print() {
        let r: RateLimit = "100/1m".parse().unwrap();
        assert_eq!((r.count, r.period), (100, Duration::from_secs(60)));
        assert_eq!(r.to_string(), "100/1m");
        assert_eq!("20/1s".parse::<RateLimit>().unwrap().to_string(), "20/1s");
        for bad in [
            "100/", "x/1m", "/1m", "0/1m", "5/0s", "5", "5/1m/2", "-1/1m", "5/1h 30m", "5/1.5h",
            "5/1w", "5/m", " 5/1m", "5/ 1m",
        ] {
            let err = bad.parse::<RateLimit>().unwrap_err().to_string();
            assert!(err.starts_with("invalid rate_limit:"), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        for zero in ["0/1m", "5/0s"] {
            let err = zero.parse::<RateLimit>().unwrap_err().to_string();
            assert!(
                err.contains("a count of at least 1 and a period of more than 0"),
                "{zero}: {err}"
            );
        }
    }

    #[test]
    fn counts_and_periods_have_at_most_nine_digits() {
        let max: RateLimit = "999999999/999999999d".parse().unwrap();
        assert_eq!(
            (max.count, max.period),
            (RateLimit::MAX_COUNT, RateLimit::MAX_PERIOD)
        );
        assert_eq!(max.to_string(), "999999999/999999999d");
        assert_eq!(
            "0001/0001m".parse::<RateLimit>().unwrap().to_string(),
            "1/1m"
        );
        for bad in [
            "1000000000/1m",
            "1/1000000000d",
            "1/53375995584d",
            "1/999999999999ms",
        ] {
            let err = bad.parse::<RateLimit>().unwrap_err().to_string();
            assert!(err.contains("at most 9 digits"), "{bad}: {err}");
        }
        let over = RateLimit::MAX_PERIOD + Duration::from_secs(1);
        assert!(RateLimit::new(1, over).is_err());
        assert!(RateLimit::new(RateLimit::MAX_COUNT + 1, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn queue_names_follow_the_job_type_rule() {
        assert!(validate_queue_name("emails").is_ok());
        assert!(validate_queue_name("a.b:c-d_1").is_ok());
        for bad in ["", "Emails", "with space", &"x".repeat(65)] {
            assert!(validate_queue_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_timed_pause_ends() {
        let s = QueueSettings {
            paused: Some(Some(Timestamp(100))),
            ..QueueSettings::default()
        };
        assert!(s.is_paused(Timestamp(99)));
        assert!(!s.is_paused(Timestamp(100)));
        let forever = QueueSettings {
            paused: Some(None),
            ..QueueSettings::default()
        };
        assert!(forever.is_paused(Timestamp(i64::MAX)));
    }
}
