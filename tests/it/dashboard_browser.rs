//! The dashboard in a real browser (headless Chromium through chromedriver):
//! sign in, the overview's counts, the jobs filter, a job's page, retry and
//! cancel (the status changes without a reload by hand), hostile text stays
//! text, a cross-site POST is refused, the queues page, a schedule run now, a
//! worker pool appearing live, sign out. A screenshot of each page
//! goes to `target/dashboard-screenshots/` (not committed).

use std::path::PathBuf;
use std::time::Duration;

use jobq::{ErrorClass, Failure, JobStatus, NewJob, Registry, Schedule, WorkerConfig, WorkerPool};
use serde_json::json;

use crate::http_util::{catalog, start_opts, Api};
use crate::util::wait_for;
use crate::webdriver::{browser_or_skip, Browser};

const LEASE: Duration = Duration::from_secs(300);
const SCRIPT_PAYLOAD: &str = "<script>window.pwned=1</script>";
const ATTR_PAYLOAD: &str = "\"><img src=x onerror=\"window.pwned=2\">";
/// The live refresh runs every 5 s; a few rounds are allowed.
const LIVE: Duration = Duration::from_secs(30);

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The jobs a page shows: completed, failed (hostile error text), running
/// with progress, scheduled (hostile payload).
struct Seeded {
    failed: String,
    scheduled: String,
    running: jobq::Job,
}

fn seed(api: &Api) -> Seeded {
    let q = &api.queue;
    for i in 0..3 {
        q.enqueue(NewJob::new("email.send", json!({ "n": i })))
            .unwrap();
    }
    let bad = q
        .enqueue(NewJob::new("always.fail", json!(ATTR_PAYLOAD)).entity("doc", ATTR_PAYLOAD))
        .unwrap()
        .id;
    let types = ["email.send".to_string(), "always.fail".to_string()];
    for job in q.claim("w", Some(&types), 10, LEASE).unwrap() {
        if job.id == bad {
            let f = Failure::new(
                &format!("{ATTR_PAYLOAD} {SCRIPT_PAYLOAD} invalid"),
                ErrorClass::Permanent,
            );
            q.fail(job.id, job.lease_token, &f).unwrap();
        } else {
            q.complete(job.id, job.lease_token, &json!({ "echo": SCRIPT_PAYLOAD }))
                .unwrap();
        }
    }
    q.enqueue(NewJob::new("email.send", json!("run me")))
        .unwrap();
    let running = q.claim("w", Some(&types), 1, LEASE).unwrap().remove(0);
    q.progress(
        running.id,
        running.lease_token,
        0.4,
        "40 of 100 <b>rows</b>",
    )
    .unwrap();
    let scheduled = q
        .enqueue(
            NewJob::new("email.send", json!({ "to": SCRIPT_PAYLOAD }))
                .delay(Duration::from_secs(3600)),
        )
        .unwrap()
        .id;
    Seeded {
        failed: bad.to_string(),
        scheduled: scheduled.to_string(),
        running,
    }
}

fn count_of(b: &Browser, status: &str) -> String {
    b.text_of(&format!("[data-status={status}]"))
}

fn no_injected_elements(b: &Browser) {
    let injected = b.eval(
        "return [document.querySelectorAll('img').length, \
                 document.querySelectorAll('script').length, window.pwned === undefined];",
    );
    assert_eq!(
        injected,
        json!([0, 1, true]),
        "hostile text became markup on {}",
        b.url()
    );
}

fn sign_in(b: &Browser, api: &Api, dir: &std::path::Path) {
    b.goto(&format!("{}/dashboard", api.base));
    assert!(
        b.url().ends_with("/dashboard/login"),
        "sent to sign in: {}",
        b.url()
    );
    b.screenshot(&dir.join("login.png"));
    b.el("#token").type_text("jobq_not_a_token");
    b.submit("#sign-in");
    assert!(b.el("[role=alert]").text().contains("not valid"));
    b.el("#token").type_text(&api.admin);
    b.submit("#sign-in");
    assert!(b.url().ends_with("/dashboard"), "signed in: {}", b.url());
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let Some(b) = browser_or_skip("the_dashboard_works_in_a_real_browser") else {
        return;
    };
    let mut c = catalog();
    let nightly = Schedule::new("nightly", "30 2 * * *", "email.send").unwrap();
    c.declare_schedule(nightly).unwrap();
    let api = start_opts(|o| o.catalog(c), |_| {});
    let jobs = seed(&api);
    let dir = shots();
    sign_in(&b, &api, &dir);

    // Overview: the counts the seed made.
    assert_eq!(count_of(&b, "completed"), "3");
    assert_eq!(count_of(&b, "failed"), "1");
    assert_eq!(count_of(&b, "in_progress"), "1");
    assert_eq!(count_of(&b, "pending"), "1");
    assert!(b.text_of("#running").contains("40 of 100 <b>rows</b>"));
    assert!(b.text_of("#failures").contains(ATTR_PAYLOAD));
    no_injected_elements(&b);
    b.screenshot(&dir.join("overview.png"));

    // Live: a job finishing elsewhere shows up without a reload.
    let r = &jobs.running;
    api.queue.complete(r.id, r.lease_token, &json!(1)).unwrap();
    let page = b.url();
    wait_for("the live overview", LIVE, || {
        count_of(&b, "completed") == "4"
    });
    assert_eq!(b.url(), page);

    // Jobs: filtered by job type through the form.
    b.goto(&format!("{}/dashboard/jobs", api.base));
    b.el("#filters input[name=job_type]")
        .type_text("always.fail");
    b.submit("#filters button");
    assert!(b.url().contains("job_type=always.fail"));
    assert_eq!(b.el("#matching").text(), "1 matching");
    let rows = b.eval(
        "return [...document.querySelectorAll('#jobs tbody tr[data-id]')].map(r => r.dataset.id);",
    );
    assert_eq!(rows, json!([jobs.failed]));
    b.screenshot(&dir.join("jobs.png"));

    // Job: open it from the list; hostile text shows as text.
    b.submit(&format!("a[href$='{}']", jobs.failed));
    assert!(b.url().ends_with(&jobs.failed));
    assert_eq!(b.text_of(".headline .status"), "failed");
    assert!(b.text_of("#errors").contains(SCRIPT_PAYLOAD));
    assert!(b.el("#payload").text().contains("onerror"));
    no_injected_elements(&b);
    b.screenshot(&dir.join("job.png"));

    // Retry the failed job: the page comes back with it pending.
    b.submit("#retry");
    assert_eq!(b.text_of(".headline .status"), "pending");
    assert!(b.el(".flash").text().contains("Retried"));
    assert_eq!(
        api.queue.get(jobs.failed.parse().unwrap()).unwrap().status,
        JobStatus::Pending
    );

    // Cancel the scheduled one.
    b.goto(&format!("{}/dashboard/jobs/{}", api.base, jobs.scheduled));
    no_injected_elements(&b);
    b.submit("#cancel");
    assert_eq!(b.text_of(".headline .status"), "cancelled");
    b.screenshot(&dir.join("job-cancelled.png"));

    cross_site_post_is_refused(&b, &api);
    queues_pause_resume_and_take_limits(&b, &api, &dir);
    schedule_run_now(&b, &api, &dir);
    workers_appear_live(&b, &api, &dir);

    // Sign out: the session is gone.
    b.goto(&format!("{}/dashboard", api.base));
    b.submit("header form button");
    assert!(b.url().ends_with("/dashboard/login"));
    b.goto(&format!("{}/dashboard/jobs", api.base));
    assert!(
        b.url().ends_with("/dashboard/login"),
        "still signed in: {}",
        b.url()
    );
}

/// A page of another origin (same host, another port: same-site, so the
/// SameSite=Strict cookie IS sent) posts a cancel with a valid form token.
/// Only the origin check stands in its way, and it refuses.
fn cross_site_post_is_refused(b: &Browser, api: &Api) {
    let victim = api
        .queue
        .enqueue(NewJob::new("email.send", json!(1)).delay(Duration::from_secs(3600)))
        .unwrap()
        .id;
    b.goto(&format!("{}/dashboard", api.base));
    let csrf = b.eval("return document.querySelector('input[name=csrf]').value;");
    let action = format!("{}/dashboard/jobs/{victim}/cancel", api.base);
    let page = format!(
        "<form method=post action='{action}'><input name=csrf value='{}'></form>\
         <script>document.forms[0].submit()</script>",
        csrf.as_str().unwrap()
    );
    let evil = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let evil_url = format!("http://{}/", evil.server_addr().to_ip().unwrap());
    let server = std::thread::spawn(move || {
        let req = evil.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        let header = tiny_http::Header::from_bytes("Content-Type", "text/html").unwrap();
        req.respond(tiny_http::Response::from_string(page).with_header(header))
            .unwrap();
    });
    b.goto(&evil_url);
    wait_for(
        "the cross-site post's answer",
        Duration::from_secs(20),
        || b.url().starts_with(&action),
    );
    server.join().unwrap();
    assert!(b.source().contains("403"), "refused: {}", b.source());
    assert_eq!(api.queue.get(victim).unwrap().status, JobStatus::Pending);
}

/// The queues page: pause, limits, resume, each seen by the queue itself.
fn queues_pause_resume_and_take_limits(b: &Browser, api: &Api, dir: &std::path::Path) {
    b.goto(&format!("{}/dashboard/queues", api.base));
    let row = "tr[data-queue=default]";
    assert_eq!(b.text_of(&format!("{row} td.paused")), "no");
    b.submit(&format!("{row} form:not(.limits) button"));
    assert_eq!(b.text_of(&format!("{row} td.paused")), "paused");
    assert!(api.queue.queue_info("default").unwrap().paused);
    b.el(&format!("{row} input[name=concurrency]"))
        .type_text("3");
    b.el(&format!("{row} input[name=rate_limit]"))
        .type_text("100/1m");
    b.submit(&format!("{row} form.limits button"));
    assert!(b.el(".flash").text().contains("limits saved"));
    let info = api.queue.queue_info("default").unwrap();
    assert_eq!(
        (info.concurrency, info.rate_limit.map(|r| r.to_string())),
        (Some(3), Some("100/1m".into()))
    );
    b.screenshot(&dir.join("queues.png"));
    b.submit(&format!("{row} form:not(.limits) button"));
    assert_eq!(b.text_of(&format!("{row} td.paused")), "no");
    assert!(!api.queue.queue_info("default").unwrap().paused);
}

/// The schedules page: run one now; its job is enqueued and linked.
fn schedule_run_now(b: &Browser, api: &Api, dir: &std::path::Path) {
    b.goto(&format!("{}/dashboard/schedules", api.base));
    let row = "tr[data-schedule=nightly]";
    assert!(b.text_of(row).contains("30 2 * * *"), "{}", b.text_of(row));
    b.submit(&format!("{row} button"));
    assert!(b.el(".flash").text().contains("enqueued"));
    let fired = crate::util::all_of(&api.queue, "email.send");
    let job = fired
        .iter()
        .find(|j| j.schedule.as_deref() == Some("nightly"))
        .expect("the schedule's job");
    assert!(b.text_of(row).contains(&job.id.to_string()[..8]));
    b.screenshot(&dir.join("schedules.png"));
}

/// The workers page refreshes live: a pool started meanwhile shows up.
fn workers_appear_live(b: &Browser, api: &Api, dir: &std::path::Path) {
    b.goto(&format!("{}/dashboard/workers", api.base));
    assert!(b.find("tr[data-worker]").is_none());
    let mut only_prune = Registry::new();
    only_prune.register(
        "jobq.prune",
        |_: &jobq::JobContext, _: serde_json::Value| Ok(serde_json::Value::Null),
    );
    let pool = WorkerPool::start(api.queue.clone(), only_prune, WorkerConfig::default()).unwrap();
    let row = format!("tr[data-worker='{}']", pool.worker_id());
    wait_for("the pool on the live page", LIVE, || b.find(&row).is_some());
    assert_eq!(b.text_of(&format!("{row} td.alive")), "yes");
    b.screenshot(&dir.join("workers.png"));
    pool.shutdown(Duration::from_secs(5));
}
