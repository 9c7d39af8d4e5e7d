//! Turning a [`NewJob`] request into a stored [`Job`], refusing what is invalid.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{HeldKey, Job, JobId, JobStatus};
use crate::new_job::{check_ref, NewJob};
use crate::queue::QueueOptions;
use crate::queues::{validate_queue_name, DEFAULT_QUEUE};

/// Latest accepted due time: 9999-12-31T23:59:59.999Z.
const MAX_TIME: i64 = 253_402_300_799_999;

/// The deepest nesting of arrays and objects a payload may have: 127, what
/// the JSON reader that reads it back (serde_json, which stops at 128) takes.
/// A deeper payload would be stored and then fail at its claim as unreadable.
const MAX_PAYLOAD_DEPTH: usize = 127;

/// Whether `v` nests arrays and objects more than `limit` deep (a scalar
/// nests 0). Walks the value without recursion and stops at the first
/// container past the limit.
fn depth_over(v: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(_) | Value::Object(_) if d == limit => return true,
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    false
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::Invalid { field, reason }
}

fn due(new: &NewJob, now: Timestamp) -> Result<Timestamp> {
    let at = match (new.run_at, new.delay_s) {
        (Some(_), Some(_)) => {
            return Err(invalid("run_at", "give run_at or delay_s, not both".into()))
        }
        (Some(at), None) => at,
        (None, Some(s)) => Timestamp(
            now.0
                .saturating_add(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)),
        ),
        (None, None) => now,
    };
    if at.0 > MAX_TIME {
        return Err(invalid("run_at", "must be before the year 10000".into()));
    }
    Ok(at)
}

/// Validates `new` and builds the job to insert, with its payload's JSON text.
///
/// # Errors
/// [`Error::Invalid`] naming the field, or [`Error::PayloadTooLarge`].
pub(crate) fn build(mut new: NewJob, now: Timestamp, opts: &QueueOptions) -> Result<(Job, String)> {
    let backoff = opts
        .catalog
        .check(&new.job_type)?
        .and_then(|t| t.backoff.clone());
    opts.catalog.apply_defaults(&mut new);
    let max_attempts = new.max_attempts.unwrap_or(opts.default_max_attempts);
    if !(1..=crate::MAX_ATTEMPTS).contains(&max_attempts) {
        return Err(invalid(
            "max_attempts",
            format!("must be from 1 to {}", crate::MAX_ATTEMPTS),
        ));
    }
    check_ref("entity_type", new.entity_type.as_deref())?;
    check_ref("entity_id", new.entity_id.as_deref())?;
    check_ref("owner", new.owner.as_deref())?;
    if new.entity_type.is_some() != new.entity_id.is_some() {
        return Err(invalid(
            "entity_id",
            "entity_type and entity_id go together".into(),
        ));
    }
    if depth_over(&new.payload, MAX_PAYLOAD_DEPTH) {
        return Err(invalid(
            "payload",
            format!("nests arrays and objects deeper than {MAX_PAYLOAD_DEPTH} levels"),
        ));
    }
    let payload =
        serde_json::to_string(&new.payload).map_err(|e| invalid("payload", e.to_string()))?;
    if payload.len() > opts.max_payload_bytes {
        return Err(Error::PayloadTooLarge {
            size: payload.len(),
            limit: opts.max_payload_bytes,
        });
    }
    let queue = new
        .queue
        .take()
        .unwrap_or_else(|| DEFAULT_QUEUE.to_string());
    validate_queue_name(&queue)?;
    if let Some(u) = &new.unique {
        u.validate()?;
    }
    let unique = new.unique.as_ref().map(|u| HeldKey {
        key: u.key_for(&new.job_type, &new.payload, now),
        states: u.states,
    });
    let (schedule, fire_time) = new.scheduled.take().unzip();
    let job = Job {
        id: JobId::at(now),
        queue,
        next_retry: due(&new, now)?,
        job_type: new.job_type,
        status: JobStatus::Pending,
        priority: new.priority.unwrap_or(0),
        payload: new.payload,
        result: None,
        attempts: 0,
        max_attempts,
        snoozes: 0,
        error_message: None,
        error_context: None,
        entity_type: new.entity_type,
        entity_id: new.entity_id,
        owner: new.owner,
        created_at: now,
        updated_at: now,
        started_at: None,
        completed_at: None,
        locked_by: None,
        lease_expires_at: None,
        cancel_requested: false,
        progress: None,
        unique,
        schedule,
        fire_time,
        lease_token: 0,
        backoff,
        unreadable: Vec::new(),
    };
    Ok((job, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, i| {
            if i % 2 == 0 {
                json!([inner])
            } else {
                json!({ "a": inner })
            }
        })
    }

    #[test]
    fn a_payload_nests_at_most_what_can_be_read_back() {
        assert!(!depth_over(&json!(1), MAX_PAYLOAD_DEPTH));
        assert!(!depth_over(&nested(MAX_PAYLOAD_DEPTH), MAX_PAYLOAD_DEPTH));
        assert!(depth_over(
            &nested(MAX_PAYLOAD_DEPTH + 1),
            MAX_PAYLOAD_DEPTH
        ));
        // What passes reads back; what is refused would not.
        let text = serde_json::to_string(&nested(MAX_PAYLOAD_DEPTH)).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        let text = serde_json::to_string(&nested(MAX_PAYLOAD_DEPTH + 1)).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err());
        // The deepest branch counts, not the width.
        let wide = json!([[1, 2], {"a": [3]}, 4, "x"]);
        assert!(!depth_over(&wide, 3));
        assert!(depth_over(&wide, 2));
    }
}
