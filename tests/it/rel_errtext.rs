//! Reliability: what an exec handler writes on stderr when it fails is stored
//! cut to 4 KiB on a character boundary, as valid UTF-8, with secrets redacted,
//! whatever its size or bytes. Checked in the job's `error_message` and in its
//! `error_context` history, and in the worker's log.

use jobq::Job;
use serde_json::Value;

use crate::util::Sandbox;

/// A secret that must never be stored, in pieces so the test text holds no
/// contiguous copy to match by accident.
fn secret() -> String {
    ["sk", "live", "9f8e7d6c5b4a"].join("_")
}

/// Handlers (each fails once, `max_attempts = 1`); the secret reaches them in
/// the environment, never in the config's command line.
fn config() -> String {
    let cases = [
        // 1 MiB of multi-byte text (32-byte lines), cut by `head -c` inside the 🎉.
        (
            "huge",
            r#"yes 'Fehler ü 🎉 connection reset' | head -c 1048588 >&2; exit 1"#,
        ),
        // Bytes that are not UTF-8.
        (
            "binary",
            r#"printf 'bad \377\376\300 bytes \355\240\200: connection reset\n' >&2; exit 1"#,
        ),
        // Secrets in a short message.
        (
            "secrets",
            r#"echo "POST failed: Authorization: Bearer $SECRET; retry with password=$SECRET&user=a" >&2; exit 1"#,
        ),
        // Secrets at the end of 1 MiB of noise.
        (
            "noisy",
            r#"head -c 1048576 /dev/zero | tr '\0' 'x' >&2; echo >&2; echo "token=$SECRET failed" >&2; exit 1"#,
        ),
        // A long bearer token whose key straddles where stderr's tail is cut.
        (
            "straddle",
            r#"head -c 100000 /dev/zero | tr '\0' 'y' >&2; printf ' Bearer ' >&2; i=0; while [ $i -lt 200 ]; do printf '%s' "$SECRET" >&2; i=$((i+1)); done; echo ' rejected' >&2; exit 1"#,
        ),
        // The same with `password=` straddling the cut.
        (
            "straddle_eq",
            r#"head -c 100000 /dev/zero | tr '\0' 'z' >&2; printf ' password=' >&2; i=0; while [ $i -lt 200 ]; do printf '%s' "$SECRET" >&2; i=$((i+1)); done; echo >&2; exit 1"#,
        ),
    ];
    let mut text = String::from("[workers]\ndurability = \"normal\"\n");
    for (name, script) in cases {
        let script = script.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!(
            "[handlers.{name}]\ncommand = [\"sh\", \"-c\", \"{script}\"]\nmax_attempts = 1\n"
        ));
    }
    text
}

fn stored_texts(job: &Job) -> Vec<String> {
    let mut out = vec![job.error_message.clone().unwrap_or_default()];
    if let Some(Value::Array(errors)) = job.error_context.as_ref().map(|c| &c["errors"]) {
        out.extend(
            errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or("").to_string()),
        );
    }
    out
}

#[test]
fn handler_error_text_is_cut_valid_and_redacted() {
    let s = Sandbox::new();
    s.config(&config());
    let names = [
        "huge",
        "binary",
        "secrets",
        "noisy",
        "straddle",
        "straddle_eq",
    ];
    let ids: Vec<String> = names.iter().map(|n| s.ok(&["enqueue", n])).collect();
    let mut work = s.cmd(&["work", "--drain"]);
    work.env("SECRET", secret());
    let out = work.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !log.contains(&secret()[3..]),
        "the log holds no secret: {log}"
    );

    for (name, id) in names.iter().zip(&ids) {
        // `jobq show --json` goes through serde_json: the stored text is valid UTF-8.
        let job: Job = serde_json::from_value(s.json(&["show", id])).unwrap();
        assert_eq!(job.status.as_str(), "failed", "{name}");
        for text in stored_texts(&job) {
            assert!(!text.is_empty(), "{name}: an error is stored");
            assert!(text.len() <= 4096, "{name}: {} bytes", text.len());
            assert!(!text.contains(&secret()[3..]), "{name} leaks: {text}");
            assert!(!text.contains("live_9f8e"), "{name} leaks: {text}");
        }
        let message = job.error_message.unwrap();
        match *name {
            "huge" => {
                assert!(message.ends_with("Fehler ü \u{FFFD}"), "{message}");
                assert!(message.contains("connection reset\nFehler"), "{message}");
            }
            "binary" => {
                assert!(message.contains("bad \u{FFFD}"), "{message}");
                assert!(message.ends_with("connection reset"), "{message}");
            }
            "secrets" => assert_eq!(
                message, "exited with status 1: POST failed: Authorization: [redacted]",
                "the rest of an Authorization line is redacted"
            ),
            "noisy" => assert!(message.ends_with("token=[redacted] failed"), "{message}"),
            _ => assert!(message.starts_with("exited with status 1"), "{message}"),
        }
    }
}
