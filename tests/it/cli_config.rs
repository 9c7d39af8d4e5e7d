//! A bad `jobq.toml` is refused before anything starts, naming file, line and key.

use crate::util::Sandbox;

#[test]
fn bad_configs_are_refused_with_file_line_and_key() {
    let cases = [
        (
            "[workers]\ncount = 2\nthreads = 3\n",
            "jobq.toml:3: key `workers.threads`",
            "unknown field",
        ),
        (
            "[handlers.echo]\ncommand = []\n",
            "jobq.toml:2: key `handlers.echo.command`",
            "empty command",
        ),
        (
            "\n\n[handlers.hook]\nurl = \"htp:/x\"\n",
            "jobq.toml:4: key `handlers.hook.url`",
            "invalid URL",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\ntimeout = \"10 sekunden\"\n",
            "jobq.toml:3: key `handlers.echo.timeout`",
            "invalid duration",
        ),
        (
            "[handlers.both]\ncommand = [\"cat\"]\nurl = \"http://127.0.0.1:1/\"\n",
            "jobq.toml:1: key `handlers.both`",
            "not both",
        ),
        (
            "[handlers.neither]\ntimeout = \"1s\"\n",
            "jobq.toml:1: key `handlers.neither`",
            "exactly one of",
        ),
        (
            "[workers]\nlease = \"30ms\"\n",
            "jobq.toml:2: key `workers.lease`",
            "at least 1s",
        ),
    ];
    for (text, place, words) in cases {
        let s = Sandbox::new();
        s.config(text);
        for args in [&["enqueue", "echo"][..], &["work", "--drain"], &["stats"]] {
            let run = s.run(args);
            assert_eq!(run.code, 2, "{text:?} {args:?}: {}", run.stderr);
            assert!(run.stderr.contains(place), "{text:?}: {}", run.stderr);
            assert!(run.stderr.contains(words), "{text:?}: {}", run.stderr);
            assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        }
        assert!(!s.db().exists(), "nothing started: no database was created");
    }
}

#[test]
fn an_explicit_config_path_must_exist_and_wins_over_the_default() {
    let s = Sandbox::new();
    s.config("[handlers.echo]\ncommand = [\"cat\"]\n");
    let run = s.run(&["--config", "missing.toml", "stats"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("missing.toml"), "{}", run.stderr);
    std::fs::write(
        s.path().join("other.toml"),
        "[handlers.other]\ncommand = [\"cat\"]\n",
    )
    .unwrap();
    let run = s.run(&["--config", "other.toml", "enqueue", "echo"]);
    assert!(
        run.stderr.contains("declared types: jobq.prune, other"),
        "{}",
        run.stderr
    );
    let run = s
        .cmd(&["enqueue", "other"])
        .env("JOBQ_CONFIG", "other.toml")
        .output()
        .unwrap();
    assert!(run.status.success(), "JOBQ_CONFIG is read");
}

#[test]
fn the_payload_limit_is_a_config_key() {
    let s = Sandbox::new();
    s.config("[database]\nmax_payload_bytes = 100\n\n[handlers.echo]\ncommand = [\"cat\"]\n");
    let small = format!("{{\"text\": \"{}\"}}", "a".repeat(80));
    let big = format!("{{\"text\": \"{}\"}}", "a".repeat(120));
    s.ok(&["enqueue", "echo", "--payload", &small]);
    let run = s.run(&["enqueue", "echo", "--payload", &big]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "payload too large: {} bytes, the limit is 100 bytes",
            serde_json::from_str::<serde_json::Value>(&big)
                .unwrap()
                .to_string()
                .len()
        )),
        "{}",
        run.stderr
    );
    s.config("[database]\nmax_payload_bytes = 0\n");
    let run = s.run(&["stats"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("database.max_payload_bytes") && run.stderr.contains("at least 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn flag_variables_set_to_nothing_count_as_unset() {
    let s = Sandbox::new();
    s.config("[handlers.echo]\ncommand = [\"cat\"]\n");
    let run = s
        .cmd(&["enqueue", "echo"])
        .env("JOBQ_CONFIG", "")
        .env("JOBQ_DB", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(s.db().exists(), "the default ./jobq.db is used");
}
