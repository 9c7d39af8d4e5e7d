//! `[schedules.NAME]`: recurring schedules, and `unique = {...}` of a handler.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use jobq::duration;
use jobq::{JobStatus, Misfire, Schedule, StatusSet, Unique};

/// One `[schedules.NAME]` section: checked as it is read (cron, time zone,
/// misfire), so a bad one is refused naming its line and key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The cron expression: 5 fields, or 6 with seconds first.
    #[serde(deserialize_with = "cron")]
    pub cron: String,
    /// The job type enqueued at each fire time (must be declared).
    pub job_type: toml::Spanned<String>,
    /// The jobs' payload. Default null.
    #[serde(default, deserialize_with = "payload")]
    pub payload: Value,
    /// The jobs' priority. Default: the type's.
    #[serde(default)]
    pub priority: Option<i32>,
    /// The jobs' queue. Default: the type's.
    #[serde(default, deserialize_with = "queue")]
    pub queue: Option<String>,
    /// The IANA time zone the expression is read in. Default `"UTC"`.
    #[serde(default = "utc", deserialize_with = "timezone")]
    pub timezone: String,
    /// `"run_once"` (default) or `"skip"`.
    #[serde(default, deserialize_with = "misfire")]
    pub misfire: Misfire,
    /// False: shown but never fired by itself. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

impl ScheduleConfig {
    /// The schedule `name` this section describes.
    ///
    /// # Errors
    /// The library's error for a value the parse did not check (none expected).
    pub fn schedule(&self, name: &str) -> jobq::Result<Schedule> {
        let mut s = Schedule::new(name, &self.cron, self.job_type.get_ref())?
            .timezone(&self.timezone)?
            .payload(self.payload.clone())
            .misfire(self.misfire);
        s.priority = self.priority;
        s.queue = self.queue.clone();
        s.enabled = self.enabled;
        Ok(s)
    }
}

fn cron<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    Schedule::new("check", &text, "check").map_err(serde::de::Error::custom)?;
    Ok(text)
}

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    Schedule::new("check", "* * * * *", "check")
        .and_then(|s| s.timezone(&text))
        .map_err(serde::de::Error::custom)?;
    Ok(text)
}

fn misfire<'de, D: Deserializer<'de>>(d: D) -> Result<Misfire, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn queue<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(d)?;
    jobq::validate_queue_name(&name).map_err(serde::de::Error::custom)?;
    Ok(Some(name))
}

fn payload<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let v = toml::Value::deserialize(d)?;
    serde_json::to_value(v).map_err(serde::de::Error::custom)
}

/// `unique = true` or `unique = { key = "...", period = "1h", states = [...] }`.
pub(crate) fn unique<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Unique>, D::Error> {
    fn custom<E: serde::de::Error>(m: impl std::fmt::Display) -> E {
        E::custom(m)
    }
    let table = match toml::Value::deserialize(d)? {
        toml::Value::Boolean(true) => return Ok(Some(Unique::default())),
        toml::Value::Boolean(false) => return Ok(None),
        toml::Value::Table(t) => t,
        _ => {
            return Err(custom::<D::Error>(
                "expected true or { key = \"...\", period = \"1h\", states = [\"completed\"] }",
            ))
        }
    };
    let mut u = Unique::default();
    for (k, v) in table {
        match (k.as_str(), v) {
            ("key", toml::Value::String(s)) => u.key = Some(s),
            ("period", toml::Value::String(p)) => {
                u.period = Some(duration::parse_duration(&p).map_err(custom::<D::Error>)?)
            }
            ("states", toml::Value::Array(items)) => {
                let mut states = Vec::new();
                for item in items {
                    let name = item
                        .as_str()
                        .ok_or_else(|| custom::<D::Error>("states: expected status names"))?;
                    states.push(name.parse::<JobStatus>().map_err(custom::<D::Error>)?);
                }
                u.states = StatusSet::live_and(&states);
            }
            ("key" | "period" | "states", _) => {
                let want = if k == "states" { "a list" } else { "a string" };
                return Err(custom::<D::Error>(format!("{k}: expected {want}")));
            }
            (other, _) => {
                return Err(custom::<D::Error>(format!(
                    "unknown key {other:?} in unique (expected key, period, states)"
                )))
            }
        }
    }
    // The library names the JSON fields (`unique.period_s`); a config file
    // says `period`.
    u.validate().map_err(|e| match e {
        jobq::Error::Invalid {
            field: "unique.period_s",
            reason,
        } => custom::<D::Error>(format!("unique.period: {reason}")),
        e => custom::<D::Error>(e),
    })?;
    Ok(Some(u))
}
