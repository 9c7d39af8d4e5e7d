//! Recurring schedules with an injected clock: every fire time of a schedule is
//! one job however many processes fire it, downtime is handled by the misfire
//! policy, and time zones follow their daylight-saving rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jobq::{Catalog, ManualClock, Misfire, Queue, Schedule, Timestamp};
use serde_json::json;

use crate::backends::{both, Db};
use crate::util::Sandbox;

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// `n` handles on one database (as `n` processes would be), sharing `clock`,
/// whose catalogue declares `schedule`.
fn handles(db: &Db, clock: &ManualClock, schedule: &Schedule, n: usize) -> Vec<Queue> {
    let mut catalog = Catalog::any_type();
    catalog.declare_schedule(schedule.clone()).unwrap();
    (0..n)
        .map(|_| db.open(|o| o.clock(Arc::new(clock.clone())).catalog(catalog.clone())))
        .collect()
}

/// The fire times of the jobs `name` enqueued, sorted.
fn fired(q: &Queue, name: &str) -> Vec<Timestamp> {
    let mut out: Vec<Timestamp> = crate::util::all_of(q, "tick")
        .into_iter()
        .filter(|j| j.schedule.as_deref() == Some(name))
        .map(|j| j.fire_time.unwrap())
        .collect();
    out.sort();
    out
}

both! {
fn every_fire_time_over_a_day_is_one_job_with_three_processes(db) {
    let start = ts("2026-03-10T00:00:00Z");
    let clock = ManualClock::new(start.minus(Duration::from_secs(1)));
    let s = Schedule::new("minutely", "*/1 * * * *", "tick").unwrap();
    let qs = handles(&db, &clock, &s, 3);
    qs[0].fire_schedule("minutely").unwrap(); // first sight
    for minute in 0..1440u64 {
        clock.set(start.plus(Duration::from_secs(60 * minute + minute % 7)));
        std::thread::scope(|scope| {
            for q in &qs {
                // A handle that waits out the busy timeout behind the others
                // (a loaded machine) misses this tick, as a pool would, and
                // fires at its next; the others fire this one.
                scope.spawn(|| match q.fire_schedule("minutely") {
                    Ok(_) | Err(jobq::Error::Busy { .. }) => {}
                    Err(e) => panic!("fire_schedule: {e}"),
                });
            }
        });
    }
    let got = fired(&qs[0], "minutely");
    assert_eq!(got.len(), 1440, "one job per fire time");
    let want: Vec<Timestamp> = (0..1440)
        .map(|m| start.plus(Duration::from_secs(60 * m)))
        .collect();
    assert_eq!(got, want);
}
}

both! {
fn after_two_hours_down_run_once_enqueues_one_job_and_skip_none(db) {
    for (gap, misfire, want) in [("gap1", Misfire::RunOnce, 1), ("gap2", Misfire::Skip, 0)] {
        let t0 = ts("2026-05-01T08:00:00Z");
        let clock = ManualClock::new(t0);
        let s = Schedule::new(gap, "*/1 * * * *", "tick")
            .unwrap()
            .misfire(misfire);
        let q = handles(&db, &clock, &s, 1).remove(0);
        q.fire_schedule(gap).unwrap();
        clock.set(t0.plus(Duration::from_secs(60)));
        q.fire_schedule(gap).unwrap();
        assert_eq!(fired(&q, gap).len(), 1);
        // Down for two hours; back 30 s after a fire time.
        clock.set(t0.plus(Duration::from_secs(60 + 7200 + 30)));
        q.fire_schedule(gap).unwrap();
        assert_eq!(fired(&q, gap).len(), 1 + want, "{misfire:?}");
        // And then on time again, under both policies.
        clock.set(t0.plus(Duration::from_secs(60 + 7200 + 60 + 1)));
        q.fire_schedule(gap).unwrap();
        assert_eq!(fired(&q, gap).len(), 2 + want, "{misfire:?}");
    }
}
}

/// Fires `s` every 10 minutes from `from` to `to` (UTC); returns the fire times.
fn run_through(s: &Schedule, from: &str, to: &str) -> Vec<Timestamp> {
    let db = Db::sqlite();
    let clock = ManualClock::new(ts(from));
    let q = handles(&db, &clock, s, 1).remove(0);
    let mut t = ts(from);
    while t < ts(to) {
        clock.set(t);
        q.fire_schedule(s.name()).unwrap();
        t = t.plus(Duration::from_secs(600));
    }
    fired(&q, s.name())
}

#[test]
fn a_berlin_night_job_runs_once_on_both_daylight_saving_days() {
    let s = Schedule::new("night", "30 2 * * *", "tick")
        .unwrap()
        .timezone("Europe/Berlin")
        .unwrap();
    // Spring forward: 2026-03-29, 02:00 CET -> 03:00 CEST (02:30 does not exist).
    let spring = run_through(&s, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z");
    let by_day = count_by_day(&spring, &s);
    assert_eq!(by_day.get("2026-03-29"), Some(&1), "{spring:?}");
    assert_eq!(by_day.get("2026-03-30"), Some(&1));
    // Fall back: 2026-10-25, 03:00 CEST -> 02:00 CET (02:30 happens twice).
    let fall = run_through(&s, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z");
    let by_day = count_by_day(&fall, &s);
    assert_eq!(by_day.get("2026-10-25"), Some(&1), "{fall:?}");
    assert_eq!(by_day.get("2026-10-26"), Some(&1));
}

fn count_by_day(times: &[Timestamp], s: &Schedule) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in times {
        *out.entry(s.local(*t)[..10].to_string()).or_default() += 1;
    }
    out
}

#[test]
fn a_new_york_weekday_job_fires_at_13_or_14_utc_as_the_season_says() {
    let s = Schedule::new("standup", "0 9 * * 1-5", "tick")
        .unwrap()
        .timezone("America/New_York")
        .unwrap();
    let summer = s.next_after(ts("2026-07-06T00:00:00Z")).unwrap(); // a Monday, EDT
    assert_eq!(summer, ts("2026-07-06T13:00:00Z"));
    let winter = s.next_after(ts("2026-01-05T00:00:00Z")).unwrap(); // a Monday, EST
    assert_eq!(winter, ts("2026-01-05T14:00:00Z"));
    let weekend = s.next_after(ts("2026-07-11T00:00:00Z")).unwrap(); // Saturday
    assert_eq!(weekend, ts("2026-07-13T13:00:00Z"), "next Monday");
    assert_eq!(s.local(summer), "2026-07-06T09:00:00-04:00");
}

both! {
fn schedules_from_the_config_list_run_now_and_fire_from_work(db) {
    let sb = Sandbox::on(&db);
    sb.config(
        r#"
[workers]
poll_interval = "100ms"
durability = "normal"

[handlers.tick]
command = ["cat"]

[schedules.every_second]
cron = "* * * * * *"
job_type = "tick"
payload = { source = "cron" }

[schedules.nightly]
cron = "0 3 * * *"
job_type = "tick"
timezone = "Asia/Tokyo"
"#,
    );
    let id = sb.ok(&["schedule", "run", "nightly"]);
    let job = sb.json(&["show", &id]);
    assert_eq!(job["schedule"], json!("nightly"));
    assert!(job["fire_time"].is_string());
    let mut work = sb.spawn(&["work"], "work");
    crate::util::wait_for(
        "a job fired by the every-second schedule",
        Duration::from_secs(30),
        || {
            let page = sb.json(&["list", "--type", "tick"]);
            page["jobs"].as_array().unwrap().iter().any(|j| {
                j["schedule"] == "every_second"
                    && j["status"] == "completed"
                    && j["result"]["source"] == "cron"
            })
        },
    );
    crate::util::signal(&work, libc::SIGTERM);
    assert_eq!(
        crate::util::wait_exit(&mut work, Duration::from_secs(30)),
        0
    );
    let list = sb.json(&["schedule", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["every_second", "jobq.prune", "nightly"]);
    let nightly = &list[2];
    assert_eq!(nightly["last_job_id"], json!(id));
    assert!(nightly["next_fire_local"]
        .as_str()
        .unwrap()
        .ends_with("T03:00:00+09:00"));
    let every = &list[0];
    assert!(every["last_job_status"].is_string(), "{every}");
    assert_eq!(sb.run(&["schedule", "run", "nope"]).code, 2);
}
}

#[test]
fn bad_schedules_are_refused_before_anything_starts() {
    let cases = [
        (
            "cron = \"61 * * * *\"\njob_type = \"tick\"",
            2,
            "schedules.s.cron",
        ),
        (
            "cron = \"0 0 0 1 1 * 2020\"\njob_type = \"tick\"",
            2,
            "7 fields",
        ),
        (
            "cron = \"0 0 30 2 *\"\njob_type = \"tick\"",
            2,
            "never fires",
        ),
        (
            "cron = \"* * * * *\"\njob_type = \"tick\"\ntimezone = \"Mars/Base\"",
            4,
            "schedules.s.timezone",
        ),
        (
            "cron = \"* * * * *\"\njob_type = \"undeclared\"",
            3,
            "schedules.s.job_type",
        ),
        (
            "cron = \"* * * * *\"\njob_type = \"tick\"\nmisfire = \"later\"",
            4,
            "schedules.s.misfire",
        ),
    ];
    for (body, line, key) in cases {
        let sb = Sandbox::new();
        sb.config(&format!(
            "[schedules.s]\n{body}\n\n[handlers.tick]\ncommand = [\"true\"]\n"
        ));
        let run = sb.run(&["work", "--drain"]);
        assert_eq!(run.code, 2, "{body}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("jobq.toml:{line}")),
            "{body}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(key), "{body}: {}", run.stderr);
        assert!(!sb.db().exists(), "nothing started");
    }
}

/// Schedule `name` of `q`, as listed.
fn listed(q: &Queue, name: &str) -> jobq::ScheduleInfo {
    let all = q.schedules().unwrap();
    all.into_iter().find(|i| i.name == name).unwrap()
}

both! {
fn the_last_fire_is_the_last_jobs_never_the_start_point_or_a_skip(db) {
    let clock = ManualClock::new(ts("2026-05-01T08:00:30Z"));
    let s = Schedule::new("hourly", "0 * * * *", "tick")
        .unwrap()
        .misfire(Misfire::Skip);
    let q = handles(&db, &clock, &s, 1).remove(0);
    q.fire_schedule("hourly").unwrap(); // first sight: a start point, no job
    let seen = listed(&q, "hourly");
    assert_eq!((seen.last_fire, seen.last_job_id), (None, None), "{seen:?}");
    clock.set(ts("2026-05-01T09:00:01Z"));
    q.fire_schedule("hourly").unwrap();
    let nine = listed(&q, "hourly");
    assert_eq!(nine.last_fire, Some(ts("2026-05-01T09:00:00Z")));
    assert!(nine.last_job_id.is_some());
    // 10:00 noticed five minutes late is skipped: the last fire stays 09:00's.
    clock.set(ts("2026-05-01T10:05:00Z"));
    q.fire_schedule("hourly").unwrap();
    let skipped = listed(&q, "hourly");
    assert_eq!((skipped.last_fire, skipped.last_job_id), (nine.last_fire, nine.last_job_id));
    // A run by hand fires at its own time.
    let run = q.run_schedule("hourly").unwrap();
    let by_hand = listed(&q, "hourly");
    assert_eq!(by_hand.last_fire, Some(ts("2026-05-01T10:05:00Z")));
    assert_eq!(by_hand.last_job_id, Some(run.job.id));
}
}

both! {
fn schedule_list_shows_no_last_fire_for_a_schedule_that_never_enqueued(db) {
    let sb = Sandbox::with_url(&db.location()); // the file the library writes
    sb.config(
        r#"
[handlers.tick]
command = ["cat"]

[schedules.hourly]
cron = "0 * * * *"
job_type = "tick"
"#,
    );
    let clock = ManualClock::new(ts("2001-02-03T04:05:06Z"));
    let s = Schedule::new("hourly", "0 * * * *", "tick").unwrap();
    let q = handles(&db, &clock, &s, 1).remove(0);
    q.fire_schedule("hourly").unwrap(); // the start point, stored, is 2001-02-03
    let table = sb.ok(&["schedule", "list"]);
    let row = table.lines().find(|l| l.starts_with("hourly ")).unwrap();
    assert!(!row.contains("2001-"), "the start point is not a fire: {table}");
    let last_two: Vec<&str> = row.split_whitespace().rev().take(2).collect();
    assert_eq!(last_two, ["-", "-"], "LAST and LAST JOB: {table}");
    let json = sb.json(&["schedule", "list"]);
    let hourly = json.as_array().unwrap().iter().find(|s| s["name"] == "hourly").unwrap();
    assert_eq!((&hourly["last_fire"], &hourly["last_job_id"]), (&json!(null), &json!(null)));
}
}
