//! The webhook handler: POSTs the payload JSON to a URL.
//!
//! - Headers: `Content-Type: application/json`, `Jobq-Job-Id`, `Jobq-Attempt`,
//!   `Jobq-Lease-Token` (the attempt's fencing token: the target may report
//!   progress with it, `POST /api/v1/jobs/{id}/progress`).
//! - 2xx: completed; the result is the response body as JSON, or `{"body": text}`
//!   (read up to [`MAX_RESPONSE_BYTES`]).
//! - 429 with a `Retry-After` (seconds or an HTTP date): snoozed until then (up
//!   to [`MAX_RETRY_AFTER`]): the job runs again without using an attempt.
//! - 408, 429 without `Retry-After`, 5xx, connection errors and timeouts:
//!   retryable. A `Retry-After` later than the schedule's next delay is honoured,
//!   up to [`MAX_RETRY_AFTER`].
//! - Any other status: permanent.

use std::io::Read;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use jobq::failure::cut_to;
use jobq::{Handler, HandlerResult, JobContext, JobError};

/// The per-request time limit when the handler's config gives no `timeout`: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most response body read, in bytes (1 MiB).
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// The longest `Retry-After` honoured: 1 day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);
/// How much of an error response's body goes into the error message, in bytes.
const SNIPPET_BYTES: usize = 200;

/// POSTs each job's payload to one URL. See the module docs.
#[derive(Debug)]
pub struct WebhookHandler {
    url: String,
    agent: ureq::Agent,
}

impl WebhookHandler {
    /// A handler posting to `url` (checked by `crate::config::check_url`), giving
    /// up on a request after `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub fn new(url: String, timeout: Option<Duration>) -> WebhookHandler {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout.unwrap_or(DEFAULT_TIMEOUT)))
            // A redirect would turn the POST into a GET without the payload: a 3xx
            // answer is a permanent failure instead.
            .max_redirects(0)
            .build()
            .new_agent();
        WebhookHandler { url, agent }
    }
}

impl Handler for WebhookHandler {
    fn run(&self, ctx: &JobContext, payload: Value) -> HandlerResult {
        if ctx.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        let body = payload.to_string();
        let response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Jobq-Job-Id", ctx.id().to_string())
            .header("Jobq-Attempt", ctx.attempt().to_string())
            .header("Jobq-Lease-Token", ctx.fencing_token().to_string())
            .send(body.as_bytes());
        match response {
            Ok(r) => answer(ctx, r),
            Err(e) => Err(transport_error(&e)),
        }
    }
}

fn answer(ctx: &JobContext, mut response: ureq::http::Response<ureq::Body>) -> HandlerResult {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let mut bytes = Vec::new();
    let read = response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut bytes);
    if status.is_success() {
        read.map_err(|e| JobError::Retryable(format!("reading the webhook's answer: {e}")))?;
        return Ok(result_of(&bytes));
    }
    bytes.truncate(MAX_RESPONSE_BYTES as usize);
    let text = String::from_utf8_lossy(&bytes);
    let snippet = cut_to(text.trim(), SNIPPET_BYTES);
    let mut message = format!("webhook answered HTTP {status}");
    if !snippet.is_empty() {
        message = format!("{message}: {snippet}");
    }
    let code = status.as_u16();
    if let (429, Some(delay)) = (code, retry_after) {
        return Err(JobError::Snooze(delay.min(MAX_RETRY_AFTER)));
    }
    if code == 408 || code == 429 || status.is_server_error() {
        Err(retryable(message, retry_after, ctx.scheduled_backoff()))
    } else {
        Err(JobError::Permanent(message))
    }
}

/// Retryable; at the `Retry-After` delay when that is later than the schedule's.
fn retryable(message: String, retry_after: Option<Duration>, scheduled: Duration) -> JobError {
    match retry_after.map(|d| d.min(MAX_RETRY_AFTER)) {
        Some(delay) if delay > scheduled => JobError::RetryAfter { delay, message },
        _ => JobError::Retryable(message),
    }
}

/// The body as JSON, or `{"body": text}`; a body over [`MAX_RESPONSE_BYTES`] is
/// cut there and kept as `{"body": text, "body_truncated": true}`.
fn result_of(bytes: &[u8]) -> Value {
    if bytes.len() as u64 > MAX_RESPONSE_BYTES {
        let cut = &bytes[..MAX_RESPONSE_BYTES as usize];
        return json!({"body": String::from_utf8_lossy(cut), "body_truncated": true});
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| json!({"body": String::from_utf8_lossy(bytes)}))
}

/// Transport failures are retryable, except a URL or request that can never work.
/// The URL is not repeated (it may hold a secret).
fn transport_error(e: &ureq::Error) -> JobError {
    match e {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            JobError::Permanent("webhook request refused: the URL is invalid".into())
        }
        ureq::Error::Timeout(t) => JobError::Retryable(format!("webhook timed out ({t})")),
        other => JobError::Retryable(format!("webhook request failed: {other}")),
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a date in the past is 0).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_counts_only_when_later_than_the_schedule() {
        let minute = Duration::from_secs(60);
        let hour = Duration::from_secs(3600);
        assert!(matches!(
            retryable("x".into(), Some(hour), minute),
            JobError::RetryAfter { delay, .. } if delay == hour
        ));
        assert!(matches!(
            retryable("x".into(), Some(minute), hour),
            JobError::Retryable(_)
        ));
        assert!(matches!(
            retryable("x".into(), None, hour),
            JobError::Retryable(_)
        ));
        let huge = Duration::from_secs(10 * 86_400);
        assert!(matches!(
            retryable("x".into(), Some(huge), minute),
            JobError::RetryAfter { delay, .. } if delay == MAX_RETRY_AFTER
        ));
    }
}
