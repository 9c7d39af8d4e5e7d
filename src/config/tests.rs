//! Each refusal names the file, the line and the key.

use std::time::Duration;

use super::*;
use jobq::NewJob;

fn refused(text: &str) -> (usize, String, String) {
    match Config::parse(text, "conf/jobq.toml") {
        Err(ConfigError::Invalid {
            path,
            line,
            key,
            message,
        }) => {
            assert_eq!(path, Path::new("conf/jobq.toml"));
            (line, key, message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_full_config_parses() {
    let cfg = Config::parse(
        r#"
[workers]
count = 8
lease = "2m"
poll_interval = "250ms"
recovery_interval = "3s"
durability = "normal"
timeout_grace = "1s"
prefetch = 50
prefetch_ttl = "750ms"

[handlers.echo]
command = ["cat"]
timeout = "30s"
max_attempts = 3
priority = 5
backoff = ["1s", "5m"]

[handlers.notify]
url = "https://example.com/hook?x=1"

[server]
addr = "0.0.0.0:9000"
cron_secret = "s3cr3t"
max_body_bytes = 1000
threads = 2

[prune]
retention = "1d"
failed_retention = "2d"
"#,
        "jobq.toml",
    )
    .unwrap();
    assert_eq!(cfg.workers.count, 8);
    assert_eq!(cfg.worker_config().prefetch, 50);
    assert_eq!(cfg.worker_config().prefetch_ttl, Duration::from_millis(750));
    assert_eq!(cfg.workers.poll_interval, Duration::from_millis(250));
    assert_eq!(
        cfg.worker_config().recovery_interval,
        Duration::from_secs(3)
    );
    assert_eq!(cfg.workers.durability, jobq::Durability::Normal);
    let echo = &cfg.handlers["echo"];
    assert_eq!(echo.kind, HandlerKind::Command(vec!["cat".into()]));
    assert_eq!(
        echo.backoff.as_ref().map(|b| b.steps()),
        Some(&[Duration::from_secs(1), Duration::from_secs(300)][..])
    );
    assert_eq!(echo.max_attempts, Some(3));
    assert_eq!(cfg.catalog().names(), ["echo", "jobq.prune", "notify"]);
    assert_eq!(cfg.prune.failed_retention, Duration::from_secs(2 * 86_400));
    assert!(!format!("{:?}", cfg.server).contains("s3cr3t"));
    assert_eq!(cfg.worker_config().lease, Duration::from_secs(120));
}

#[test]
fn an_empty_config_is_the_defaults() {
    let cfg = Config::parse("", "jobq.toml").unwrap();
    assert_eq!(cfg, Config::default());
    assert_eq!(cfg.prune.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(cfg.server.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(cfg.catalog().names(), ["jobq.prune"]);
}

#[test]
fn refusals_name_the_line_and_the_key() {
    let table = [
        (
            "[workers]\ncount = 2\ncolour = 1\n",
            3,
            "workers.colour",
            "unknown field",
        ),
        (
            "[handlers.echo]\ncommand = []\n",
            2,
            "handlers.echo.command",
            "empty command",
        ),
        (
            "[handlers.echo]\ncommand = [\"\"]\n",
            2,
            "handlers.echo.command",
            "empty program",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\nurl = \"http://x\"\n",
            1,
            "handlers.echo",
            "not both",
        ),
        (
            "\n[handlers.echo]\ntimeout = \"1s\"\n",
            2,
            "handlers.echo",
            "exactly one of",
        ),
        (
            "[handlers.echo]\nurl = \"ftp://x\"\n",
            2,
            "handlers.echo.url",
            "http://",
        ),
        (
            "[handlers.echo]\nurl = \"not a url\"\n",
            2,
            "handlers.echo.url",
            "invalid URL",
        ),
        (
            "[handlers.echo]\nurl = \"/path/only\"\n",
            2,
            "handlers.echo.url",
            "invalid URL",
        ),
        (
            "[handlers.echo]\nurl = \"http://127.0.0.1:99999/x\"\n",
            2,
            "handlers.echo.url",
            "the port must be 1-65535",
        ),
        (
            "[handlers.echo]\nurl = \"http://127.0.0.1:0/x\"\n",
            2,
            "handlers.echo.url",
            "the port must be 1-65535",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\nbackoff = [\"1m\", \"5q\"]\n",
            3,
            "handlers.echo.backoff",
            "invalid duration \"5q\"",
        ),
        (
            "[workers]\nlease = \"5x\"\n",
            2,
            "workers.lease",
            "invalid duration",
        ),
        (
            "[workers]\nlease = \"0s\"\n",
            2,
            "workers.lease",
            "at least 1s",
        ),
        (
            "[workers]\nrecovery_interval = \"0s\"\n",
            2,
            "workers.recovery_interval",
            "more than 0",
        ),
        (
            "[workers]\ncount = 0\n",
            2,
            "workers.count",
            "must be 1-1000",
        ),
        (
            "[workers]\nprefetch = 10001\n",
            2,
            "workers.prefetch",
            "must be 0-10000",
        ),
        (
            "[workers]\nprefetch_ttl = \"0s\"\n",
            2,
            "workers.prefetch_ttl",
            "more than 0",
        ),
        (
            "[workers]\ndurability = \"off\"\n",
            2,
            "workers.durability",
            "full",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\ntimeout = \"soon\"\n",
            3,
            "handlers.echo.timeout",
            "invalid duration",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\nmax_attempts = 0\n",
            3,
            "handlers.echo.max_attempts",
            "from 1 to 2147483647",
        ),
        (
            "[queues.big]\nconcurrency = 2147483648\n",
            2,
            "queues.big.concurrency",
            "from 1 to 2147483647",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\nmax_attempts = 2147483648\n",
            3,
            "handlers.echo.max_attempts",
            "from 1 to 2147483647",
        ),
        (
            "[handlers.echo]\ncommand = [\"cat\"]\nretries = 3\n",
            3,
            "handlers.echo.retries",
            "unknown field",
        ),
        (
            "[handlers.\"Bad Name\"]\ncommand = [\"cat\"]\n",
            1,
            "handlers.\"Bad Name\"",
            "invalid job type",
        ),
        (
            "[handlers.\"jobq.prune\"]\ncommand = [\"cat\"]\n",
            1,
            "handlers.\"jobq.prune\"",
            "reserved",
        ),
        (
            "[server]\naddr = \"nowhere\"\n",
            2,
            "server.addr",
            "invalid socket address",
        ),
        (
            "[server]\ncron_secret = \"\"\n",
            2,
            "server.cron_secret",
            "empty secret",
        ),
        (
            "[prune]\nretention = \"6M\"\n",
            2,
            "prune.retention",
            "invalid duration \"6M\": unknown unit \"M\"",
        ),
        (
            "[pruning]\nretention = \"7d\"\n",
            1,
            "pruning",
            "unknown field",
        ),
        ("[workers]\ncount = \n", 2, "workers.count", ""),
        (
            "[workers]\ncount = 100000\n",
            2,
            "workers.count",
            "must be 1-1000",
        ),
        (
            "[database]\npool_size = 1\n",
            2,
            "database.pool_size",
            "must be at least 2",
        ),
    ];
    for (text, line, key, words) in table {
        let (l, k, m) = refused(text);
        assert_eq!((l, k.as_str()), (line, key), "{text:?}: {m}");
        assert!(m.contains(words), "{text:?}: {m:?} lacks {words:?}");
    }
}

#[test]
fn the_message_shows_file_line_and_key() {
    let err = Config::parse("[workers]\nlease = \"5x\"\n", "conf/jobq.toml").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("conf/jobq.toml:2: key `workers.lease`: invalid duration"),
        "{text}"
    );
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = Config::load(Path::new("/nonexistent/jobq.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/jobq.toml"));
}

#[test]
fn type_defaults_fill_only_what_is_missing() {
    let cfg = Config::parse(
        "[handlers.echo]\ncommand = [\"cat\"]\npriority = 5\nmax_attempts = 2\n",
        "jobq.toml",
    )
    .unwrap();
    let mut job = NewJob::new("echo", serde_json::Value::Null).priority(1);
    let catalog = cfg.catalog();
    catalog.apply_defaults(&mut job);
    assert_eq!((job.priority, job.max_attempts), (Some(1), Some(2)));
    assert!(catalog.is_declared_only());
    assert_eq!(catalog.names(), ["echo", "jobq.prune"]);
}

#[test]
fn an_empty_backoff_is_refused_naming_the_line_and_key() {
    let text = "[handlers.echo]\ncommand = [\"cat\"]\nbackoff = []\n";
    let err = Config::parse(text, "jobq.toml").unwrap_err().to_string();
    assert!(err.contains("jobq.toml"), "{err}");
    assert!(err.contains("jobq.toml:3:"), "{err}");
    assert!(err.contains("backoff"), "{err}");
    assert!(err.contains("at least one step"), "{err}");
    let zero = "[handlers.echo]\ncommand = [\"cat\"]\nbackoff = [\"0s\"]\n";
    let cfg = Config::parse(zero, "jobq.toml").unwrap();
    let b = cfg.handlers["echo"].backoff.clone().unwrap();
    assert_eq!(b.delay_after(3), Duration::ZERO, "0s: due again at once");
}

#[test]
fn durations_may_be_sums_fractions_and_long_units() {
    let text = "[workers]\nlease = \"1h 30m\"\n\n[handlers.echo]\ncommand = [\"cat\"]\ntimeout = \"1.5s\"\nbackoff = [\"90 seconds\", \"2 days\"]\n";
    let cfg = Config::parse(text, "jobq.toml").unwrap();
    assert_eq!(cfg.workers.lease, Duration::from_secs(5400));
    let echo = &cfg.handlers["echo"];
    assert_eq!(echo.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        echo.backoff.as_ref().map(|b| b.steps()),
        Some(&[Duration::from_secs(90), Duration::from_secs(2 * 86_400)][..])
    );
}

#[test]
fn env_entries_the_os_would_refuse_are_refused_naming_the_handler() {
    let cases = [
        ("{ A = \"x\\u0000y\" }", "NUL"),
        ("{ \"A=B\" = \"x\" }", "not a variable name"),
        ("{ \"\" = \"x\" }", "not a variable name"),
    ];
    for (env, words) in cases {
        let text = format!("[handlers.echo]\ncommand = [\"cat\"]\nenv = {env}\n");
        let (line, key, message) = refused(&text);
        assert_eq!(line, 1, "{env}: the handler's table");
        assert!(key.contains("handlers.echo"), "{env}: {key}");
        assert!(message.contains(words), "{env}: {message}");
    }
    let fine = "[handlers.echo]\ncommand = [\"cat\"]\nenv = { A_1 = \"x=y\" }\n";
    let cfg = Config::parse(fine, "jobq.toml").unwrap();
    assert_eq!(cfg.handlers["echo"].env["A_1"], "x=y");
}

#[test]
fn the_server_addr_may_name_a_host() {
    let cfg = Config::parse("[server]\naddr = \"localhost:8099\"\n", "jobq.toml").unwrap();
    assert_eq!(cfg.server.addr.to_string(), "127.0.0.1:8099");
    let cfg = Config::parse("[server]\naddr = \"[::1]:8099\"\n", "jobq.toml").unwrap();
    assert_eq!(cfg.server.addr.to_string(), "[::1]:8099");
    let (line, key, message) = refused("[server]\naddr = \"localhost\"\n");
    assert_eq!((line, key.as_str()), (2, "server.addr"));
    assert!(message.contains("HOST:PORT"), "{message}");
}

#[test]
fn webhook_urls_with_a_port_user_or_ipv6_host_are_accepted() {
    for url in [
        "http://127.0.0.1:8080/x",
        "https://user:secret@example.com/hook",
        "http://user:secret@example.com:9000/hook",
        "http://[::1]:8080/x",
        "http://[::1]/x",
        "http://example.com/x",
    ] {
        assert_eq!(super::handler::check_url(url), Ok(()), "{url}");
    }
    for url in ["http://[::1]:70000/x", "http://a:b@example.com:99999/x"] {
        assert!(super::handler::check_url(url).is_err(), "{url}");
    }
}

#[test]
fn a_prune_schedule_set_twice_or_for_another_type_is_refused() {
    let schedule = |job_type: &str| {
        format!("[schedules.\"jobq.prune\"]\ncron = \"0 5 * * *\"\njob_type = \"{job_type}\"\n")
    };
    let echo = "[handlers.echo]\ncommand = [\"cat\"]\n";
    for (text, words) in [
        (
            format!("[prune]\nenabled = false\n{}", schedule("jobq.prune")),
            "enabled = false turns the built-in prune schedule off",
        ),
        (
            format!("[prune]\ncron = \"0 1 * * *\"\n{}", schedule("jobq.prune")),
            "both set when the prune schedule fires",
        ),
        (
            format!("{echo}{}", schedule("echo")),
            "runs job type \"jobq.prune\"; name this schedule otherwise",
        ),
    ] {
        let (line, key, message) = refused(&text);
        assert_eq!(line, text.lines().count(), "{text}: the job_type line");
        assert!(key.ends_with("job_type"), "{key}");
        assert!(message.contains(words), "{text}: {message}");
    }
    // The schedule alone replaces the built-in one, as README says.
    let cfg = Config::parse(&schedule("jobq.prune"), "jobq.toml").unwrap();
    let prune: Vec<_> = cfg
        .catalog()
        .schedules()
        .filter(|s| s.name() == "jobq.prune")
        .map(|s| s.cron().to_string())
        .collect();
    assert_eq!(prune, ["0 5 * * *"]);
}
