//! The dashboard's schedules and workers pages over plain HTTP: what they
//! list, running a schedule now (and the guards on that POST), pools that
//! come and go.

use std::time::Duration;

use jobq::{Schedule, WorkerConfig, WorkerPool};

use crate::dashboard_http::{call, csrf, header, origin, post, sign_in};
use crate::http_util::{catalog, registry, start_opts, Api};
use crate::util::wait_for;

fn with_schedule() -> Api {
    let mut c = catalog();
    let s = Schedule::new("nightly", "30 2 * * *", "email.send").unwrap();
    c.declare_schedule(s).unwrap();
    start_opts(|o| o.catalog(c), |_| {})
}

fn page(api: &Api, cookie: &str, path: &str) -> String {
    let (status, _, body) = call(api, "GET", path, &[("Cookie", cookie)], "");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[test]
fn the_schedules_page_lists_them_and_runs_one_now() {
    let api = with_schedule();
    let cookie = sign_in(&api, &api.admin);
    let body = page(&api, &cookie, "/dashboard/schedules");
    assert!(body.contains("data-schedule=\"nightly\""), "{body}");
    assert!(body.contains("30 2 * * *"), "{body}");
    assert!(body.contains("email.send"), "{body}");
    assert!(api
        .queue
        .list(&Default::default(), 10, None)
        .unwrap()
        .jobs
        .is_empty());

    // Without the form token, or from another site: refused, nothing enqueued.
    let path = "/dashboard/schedules/nightly/run";
    assert_eq!(post(&api, path, &cookie, None, "csrf=nope"), 403);
    let form = format!("csrf={}", csrf(&api, &cookie));
    assert_eq!(post(&api, path, &cookie, Some("cross-site"), &form), 403);
    assert_eq!(
        api.queue.list(&Default::default(), 10, None).unwrap().total,
        0
    );

    let o = origin(&api);
    let (status, headers, _) = call(
        &api,
        "POST",
        path,
        &[
            ("Cookie", &cookie),
            ("Origin", &o),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    );
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "Location"), Some("/dashboard/schedules"));
    let jobs = api.queue.list(&Default::default(), 10, None).unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].schedule.as_deref(), Some("nightly"));
    let body = page(&api, &cookie, "/dashboard/schedules");
    assert!(
        body.contains(&format!("{} enqueued", jobs[0].id)),
        "flash: {body}"
    );
    assert!(
        body.contains(&format!("/dashboard/jobs/{}", jobs[0].id)),
        "last job: {body}"
    );

    let (status, _, _) = call(
        &api,
        "POST",
        "/dashboard/schedules/nope/run",
        &[
            ("Cookie", &cookie),
            ("Origin", &o),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    );
    assert_eq!(status, 404);
}

#[test]
fn the_workers_page_shows_live_pools() {
    let api = with_schedule();
    let cookie = sign_in(&api, &api.admin);
    assert!(page(&api, &cookie, "/dashboard/workers").contains("0 of 0 pools alive"));
    let cfg = WorkerConfig {
        workers: 2,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(api.queue.clone(), registry(), cfg).unwrap();
    let id = pool.worker_id().to_string();
    wait_for("the pool on the page", Duration::from_secs(10), || {
        page(&api, &cookie, "/dashboard/workers").contains(&format!("data-worker=\"{id}\""))
    });
    let body = page(&api, &cookie, "/dashboard/workers");
    assert!(body.contains("1 of 1 pools alive"), "{body}");
    assert!(body.contains("always.fail"), "{body}");
    pool.shutdown(Duration::from_secs(5));
    let body = page(&api, &cookie, "/dashboard/workers");
    assert!(!body.contains(&format!("data-worker=\"{id}\"")), "{body}");
}

#[test]
fn the_workers_page_shows_a_pool_s_reserved_jobs_apart_from_its_running_ones() {
    let api = start_opts(|o| o.catalog(jobq::Catalog::any_type()), |_| {});
    let cookie = sign_in(&api, &api.admin);
    let (pool, release, reserved) = crate::prefetch::reserved_behind_a_held_worker(&api.queue);
    let body = page(&api, &cookie, "/dashboard/workers");
    assert!(body.contains("<th>Running</th><th>Reserved</th>"), "{body}");
    let counts = format!("<td class=\"n\">1</td><td class=\"n\">{reserved}</td>");
    assert!(body.contains(&counts), "{body}");
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    pool.shutdown(Duration::from_secs(30));
}
