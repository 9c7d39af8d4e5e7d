//! Property tests (proptest) of payload and error-text handling: whatever comes
//! in is stored verbatim or refused with a clear error, never a panic.

use proptest::prelude::*;
use serde_json::Value;

use jobq::{failure::clean_error_text, Error, NewJob, Queue, QueueOptions};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_json_payload_round_trips_or_is_refused_as_too_large(payload in json_value()) {
        let dir = tempfile::tempdir().unwrap();
        let opts = QueueOptions::new(dir.path().join("f.db")).max_payload_bytes(4096);
        let q = Queue::open_with(opts).unwrap();
        match q.enqueue(NewJob::new("fuzz", payload.clone())) {
            Ok(job) => prop_assert_eq!(q.get(job.id).unwrap().payload, payload),
            Err(Error::PayloadTooLarge { size, limit }) => prop_assert!(size > limit),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    #[test]
    fn any_request_json_parses_or_is_refused_never_panics(text in "\\PC{0,200}") {
        let _ = serde_json::from_str::<NewJob>(&text);
    }

    #[test]
    fn any_job_type_is_accepted_only_when_valid(t in "\\PC{0,80}") {
        let valid = !t.is_empty() && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c));
        prop_assert_eq!(jobq::validate_job_type(&t).is_ok(), valid);
    }

    #[test]
    fn error_text_is_cut_valid_and_classified_without_panics(text in "\\PC{0,6000}") {
        let cleaned = clean_error_text(&text);
        prop_assert!(cleaned.len() <= jobq::failure::MAX_ERROR_BYTES);
        let _ = jobq::classify(&text);
    }

    #[test]
    fn secrets_never_survive_cleaning(secret in "[A-Za-z0-9]{8,40}", before in "[a-z ]{0,20}") {
        for key in ["Bearer ", "password=", "token=", "secret=", "api_key="] {
            let text = format!("{before}{key}{secret} rest");
            let cleaned = clean_error_text(&text);
            prop_assert!(!cleaned.contains(&secret), "{} kept in {}", secret, cleaned);
        }
    }
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let text = format!(r#"{{"job_type":"a","payload":{deep}}}"#);
    let err = serde_json::from_str::<NewJob>(&text).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn lone_surrogates_are_refused_clearly() {
    let err = serde_json::from_str::<NewJob>(r#"{"job_type":"a","payload":"\ud800"}"#).unwrap_err();
    assert!(err.to_string().contains("escape"), "{err}");
    let err =
        serde_json::from_str::<NewJob>(r#"{"job_type":"a","payload":"\ud800 x"}"#).unwrap_err();
    assert!(err.to_string().contains("escape"), "{err}");
}
