//! What ships beside the binary behaves: the systemd unit passes
//! `systemd-analyze verify` and stops jobq gracefully in time; the tour's
//! gzip handler in `jobq.toml` runs the built example program directly.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{example_bin, jobq_bin, Sandbox};

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// The value of `key=` in the unit (the last one, as systemd reads it).
fn unit_value(unit: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    let mut values = unit.lines().filter_map(|l| l.strip_prefix(prefix.as_str()));
    values.next_back().map(str::to_string)
}

/// `[workers] shutdown_grace` when the config leaves it out (README, jobq.toml).
const DEFAULT_SHUTDOWN_GRACE_S: u64 = 30;

#[test]
fn the_systemd_unit_stops_jobq_with_sigterm_within_its_grace() {
    let unit = std::fs::read_to_string(repo_file("contrib/jobq.service")).unwrap();
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/jobq ") && exec.ends_with(" serve"),
        "{exec}"
    );
    assert_eq!(unit_value(&unit, "KillSignal").as_deref(), Some("SIGTERM"));
    assert_eq!(
        unit_value(&unit, "KillMode").as_deref(),
        Some("mixed"),
        "SIGTERM to jobq alone: running handlers finish within the grace"
    );
    assert_eq!(unit_value(&unit, "ExecReload"), None, "jobq has no reload");
    let stop = unit_value(&unit, "TimeoutStopSec").expect("TimeoutStopSec");
    let stop = jobq::duration::parse_duration(&stop).unwrap();
    assert!(
        stop.as_secs() > DEFAULT_SHUTDOWN_GRACE_S,
        "{stop:?} above shutdown_grace"
    );
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: systemd-analyze is not installed (it comes with systemd)");
        return;
    }
    let unit = std::fs::read_to_string(repo_file("contrib/jobq.service")).unwrap();
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/jobq", jobq_bin().to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobq.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    // It exits 0 after "ignoring" a bad line: no line about the unit may appear.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("jobq.service"))
        .collect();
    assert!(about_unit.is_empty(), "{about_unit:?}");
}

/// Regression: the tour's handler was `cargo run --example gzip_file`, which
/// compiled (or at least took cargo's build lock) inside every job.
#[test]
fn the_tours_gzip_handler_runs_the_built_example_directly() {
    let config = std::fs::read_to_string(repo_file("jobq.toml")).unwrap();
    let parsed: toml::Value = toml::from_str(&config).unwrap();
    let command = parsed["handlers"]["gzip_file"]["command"]
        .as_array()
        .unwrap();
    let program = command[0].as_str().unwrap();
    assert_eq!(
        program, "target/release/examples/gzip_file",
        "no cargo in a job"
    );
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let build = readme.find("cargo build --release --example gzip_file");
    let serve = readme.find("cargo run --release -- serve");
    assert!(
        build.is_some() && build < serve,
        "the quick start builds it before serve starts"
    );

    // The tour, in a copy of the repository's layout: the config as shipped;
    // until the example is built where `cargo build --release --example
    // gzip_file` puts it, jobq refuses to start (hence the quick start's order).
    let s = Sandbox::new();
    s.config(&config);
    let check = s.run(&["check"]);
    assert_eq!(check.code, 2, "{check:?}");
    assert!(check.stdout.contains("gzip_file") || check.stderr.contains("gzip_file"));
    let built = s.path().join("target/release/examples");
    std::fs::create_dir_all(&built).unwrap();
    std::os::unix::fs::symlink(example_bin("gzip_file"), built.join("gzip_file")).unwrap();
    s.ok(&["check"]);
    let text = "a line of the README\n".repeat(500);
    std::fs::write(s.path().join("README.md"), &text).unwrap();
    let payload = r#"{"path": "README.md", "output": "README.md.gz"}"#;
    let id = s.ok(&["enqueue", "gzip_file", "--payload", payload]);
    s.ok(&["work", "--drain"]);
    let job = s.json(&["show", &id]);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"]["bytes_in"], text.len());
    let gz = std::fs::read(s.path().join("README.md.gz")).unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, text);
}
