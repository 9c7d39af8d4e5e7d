//! Unique jobs: a rule ([`Unique`]) that refuses a second job with the same key
//! while an earlier one is in one of the listed statuses. The database enforces
//! it (a partial unique index over the key, restricted to each row's own listed
//! statuses, written in the insert's own transaction): never a read-then-insert.
//!
//! The key is a SHA-256 over the job type and either the given `key` or the
//! payload in canonical form (object keys sorted), and, with a `period`, the
//! fixed time bucket the job is enqueued in.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{Job, JobStatus, StatusSet};

/// A uniqueness rule: while a job with the same key is in one of `states`
/// (always `pending` and `in_progress`), enqueueing another returns that job,
/// marked duplicate, instead of inserting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unique {
    /// The key, scoped to the job type; `None`: the payload in canonical form.
    #[serde(default)]
    pub key: Option<String>,
    /// The key then holds within fixed buckets of this length (UTC, from the
    /// Unix epoch): a job in the next bucket is a new job. `None`: no buckets.
    #[serde(default, with = "period_s", rename = "period_s")]
    pub period: Option<Duration>,
    /// The statuses in which an earlier job holds the key.
    #[serde(default = "live")]
    pub states: StatusSet,
}

fn live() -> StatusSet {
    StatusSet::LIVE
}

impl Default for Unique {
    fn default() -> Self {
        Unique {
            key: None,
            period: None,
            states: StatusSet::LIVE,
        }
    }
}

impl Unique {
    /// A rule over the payload, held while pending or in progress.
    pub fn by_payload() -> Unique {
        Unique::default()
    }

    /// A rule over an explicit key (scoped to the job type).
    pub fn by_key(key: impl Into<String>) -> Unique {
        Unique {
            key: Some(key.into()),
            ..Unique::default()
        }
    }

    /// Sets the bucket length: whole seconds, more than 0 ([`Unique::validate`]).
    pub fn period(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// Also holds the key in these statuses (pending and in_progress always).
    pub fn also_in(mut self, statuses: &[JobStatus]) -> Self {
        self.states = StatusSet::live_and(&[&self.states.statuses()[..], statuses].concat());
        self
    }

    /// Checks the rule.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `unique.period_s` for a zero period, one
    /// that is not whole seconds, or one longer than
    /// [`crate::state::MAX_WAIT`] (10^11 s: the longest wait the state machine
    /// holds, as every front end refuses), or `unique.key` for an empty or
    /// over-long key.
    pub fn validate(&self) -> Result<()> {
        if self.period.is_some_and(|p| p.is_zero()) {
            return Err(Error::Invalid {
                field: "unique.period_s",
                reason: "must be more than 0".into(),
            });
        }
        if self.period.is_some_and(|p| p > crate::state::MAX_WAIT) {
            return Err(Error::Invalid {
                field: "unique.period_s",
                reason: format!("must be at most {} s", crate::state::MAX_WAIT.as_secs()),
            });
        }
        // The job JSON shows the period in whole seconds (`period_s`): a
        // fraction would be shown as another rule than the one applied.
        if self.period.is_some_and(|p| p.subsec_nanos() != 0) {
            return Err(Error::Invalid {
                field: "unique.period_s",
                reason: "must be whole seconds".into(),
            });
        }
        if self
            .key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 1024)
        {
            return Err(Error::Invalid {
                field: "unique.key",
                reason: "must be 1-1024 bytes".into(),
            });
        }
        Ok(())
    }

    /// The stored key of a job of `job_type` with `payload`, enqueued at `now`.
    pub(crate) fn key_for(&self, job_type: &str, payload: &Value, now: Timestamp) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(job_type.as_bytes());
        h.update([0]);
        match &self.key {
            Some(k) => {
                h.update(b"key\0");
                h.update(k.as_bytes());
            }
            None => {
                h.update(b"payload\0");
                h.update(canonical(payload).as_bytes());
            }
        }
        if let Some(p) = self.period {
            let ms = i64::try_from(p.as_millis()).unwrap_or(i64::MAX).max(1);
            h.update(b"\0bucket\0");
            h.update(now.0.div_euclid(ms).to_string().as_bytes());
        }
        h.finalize().to_vec()
    }
}

/// `value` as JSON text with every object's keys sorted.
pub fn canonical(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The outcome of an enqueue: the job, and whether it is one that already held
/// the unique key (then nothing was inserted). Derefs to the [`Job`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enqueued {
    /// The inserted job, or the existing one holding the key.
    #[serde(flatten)]
    pub job: Job,
    /// True when nothing was inserted because `job` holds the unique key.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl std::ops::Deref for Enqueued {
    type Target = Job;
    fn deref(&self) -> &Job {
        &self.job
    }
}

mod period_s {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_period_longer_than_the_longest_wait_is_refused() {
        let max = crate::state::MAX_WAIT;
        assert!(Unique::by_key("k").period(max).validate().is_ok());
        let err = Unique::by_key("k")
            .period(max + Duration::from_secs(1))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("unique.period_s"), "{err}");
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let a = json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": null}});
        assert_eq!(
            canonical(&a),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn keys_differ_by_type_payload_key_and_bucket() {
        let u = Unique::by_payload();
        let now = Timestamp(3_600_000);
        let k = |t: &str, p: Value| u.key_for(t, &p, now);
        assert_eq!(
            k("a", json!({"x": 1, "y": 2})),
            k("a", json!({"y": 2, "x": 1}))
        );
        assert_ne!(k("a", json!({"x": 1})), k("b", json!({"x": 1})));
        assert_ne!(k("a", json!({"x": 1})), k("a", json!({"x": 2})));
        let by_key = Unique::by_key("user:7");
        assert_eq!(
            by_key.key_for("a", &json!(1), now),
            by_key.key_for("a", &json!(2), now)
        );
        let hourly = Unique::by_payload().period(Duration::from_secs(3600));
        let at = |ms| hourly.key_for("a", &json!(1), Timestamp(ms));
        assert_eq!(at(3_600_000), at(7_199_999));
        assert_ne!(at(7_199_999), at(7_200_000));
    }

    #[test]
    fn state_sets_always_hold_pending_and_in_progress() {
        let s = StatusSet::live_and(&[JobStatus::Completed]);
        assert_eq!(
            s.statuses(),
            [
                JobStatus::Pending,
                JobStatus::InProgress,
                JobStatus::Completed
            ]
        );
        assert_eq!(StatusSet::from_bits(s.bits()), s);
        let rule: Unique = serde_json::from_str(r#"{"states": ["failed"]}"#).unwrap();
        assert!(
            rule.states.contains(JobStatus::Pending) && rule.states.contains(JobStatus::Failed)
        );
        assert!(Unique::by_payload()
            .period(Duration::ZERO)
            .validate()
            .is_err());
        let half = Unique::by_payload().period(Duration::from_millis(1500));
        assert!(half.validate().is_err(), "not whole seconds");
        assert!(Unique::by_payload()
            .period(Duration::from_secs(2))
            .validate()
            .is_ok());
    }
}
