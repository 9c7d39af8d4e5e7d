//! `jobq queue set` changes a queue's limits from the command line, and `none`
//! removes one (every valid form once panicked in the argument parser).

use serde_json::{json, Value};

use crate::util::{Sandbox, TEST_CONFIG};

fn queue(sb: &Sandbox, name: &str) -> Value {
    let all = sb.json(&["queue", "list"]);
    let found = all.as_array().unwrap().iter().find(|q| q["name"] == name);
    found.unwrap_or_else(|| panic!("{name} in {all}")).clone()
}

#[test]
fn queue_set_changes_and_removes_limits() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    sb.ok(&["enqueue", "echo", "--queue", "mail"]);
    let set = sb.json(&[
        "queue",
        "set",
        "mail",
        "--concurrency",
        "5",
        "--rate-limit",
        "3/10s",
    ]);
    assert_eq!(
        (&set["concurrency"], &set["rate_limit"]),
        (&json!(5), &json!("3/10s"))
    );
    let listed = queue(&sb, "mail");
    assert_eq!(
        (&listed["concurrency"], &listed["rate_limit"]),
        (&json!(5), &json!("3/10s"))
    );
    // One limit at a time; the other stays.
    sb.ok(&["queue", "set", "mail", "--concurrency", "none"]);
    let listed = queue(&sb, "mail");
    assert_eq!(
        (&listed["concurrency"], &listed["rate_limit"]),
        (&Value::Null, &json!("3/10s"))
    );
    sb.ok(&["queue", "set", "mail", "--rate-limit", "none"]);
    let listed = queue(&sb, "mail");
    assert_eq!(
        (&listed["concurrency"], &listed["rate_limit"]),
        (&Value::Null, &Value::Null)
    );
}
