//! Recurring schedules: a cron expression in a time zone that enqueues a job at
//! each fire time, exactly once however many processes run it (each fire time
//! is a unique key; no leader).
//!
//! Cron expressions have 5 fields (minute hour day-of-month month day-of-week)
//! or 6 (seconds first), parsed by the `croner` crate, which follows Vixie cron
//! at daylight-saving changes: a fixed time that falls in the spring-forward gap
//! runs once right after it; one that occurs twice at fall-back runs once.
//!
//! ```
//! use jobq::{Schedule, Timestamp};
//! let s = Schedule::new("nightly", "30 2 * * *", "report").unwrap()
//!     .timezone("Europe/Berlin").unwrap();
//! let next = s.next_after(Timestamp::parse_rfc3339("2026-07-01T00:00:00Z").unwrap()).unwrap();
//! assert_eq!(next.to_rfc3339(), "2026-07-01T00:30:00.000Z"); // 02:30 CEST
//! ```

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobId;

/// How late a fire time may be and still run under [`Misfire::Skip`].
pub const SKIP_GRACE: Duration = Duration::from_secs(10);

/// What happens to fire times that passed while no process ran the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// One run for all the missed fire times (the latest), never one per time.
    /// The default.
    #[default]
    RunOnce,
    /// Missed fire times are skipped; a fire time runs only when it is noticed
    /// within [`SKIP_GRACE`].
    Skip,
}

impl FromStr for Misfire {
    type Err = Error;

    fn from_str(s: &str) -> Result<Misfire> {
        match s {
            "run_once" => Ok(Misfire::RunOnce),
            "skip" => Ok(Misfire::Skip),
            other => Err(Error::Invalid {
                field: "misfire",
                reason: format!(
                    "{:?}: expected \"run_once\" or \"skip\"",
                    other.chars().take(32).collect::<String>()
                ),
            }),
        }
    }
}

/// A recurring schedule. Build with [`Schedule::new`] and the setters; declare
/// it in the queue's catalogue ([`crate::Catalog::declare_schedule`]).
#[derive(Debug, Clone)]
pub struct Schedule {
    name: String,
    cron_text: String,
    cron: croner::Cron,
    tz: Tz,
    /// The job type enqueued at each fire time.
    pub job_type: String,
    /// The payload of each job. Default null.
    pub payload: Value,
    /// The jobs' priority; default: the type's.
    pub priority: Option<i32>,
    /// The jobs' queue; default: the type's.
    pub queue: Option<String>,
    /// What happens to fire times missed while nothing ran. Default run once.
    pub misfire: Misfire,
    /// False: declared, shown, never fired (manual runs still work). Default true.
    pub enabled: bool,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            &self.cron_text,
            self.tz,
            &self.job_type,
            &self.payload,
        ) == (
            &other.name,
            &other.cron_text,
            other.tz,
            &other.job_type,
            &other.payload,
        ) && (self.priority, &self.queue, self.misfire, self.enabled)
            == (other.priority, &other.queue, other.misfire, other.enabled)
    }
}

impl Eq for Schedule {}

/// The aliases a cron expression may be instead of fields (Vixie cron's that
/// name times, as the parser knows them; `@reboot` names none).
const ALIASES: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// Parses a cron expression of 5 fields, 6 (seconds first) or an alias
/// (`@daily`), and checks that it fires at all (not `0 0 30 2 *`, 30 February).
fn parse_cron(cron: &str) -> Result<croner::Cron> {
    let shown: String = cron.chars().take(64).collect();
    let invalid = |reason: String| Error::Invalid {
        field: "cron",
        reason: format!("{shown:?}: {reason}"),
    };
    let fields = cron.split_whitespace().count();
    let alias = fields == 1 && cron.trim_start().starts_with('@');
    if alias && !ALIASES.contains(&cron.trim().to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "not a known alias; the aliases are {}",
            ALIASES.join(", ")
        )));
    }
    if !(alias || fields == 5 || fields == 6) {
        let s = if fields == 1 { "" } else { "s" };
        return Err(invalid(format!(
            "{fields} field{s}; a cron expression has 5 (minute hour day-of-month month \
             day-of-week) or 6 (seconds first)"
        )));
    }
    let parsed = croner::Cron::from_str(cron).map_err(|e| invalid(e.to_string()))?;
    // With no year field an expression that fires at all fires within any
    // 28 years (the calendar repeats); the parser's search covers that.
    let epoch = Utc.timestamp_millis_opt(0).single();
    if epoch.is_none_or(|t| parsed.find_next_occurrence(&t, false).is_err()) {
        return Err(invalid("it never fires (no such date)".into()));
    }
    Ok(parsed)
}

impl Schedule {
    /// A schedule `name` firing at `cron` (UTC) that enqueues `job_type` jobs.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `name` (1-64 characters of `[a-z0-9_.:-]`) or
    /// `cron`: not 5 fields, 6 (seconds first) or an alias such as `@daily`;
    /// the parser's reason; or an expression that never fires (30 February).
    pub fn new(name: &str, cron: &str, job_type: &str) -> Result<Schedule> {
        crate::new_job::validate_job_type(name).map_err(|_| Error::Invalid {
            field: "schedule",
            reason: format!("{name:?}: a name is 1-64 characters of [a-z0-9_.:-]"),
        })?;
        crate::new_job::validate_job_type(job_type)?;
        let parsed = parse_cron(cron)?;
        Ok(Schedule {
            name: name.to_string(),
            cron_text: cron.to_string(),
            cron: parsed,
            tz: Tz::UTC,
            job_type: job_type.to_string(),
            payload: Value::Null,
            priority: None,
            queue: None,
            misfire: Misfire::RunOnce,
            enabled: true,
        })
    }

    /// Evaluates the expression in the IANA time zone `name` (default UTC).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `timezone` for a name the time zone database lacks.
    pub fn timezone(mut self, name: &str) -> Result<Schedule> {
        self.tz = name.parse().map_err(|_| Error::Invalid {
            field: "timezone",
            reason: format!(
                "{:?} is not an IANA time zone, e.g. \"Europe/Berlin\"",
                name.chars().take(64).collect::<String>()
            ),
        })?;
        Ok(self)
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the misfire policy.
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cron expression as written.
    pub fn cron(&self) -> &str {
        &self.cron_text
    }

    /// The time zone's IANA name.
    pub fn timezone_name(&self) -> &str {
        self.tz.name()
    }

    fn at(&self, t: Timestamp) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(t.0)
            .single()
            .map(|d| d.with_timezone(&self.tz))
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let next = self.cron.find_next_occurrence(&self.at(t)?, false).ok()?;
        Some(Timestamp(next.timestamp_millis()))
    }

    /// The latest fire time at or before `t`.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let prev = self
            .cron
            .find_previous_occurrence(&self.at(t)?, true)
            .ok()?;
        Some(Timestamp(prev.timestamp_millis()))
    }

    /// `t` as local time in the schedule's zone, RFC 3339 with its offset.
    pub fn local(&self, t: Timestamp) -> String {
        self.at(t)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .unwrap_or_default()
    }

    /// What to do at `now` given the last fire time recorded (`None`: the
    /// schedule was never seen): the fire time to enqueue, and the fire time
    /// to record as done.
    pub(crate) fn decide(&self, last: Option<Timestamp>, now: Timestamp) -> Decision {
        let Some(last) = last else {
            return Decision::record(now); // first sight: from the next fire time on
        };
        match self.latest_at_or_before(now) {
            Some(slot) if slot > last && self.enabled => match self.misfire {
                Misfire::RunOnce => Decision::fire(slot),
                Misfire::Skip if now.since(slot) <= SKIP_GRACE => Decision::fire(slot),
                Misfire::Skip => Decision::record(slot),
            },
            Some(slot) if slot > last => Decision::record(slot),
            _ => Decision::default(),
        }
    }
}

/// What a schedule does at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Enqueue a job for this fire time.
    pub fire: Option<Timestamp>,
    /// Record this as the latest fire time handled.
    pub record: Option<Timestamp>,
}

impl Decision {
    fn fire(t: Timestamp) -> Decision {
        Decision {
            fire: Some(t),
            record: Some(t),
        }
    }

    fn record(t: Timestamp) -> Decision {
        Decision {
            fire: None,
            record: Some(t),
        }
    }
}

/// A schedule's stored state: the latest fire time handled and its job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScheduleState {
    pub last_fire_at: Option<Timestamp>,
    pub last_job_id: Option<JobId>,
}

/// A schedule as `jobq schedule list` and `GET /api/v1/admin/schedules` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleInfo {
    /// The schedule's name.
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone it is evaluated in.
    pub timezone: String,
    /// The job type it enqueues.
    #[schema(pattern = "^[a-z0-9_.:-]{1,64}$")]
    pub job_type: String,
    /// `run_once` or `skip`.
    pub misfire: Misfire,
    /// False when it never fires by itself.
    pub enabled: bool,
    /// The next fire time (UTC); null when disabled or none.
    #[schema(required = true)]
    pub next_fire: Option<Timestamp>,
    /// The next fire time in the schedule's time zone, with its offset.
    #[schema(required = true)]
    pub next_fire_local: Option<String>,
    /// The fire time of the last job this schedule enqueued (UTC; a run by
    /// hand's is the time of the run); null while it has enqueued none. The
    /// time a pool records when it first sees a schedule, and fire times
    /// skipped by the misfire policy, are not fires. When that job was pruned:
    /// the latest fire time handled.
    #[schema(required = true)]
    pub last_fire: Option<Timestamp>,
    /// The last job this schedule enqueued (by its cron or by hand); null when
    /// none.
    #[schema(required = true)]
    pub last_job_id: Option<JobId>,
    /// That job's status now; null when none, or pruned.
    #[schema(required = true)]
    pub last_job_status: Option<crate::job::JobStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_naming_them() {
        let e = Schedule::new("s", "61 * * * *", "t")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid cron: \"61 * * * *\""), "{e}");
        let z = Schedule::new("s", "* * * * *", "t")
            .unwrap()
            .timezone("Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(
            z.contains("\"Mars/Olympus\" is not an IANA time zone"),
            "{z}"
        );
        assert!(Schedule::new("Bad Name", "* * * * *", "t").is_err());
    }

    #[test]
    fn expressions_have_5_or_6_fields_or_an_alias_and_must_fire() {
        for good in ["30 2 * * *", "0 30 2 * * *", "0 0 29 2 *"]
            .into_iter()
            .chain(ALIASES)
        {
            assert!(Schedule::new("s", good, "t").is_ok(), "{good}");
        }
        for (bad, why) in [
            ("* * * * * * *", "7 fields"),
            ("0 0 0 1 1 * 2020", "7 fields"),
            ("* * * *", "4 fields"),
            ("bad", "1 field;"),
            ("@reboot", "not a known alias; the aliases are @yearly"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4 *", "never fires"),
            ("0 0 0 31 11 *", "never fires"),
        ] {
            let e = Schedule::new("s", bad, "t").unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid cron: {bad:?}")), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
        // 29 February fires in leap years only, and still fires.
        let leap = Schedule::new("s", "0 0 29 2 *", "t").unwrap();
        let next = leap.next_after(ts("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(next.to_rfc3339(), "2028-02-29T00:00:00.000Z");
    }

    #[test]
    fn run_once_collapses_a_gap_and_skip_drops_it() {
        let s = Schedule::new("s", "*/1 * * * *", "t").unwrap();
        let last = Some(ts("2026-01-01T08:00:00Z"));
        let back = ts("2026-01-01T10:00:30Z");
        assert_eq!(s.decide(last, back).fire, Some(ts("2026-01-01T10:00:00Z")));
        let skip = s.clone().misfire(Misfire::Skip);
        let d = skip.decide(last, back);
        assert_eq!((d.fire, d.record), (None, Some(ts("2026-01-01T10:00:00Z"))));
        let on_time = skip.decide(last, ts("2026-01-01T10:00:02Z"));
        assert_eq!(on_time.fire, Some(ts("2026-01-01T10:00:00Z")));
        assert_eq!(s.decide(None, back), Decision::record(back));
        assert_eq!(s.decide(Some(back), back), Decision::default());
    }

    #[test]
    fn six_fields_mean_seconds() {
        let s = Schedule::new("s", "*/10 * * * * *", "t").unwrap();
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:01Z")),
            Some(ts("2026-01-01T00:00:10Z"))
        );
    }
}
