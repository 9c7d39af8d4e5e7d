//! `[handlers.NAME]`: one job type and what runs it (a command or a webhook URL).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use jobq::duration;
use jobq::retry::Backoff;

/// What runs a declared job type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerKind {
    /// `command = ["program", "arg", ...]`: the exec handler runs the program
    /// directly (no shell) with the payload JSON on stdin. Never empty.
    Command(Vec<String>),
    /// `url = "http://..."`: the webhook handler POSTs the payload JSON here.
    /// An absolute `http` or `https` URL with a host.
    Url(String),
}

/// One `[handlers.NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerConfig {
    /// What runs the jobs.
    pub kind: HandlerKind,
    /// The longest an attempt may run before it is killed (exec) or abandoned
    /// (webhook) and recorded as retryable "timed out after N s". Default: none
    /// for commands, 30 s for webhooks.
    pub timeout: Option<Duration>,
    /// `max_attempts` of jobs of this type enqueued without one. Default: the
    /// queue's default (5).
    pub max_attempts: Option<u32>,
    /// Priority of jobs of this type enqueued without one. Default 0.
    pub priority: Option<i32>,
    /// The queue of jobs of this type enqueued without one. Default `"default"`.
    pub queue: Option<String>,
    /// The uniqueness rule of jobs of this type that set none. Default: none.
    pub unique: Option<jobq::Unique>,
    /// The backoff schedule of this type (`["1m", "5m", "15m", "1h"]`; the last step
    /// repeats; at least one step). Default: the library's schedule.
    pub backoff: Option<Backoff>,
    /// `env = { KEY = "value" }`: variables for a command's program, set after
    /// the inherited ones. Default: none.
    pub env: BTreeMap<String, String>,
    /// `inherit_env = false`: the program gets only `env` and the `JOBQ_JOB_*`
    /// variables. Default true: jobq's environment without its own secrets
    /// (`JOBQ_CRON_SECRET`, `JOBQ_METRICS_TOKEN`, a `JOBQ_DB` URL with a password).
    pub inherit_env: bool,
}

/// The section as written, before the command/url rule is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandler {
    #[serde(default)]
    command: Option<Command>,
    #[serde(default)]
    url: Option<WebhookUrl>,
    #[serde(default, deserialize_with = "positive_option")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "at_least_one")]
    max_attempts: Option<u32>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default, deserialize_with = "queue_name")]
    queue: Option<String>,
    #[serde(default, deserialize_with = "crate::config::schedule::unique")]
    unique: Option<jobq::Unique>,
    #[serde(default, deserialize_with = "backoff")]
    backoff: Option<Backoff>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    inherit_env: Option<bool>,
}

impl<'de> Deserialize<'de> for HandlerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawHandler::deserialize(d)?;
        let kind =
            match (raw.command, raw.url) {
                (Some(c), None) => HandlerKind::Command(c.0),
                (None, Some(_)) if raw.env.is_some() || raw.inherit_env.is_some() => {
                    return Err(serde::de::Error::custom(
                        "`env` and `inherit_env` apply to `command` handlers only",
                    ))
                }
                (None, Some(u)) => HandlerKind::Url(u.0),
                (Some(_), Some(_)) => {
                    return Err(serde::de::Error::custom(
                        "give exactly one of `command` and `url`, not both",
                    ))
                }
                (None, None) => return Err(serde::de::Error::custom(
                    "give exactly one of `command = [\"program\", ...]` and `url = \"http://...\"`",
                )),
            };
        if let Some(bad) = raw
            .env
            .iter()
            .flatten()
            .find_map(|(k, v)| env_problem(k, v))
        {
            return Err(serde::de::Error::custom(bad));
        }
        Ok(HandlerConfig {
            kind,
            timeout: raw.timeout,
            max_attempts: raw.max_attempts,
            priority: raw.priority,
            queue: raw.queue,
            unique: raw.unique,
            backoff: raw.backoff,
            env: raw.env.unwrap_or_default(),
            inherit_env: raw.inherit_env.unwrap_or(true),
        })
    }
}

/// Why `KEY = value` cannot be an environment variable, if it cannot: an empty
/// name, `=` in the name, or a NUL byte anywhere (the OS would refuse it at
/// every run, or split the name).
fn env_problem(key: &str, value: &str) -> Option<String> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Some(format!(
            "env: {key:?} is not a variable name (non-empty, without `=` or NUL)"
        ));
    }
    value
        .contains('\0')
        .then(|| format!("env: the value of {key} contains a NUL byte"))
}

/// A non-empty argv whose program is not empty.
struct Command(Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let argv = Vec::<String>::deserialize(d)?;
        match argv.first() {
            None => Err(serde::de::Error::custom(
                "empty command: give at least the program, e.g. [\"cat\"]",
            )),
            Some(p) if p.trim().is_empty() => {
                Err(serde::de::Error::custom("empty program name in command"))
            }
            Some(_) => Ok(Command(argv)),
        }
    }
}

/// An absolute http(s) URL with a host.
struct WebhookUrl(String);

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        check_url(&text).map_err(serde::de::Error::custom)?;
        Ok(WebhookUrl(text))
    }
}

/// Checks that `text` is an absolute `http://` or `https://` URL with a host.
///
/// # Errors
/// A message saying what is wrong (the URL itself is not repeated: it may hold a secret).
pub fn check_url(text: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = text
        .parse()
        .map_err(|e| format!("invalid URL: {e} (expected http://host/path)"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("invalid URL: the scheme must be http:// or https://".into()),
    }
    // The URI parser keeps a port that does not fit 16 bits as no port at
    // all: read it from the authority (after any `user:password@`, and after
    // an IPv6 address's `]`).
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let after_host = host_port.rsplit(']').next().unwrap_or("");
    if let Some((_, port)) = after_host.rsplit_once(':') {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err("invalid URL: the port must be 1-65535".into());
        }
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("invalid URL: no host".into()),
    }
}

fn positive_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let t = duration::deserialize(d)?;
    if t.is_zero() {
        return Err(serde::de::Error::custom("must be more than 0"));
    }
    Ok(Some(t))
}

fn backoff<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Backoff>, D::Error> {
    let steps = duration::deserialize_list(d)?.unwrap_or_default();
    Backoff::new(steps)
        .map(Some)
        .map_err(|_| serde::de::Error::custom("needs at least one step, e.g. [\"30s\", \"5m\"]"))
}

fn queue_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(d)?;
    jobq::validate_queue_name(&name).map_err(serde::de::Error::custom)?;
    Ok(Some(name))
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u32::deserialize(d)?;
    if !(1..=jobq::MAX_ATTEMPTS).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "must be from 1 to {}",
            jobq::MAX_ATTEMPTS
        )));
    }
    Ok(Some(n))
}
