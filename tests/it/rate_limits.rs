//! Rate limits at their bounds: the longest period the text form allows is
//! enforced like any other, and longer ones are refused before they are stored.

use std::time::Duration;

use jobq::{LimitsChange, NewJob, RateLimit};
use serde_json::Value;

use crate::backends::both;
use crate::util::{Sandbox, TEST_CONFIG};

const LEASE: Duration = Duration::from_secs(300);

both! {
fn the_longest_period_is_enforced(db) {
    let q = db.open(|o| o);
    for _ in 0..3 {
        q.enqueue(NewJob::new("t", Value::Null).queue("long")).unwrap();
    }
    let limit: RateLimit = "1/999999999d".parse().unwrap();
    let change = LimitsChange {
        rate_limit: Some(Some(limit)),
        ..LimitsChange::default()
    };
    q.set_queue_limits("long", change).unwrap();
    assert_eq!(q.claim("w", None, 10, LEASE).unwrap().len(), 1);
    assert!(q.claim("w", None, 10, LEASE).unwrap().is_empty());
}
}

#[test]
fn a_period_past_nine_digits_is_refused_by_the_cli() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    sb.ok(&["enqueue", "echo"]);
    let run = sb.run(&["queue", "set", "default", "--rate-limit", "1/53375995584d"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("at most 9 digits"), "{run:?}");
    let listed = sb.json(&["queue", "list"]);
    assert!(
        listed[0]["rate_limit"].is_null(),
        "nothing stored: {listed}"
    );
}
