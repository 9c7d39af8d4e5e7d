//! One set of rules for a job request in JSON: the same bodies through the
//! library (`NewJob::from_json` + `Queue::enqueue`), the CLI's `--jsonl` and
//! `POST /api/v1/jobs` get the same verdict, naming the same field.

use jobq::{Catalog, Error, JobType, NewJob, Queue, QueueOptions};
use serde_json::json;

use crate::util::{Sandbox, TEST_CONFIG};

/// What a front end made of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Enqueued,
    Malformed,
    Invalid(&'static str),
    TooLarge,
}
use Verdict::*;

/// The fields an error may name, to read them back from text.
const FIELDS: [&str; 13] = [
    "job_type",
    "queue",
    "payload",
    "priority",
    "max_attempts",
    "run_at",
    "delay_s",
    "entity_type",
    "entity_id",
    "owner",
    "field",
    "body",
    "unknown",
];

fn field_in(text: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|f| text.contains(&format!("invalid {f}:")))
        .copied()
        .unwrap_or("unknown")
}

fn bodies() -> Vec<(String, Verdict)> {
    let big = format!(
        r#"{{"job_type":"echo","payload":"{}"}}"#,
        "a".repeat(1_100_000)
    );
    let deep = format!(
        r#"{{"job_type":"echo","payload":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let table: Vec<(&str, Verdict)> = vec![
        (r#"{"job_type":"echo"}"#, Enqueued),
        (
            r#"{"job_type":"echo","payload":{"a":[1,2],"b":"ü"}}"#,
            Enqueued,
        ),
        (r#"{"job_type":"echo","payload":null}"#, Enqueued),
        (
            r#"{"job_type":"echo","payload":123456789012345678901234567890}"#,
            Enqueued,
        ),
        (r#"{"job_type":"echo","priority":3.0}"#, Enqueued),
        (r#"{"job_type":"echo","queue":"emails"}"#, Enqueued),
        (
            r#"{"job_type":"echo","queue":"Bad Queue"}"#,
            Invalid("queue"),
        ),
        (r#"{"job_type":"echo","queue":5}"#, Invalid("queue")),
        (r#"{"job_type":"echo","queue":null}"#, Invalid("queue")),
        (r#"{"job_type":"echo","priority":-2147483648}"#, Enqueued),
        (
            r#"{"job_type":"echo","priority":2147483648}"#,
            Invalid("priority"),
        ),
        (
            r#"{"job_type":"echo","priority":"high"}"#,
            Invalid("priority"),
        ),
        (
            r#"{"job_type":"echo","priority":null}"#,
            Invalid("priority"),
        ),
        (r#"{"job_type":"echo","priority":1.5}"#, Invalid("priority")),
        (r#"{"job_type":"echo","max_attempts":3.0}"#, Enqueued),
        (
            r#"{"job_type":"echo","max_attempts":0}"#,
            Invalid("max_attempts"),
        ),
        (
            r#"{"job_type":"echo","max_attempts":-1}"#,
            Invalid("max_attempts"),
        ),
        (
            r#"{"job_type":"echo","max_attempts":null}"#,
            Invalid("max_attempts"),
        ),
        (r#"{"job_type":"echo","delay_s":5}"#, Enqueued),
        (r#"{"job_type":"echo","delay_s":-5}"#, Invalid("delay_s")),
        (
            r#"{"job_type":"echo","delay_s":100000000001}"#,
            Invalid("delay_s"),
        ),
        (
            r#"{"job_type":"echo","run_at":"2030-01-01T00:00:00Z"}"#,
            Enqueued,
        ),
        (
            r#"{"job_type":"echo","run_at":"tomorrow"}"#,
            Invalid("run_at"),
        ),
        (
            r#"{"job_type":"echo","run_at":"2030-01-01T00:00:00Z","delay_s":1}"#,
            Invalid("run_at"),
        ),
        (
            r#"{"job_type":"echo","entity_type":"doc","entity_id":"1"}"#,
            Enqueued,
        ),
        (
            r#"{"job_type":"echo","entity_type":"doc"}"#,
            Invalid("entity_id"),
        ),
        (
            r#"{"job_type":"echo","entity_type":"doc","entity_id":7}"#,
            Invalid("entity_id"),
        ),
        (
            r#"{"job_type":"echo","entity_type":"","entity_id":"1"}"#,
            Invalid("entity_type"),
        ),
        (r#"{"job_type":"nope"}"#, Invalid("job_type")),
        (r#"{"job_type":"Echo!"}"#, Invalid("job_type")),
        (r#"{"job_type":7}"#, Invalid("job_type")),
        (r#"{}"#, Invalid("job_type")),
        (r#"{"payload":{}}"#, Invalid("job_type")),
        (r#"{"job_type":"echo","colour":"red"}"#, Invalid("field")),
        (
            r#"{"job_type":"echo","job_type":"echo"}"#,
            Invalid("job_type"),
        ),
        (r#"[1,2]"#, Invalid("body")),
        (r#""echo""#, Invalid("body")),
        (r#"{"job_type":"echo""#, Malformed),
        (r#"{'job_type':'echo'}"#, Malformed),
        (r#"{"job_type":"echo","payload":"\ud800"}"#, Malformed),
    ];
    let mut out: Vec<(String, Verdict)> =
        table.into_iter().map(|(b, v)| (b.to_string(), v)).collect();
    out.push((big, TooLarge));
    out.push((deep, Malformed));
    out
}

fn library(queue: &Queue, body: &str) -> Verdict {
    let result = NewJob::from_json(body).and_then(|j| queue.enqueue(j));
    match result {
        Ok(_) => Enqueued,
        Err(Error::MalformedJson { .. }) => Malformed,
        Err(Error::Invalid { field, .. }) => Invalid(field_in(&format!("invalid {field}:"))),
        Err(Error::PayloadTooLarge { .. }) => TooLarge,
        Err(e) => panic!("library: unexpected error for {body:.80}: {e}"),
    }
}

fn jsonl(sb: &Sandbox, body: &str) -> Verdict {
    std::fs::write(sb.path().join("one.jsonl"), format!("{body}\n")).unwrap();
    let run = sb.run(&["enqueue", "--jsonl", "one.jsonl"]);
    match run.code {
        0 => Enqueued,
        2 if run.stderr.contains("malformed JSON") => Malformed,
        2 if run.stderr.contains("payload too large") => TooLarge,
        2 => Invalid(field_in(&run.stderr)),
        _ => panic!("--jsonl: exit {} for {body:.80}: {}", run.code, run.stderr),
    }
}

fn http(api: &crate::http_util::Api, body: &str) -> Verdict {
    let a = api.call(
        "POST",
        "/api/v1/jobs",
        Some(&api.alice),
        Some(("application/json", body.as_bytes())),
    );
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    match a.status {
        201 => Enqueued,
        400 if a.code() == "malformed_json" => Malformed,
        413 => TooLarge,
        422 => Invalid(field_in(message)),
        s => panic!("http: {s} for {body:.80}: {}", a.text),
    }
}

fn echo_catalog() -> Catalog {
    let mut c = Catalog::declared_only();
    c.declare(JobType::new("echo")).unwrap();
    c
}

#[test]
fn every_front_end_reads_a_job_request_by_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let opts = QueueOptions::new(dir.path().join("lib.db")).catalog(echo_catalog());
    let queue = Queue::open_with(opts).unwrap();
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    let api = crate::http_util::start_opts(|o| o.catalog(echo_catalog()), |_| {});
    let table = bodies();
    assert!(table.len() >= 30);
    for (body, want) in &table {
        let got = [library(&queue, body), jsonl(&sb, body), http(&api, body)];
        assert_eq!(
            got,
            [want.clone(), want.clone(), want.clone()],
            "library, --jsonl, HTTP for {body:.100}"
        );
    }
    let ok = table.iter().filter(|(_, v)| *v == Enqueued).count() as u64;
    assert_eq!(queue.stats().unwrap().total, ok);
    assert_eq!(api.queue.stats().unwrap().total, ok);
    let stored = sb.json(&["list", "--limit", "500"]);
    assert_eq!(stored["total"], json!(ok));
}
