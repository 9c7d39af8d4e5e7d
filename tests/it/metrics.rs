//! `/metrics` of a real `jobq serve`: the text parses with an OpenMetrics
//! parser (not ours), the counters match the jobs that ran, and no label has
//! more values than the queues, types, outcomes and routes that exist. On
//! both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openmetrics_parser::{MetricNumber, OpenMetricsValue};

use crate::backends::both;
use crate::util::{wait_for, Sandbox};

const CONFIG: &str = r#"
[server]
addr = "127.0.0.1:0"
metrics_token = "scrape-me"

[workers]
poll_interval = "100ms"

[handlers.ok]
command = ["cat"]

[handlers.bad]
command = ["sh", "-c", "echo 'invalid input' >&2; exit 1"]
"#;

/// The wall clock as Unix seconds, to the millisecond (as jobq stores it).
fn unix_now() -> f64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_millis() as f64 / 1000.0
}

/// Every sample as (metric name, labels) -> value (histograms: their count).
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn samples(text: &str) -> Samples {
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(text)
        .unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}\n{text}"));
    let mut out = Samples::new();
    for (name, family) in parsed.families {
        for s in family.iter_samples() {
            let set: BTreeMap<String, String> = s
                .get_labelset()
                .expect("a label set")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match &s.value {
                OpenMetricsValue::Counter(c) => number(&c.value),
                OpenMetricsValue::Gauge(g) => number(g),
                OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
                _ => 0.0,
            };
            out.insert((name.clone(), set), value);
        }
    }
    out
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

fn value(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    *s.get(&(name.to_string(), want.clone()))
        .unwrap_or_else(|| panic!("no sample {name} {want:?} in {s:?}"))
}

/// `jobq_jobs_finished` of queue `default` for a job type and an outcome.
fn finished_in_default(s: &Samples, job_type: &str, outcome: &str) -> f64 {
    value(
        s,
        "jobq_jobs_finished",
        &[
            ("queue", "default"),
            ("job_type", job_type),
            ("outcome", outcome),
        ],
    )
}

fn label_values(s: &Samples, label: &str) -> BTreeSet<String> {
    s.keys()
        .filter_map(|(_, l)| l.get(label).cloned())
        .collect()
}

fn addr_from_log(sb: &Sandbox) -> String {
    let log = sb.log("serve");
    let at = log.find("serving http://").expect("the address in the log") + 15;
    log[at..].split_whitespace().next().unwrap().to_string()
}

both! {
fn metrics_parse_and_count_what_ran(db) {
    let sb = Sandbox::on(&db);
    sb.config(CONFIG);
    let admin = sb.ok(&["token", "create", "--user", "ops", "--admin"]);
    let admin = admin
        .split_whitespace()
        .find(|w| w.starts_with("jobq_"))
        .unwrap()
        .to_string();
    let started = unix_now();
    let mut child = sb.spawn(&["serve"], "serve");
    wait_for("the server", Duration::from_secs(20), || {
        sb.log("serve").contains("serving http://")
    });
    let base = format!("http://{}", addr_from_log(&sb));
    for _ in 0..5 {
        sb.ok(&["enqueue", "ok", "--payload", "{}"]);
    }
    for _ in 0..3 {
        sb.ok(&["enqueue", "bad"]);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let scrape = |token: Option<&str>| {
        let mut req = agent.get(format!("{base}/metrics"));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut res = req.call().unwrap();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string());
        (
            res.status().as_u16(),
            ct,
            res.body_mut().read_to_string().unwrap(),
        )
    };
    // The database gauges are cached for up to 2 s: wait for them too.
    wait_for(
        "8 settled jobs in the metrics",
        Duration::from_secs(30),
        || {
            let (_, _, text) = scrape(Some("scrape-me"));
            let s = samples(&text);
            let failed: BTreeMap<String, String> = [("queue", "default"), ("status", "failed")]
                .map(|(k, v)| (k.into(), v.into()))
                .into();
            let settled: f64 = s
                .iter()
                .filter(|((n, _), _)| n == "jobq_jobs_finished")
                .map(|(_, v)| v)
                .sum();
            settled == 8.0 && s.get(&("jobq_jobs".to_string(), failed)) == Some(&3.0)
        },
    );
    assert_eq!(scrape(None).0, 401);
    assert_eq!(scrape(Some("wrong")).0, 401);
    let (status, ct, text) = scrape(Some(&admin));
    assert_eq!(status, 200);
    assert!(ct.unwrap().starts_with("application/openmetrics-text"));
    let s = samples(&text);
    let finished = |t, o| finished_in_default(&s, t, o);
    assert_eq!(finished("ok", "completed"), 5.0);
    assert_eq!(finished("bad", "failed"), 3.0);
    let ran = |t| {
        value(
            &s,
            "jobq_job_duration_seconds",
            &[("queue", "default"), ("job_type", t)],
        )
    };
    assert_eq!((ran("ok"), ran("bad")), (5.0, 3.0));
    assert_eq!(
        value(
            &s,
            "jobq_jobs",
            &[("queue", "default"), ("status", "failed")]
        ),
        3.0
    );
    assert_eq!(value(&s, "jobq_running", &[("queue", "default")]), 0.0);
    assert_eq!(value(&s, "jobq_lease_recoveries", &[]), 0.0);
    assert!(
        value(
            &s,
            "jobq_http_requests",
            &[("route", "/metrics"), ("status", "200")]
        ) >= 1.0
    );

    // No label takes more values than exist.
    assert_eq!(
        label_values(&s, "queue"),
        ["default"].map(String::from).into()
    );
    let types = label_values(&s, "job_type");
    assert!(
        types.is_subset(&["ok", "bad", "jobq.prune"].map(String::from).into()),
        "{types:?}"
    );
    let outcomes = label_values(&s, "outcome");
    assert!(
        outcomes.is_subset(&["completed", "failed"].map(String::from).into()),
        "{outcomes:?}"
    );
    let routes = label_values(&s, "route");
    assert_eq!(routes, ["/metrics"].map(String::from).into());
    assert!(!text.contains("invalid input"), "no error text in labels");

    sb.ok(&["queue", "pause", "default"]);
    wait_for("the paused gauge", Duration::from_secs(10), || {
        let s = samples(&scrape(Some("scrape-me")).2);
        let paused: BTreeMap<String, String> =
            [("queue".to_string(), "default".to_string())].into();
        s.get(&("jobq_queue_paused".to_string(), paused)) == Some(&1.0)
    });

    // The daily prune is a schedule the pool has seen but that has enqueued
    // no job: `jobq schedule list` shows no last fire, and the gauge holds the
    // latest fire time handled, here the start point the pool recorded.
    let list = sb.json(&["schedule", "list"]);
    let prune = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "jobq.prune")
        .unwrap_or_else(|| panic!("the built-in prune schedule: {list}"));
    assert!(prune["last_fire"].is_null(), "{prune}");
    assert!(prune["last_job_id"].is_null(), "{prune}");
    let labels: BTreeMap<String, String> =
        [("schedule".to_string(), "jobq.prune".to_string())].into();
    let key = (
        "jobq_schedule_last_fire_timestamp_seconds".to_string(),
        labels,
    );
    wait_for("the schedule gauge", Duration::from_secs(10), || {
        let at = samples(&scrape(Some("scrape-me")).2).get(&key).copied();
        at.is_some_and(|at| (started..=unix_now()).contains(&at))
    });
    crate::util::signal(&child, libc::SIGTERM);
    crate::util::wait_exit(&mut child, Duration::from_secs(30));
}
}

both! {
fn jobs_run_by_the_cron_endpoint_are_counted_as_a_pools_are(db) {
    let q = db.open(|o| o);
    for i in 0..4 {
        q.enqueue(jobq::NewJob::new("ok", serde_json::json!(i))).unwrap();
    }
    q.enqueue(jobq::NewJob::new("bad", serde_json::json!({})).max_attempts(1))
        .unwrap();
    q.enqueue(jobq::NewJob::new("nap", serde_json::json!({}))).unwrap();
    let mut reg = jobq::Registry::new();
    reg.register("ok", |_: &jobq::JobContext, v: serde_json::Value| Ok(v));
    reg.register("bad", |_: &jobq::JobContext, _: serde_json::Value| {
        Err(jobq::JobError::Permanent("no".into()))
    });
    reg.register("nap", |_: &jobq::JobContext, _: serde_json::Value| {
        Err(jobq::JobError::Snooze(Duration::from_secs(3600)))
    });
    let sum = jobq::run_due(&q, &reg, 100, &jobq::WorkerConfig::default()).unwrap();
    assert_eq!(sum.processed, 6, "{sum:?}");
    let s = samples(&q.metrics().encode());
    let finished = |t, o| finished_in_default(&s, t, o);
    assert_eq!(finished("ok", "completed"), 4.0);
    assert_eq!(finished("bad", "failed"), 1.0);
    assert_eq!(finished("nap", "snoozed"), 1.0);
    let ran = value(&s, "jobq_job_duration_seconds", &[("queue", "default"), ("job_type", "ok")]);
    assert_eq!(ran, 4.0);
    assert_eq!(value(&s, "jobq_running", &[("queue", "default")]), 0.0);
}
}
