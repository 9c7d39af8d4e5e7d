//! PostgreSQL only: many machines, simulated. Several `jobq work` processes,
//! each with its own connections, drain one database while workers are
//! SIGKILLed and while the server restarts. (Queue limits across processes:
//! `queues.rs`, on both backends.)

use std::collections::HashSet;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq::{JobStatus, NewJob, Queue};
use serde_json::json;

use crate::pg::{Cluster, TestDb};
use crate::util::{signal, wait_exit, wait_for, Sandbox};

/// Completed jobs of the tests' types (`jobq work` adds its daily prune job).
fn completed(q: &Queue) -> u64 {
    let by_type = q.stats().unwrap().by_type;
    ["rec", "lim"]
        .iter()
        .filter_map(|t| by_type.get(*t))
        .map(|c| c.completed)
        .sum()
}

/// Records each run of a job as "id attempt": a webhook target in the test
/// process (a process spawned per job would make the 20,000-job drain cost a
/// fork and exec each, minutes on a shared 2-core machine).
struct Recorder {
    url: String,
    runs: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let url = format!("http://{}/run", server.server_addr().to_ip().expect("ip"));
        let runs = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..8 {
            let (server, runs) = (server.clone(), runs.clone());
            std::thread::spawn(move || {
                while let Ok(mut req) = server.recv() {
                    let attempt = header(&req, "Jobq-Attempt");
                    let (id, _) = crate::util::read_hook_request(&mut req);
                    runs.lock().unwrap().push(format!("{id} {attempt}"));
                    // No keep-alive: a connection this server closes while
                    // idle must never meet a reused POST (a transport error).
                    let close = tiny_http::Header::from_bytes("Connection", "close").unwrap();
                    let answer = tiny_http::Response::from_string("{}").with_header(close);
                    req.respond(answer).ok();
                }
            });
        }
        Recorder { url, runs }
    }

    /// jobq.toml: `workers` pool threads, a 2 s lease, and `rec` posting here.
    /// Expired leases are recovered every second and an attempt that ended
    /// "lease expired" is retried at once: the tests wait on the work, not on
    /// the defaults' idle minutes (a 30 s recovery interval, a 1 min backoff).
    fn config(&self, workers: u32) -> String {
        format!(
            "[workers]\ncount = {workers}\nlease = \"2s\"\npoll_interval = \"200ms\"\n\
             recovery_interval = \"1s\"\ndurability = \"normal\"\n\n\
             [handlers.rec]\nurl = \"{}\"\nbackoff = [\"0s\"]\n",
            self.url
        )
    }

    /// Runs recorded so far (cheap: progress checks poll it every 20 ms,
    /// where a stats query over the whole table would load the server).
    fn count(&self) -> usize {
        self.runs.lock().unwrap().len()
    }

    fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }
}

fn header(req: &tiny_http::Request, name: &'static str) -> String {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.to_string())
        .unwrap_or_default()
}

fn enqueue(q: &Queue, n: usize, job_type: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let jobs: Vec<_> = chunk
            .iter()
            .map(|i| NewJob::new(job_type, json!(i)))
            .collect();
        q.enqueue_many(jobs).unwrap();
    }
}

/// 4 processes drain 20,000 jobs while 10 SIGKILLs hit random workers: none is
/// lost, every one completes, and a job runs again only after its lease
/// expired (each earlier attempt ends "lease expired"), never under two live
/// leases; no attempt ran twice.
#[test]
fn four_processes_drain_twenty_thousand_jobs_through_ten_sigkills() {
    let Some(db) = TestDb::new("sigkill") else {
        return;
    };
    const JOBS: usize = 20_000;
    let s = Sandbox::with_url(&db.url);
    let recorder = Recorder::start();
    s.config(&recorder.config(8));
    let q = Queue::open(&db.url).unwrap();
    enqueue(&q, JOBS, "rec");
    let mut workers: Vec<Child> = (0..4)
        .map(|i| s.spawn(&["work"], &format!("w{i}")))
        .collect();
    let mut seed = 0x9E37_79B9_u32;
    for kill in 1..=10u64 {
        let target = kill * JOBS as u64 / 12;
        wait_for(
            "progress before the next kill",
            Duration::from_secs(300),
            || recorder.count() as u64 >= target,
        );
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let victim = seed as usize % workers.len();
        workers[victim].kill().unwrap();
        workers[victim].wait().unwrap();
        workers[victim] = s.spawn(&["work"], &format!("w{victim}-{kill}"));
    }
    wait_for("every job completed", Duration::from_secs(600), || {
        recorder.count() >= JOBS && completed(&q) == JOBS as u64
    });
    for w in &workers {
        signal(w, libc::SIGTERM);
    }
    for w in &mut workers {
        assert_eq!(wait_exit(w, Duration::from_secs(60)), 0);
    }
    let jobs = crate::util::all_of(&q, "rec");
    assert_eq!(jobs.len(), JOBS, "no job lost");
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Completed, "{}", j.id);
        let earlier = j.attempts - 1;
        if earlier > 0 {
            let errors = j.error_context.as_ref().unwrap()["errors"]
                .as_array()
                .unwrap()
                .clone();
            assert_eq!(errors.len() as u32, earlier, "{}", j.id);
            assert!(
                errors.iter().all(|e| e["message"] == "lease expired"),
                "{}: {errors:?}",
                j.id
            );
        }
    }
    let log = recorder.runs();
    let mut runs = HashSet::new();
    for line in &log {
        assert!(runs.insert(line.clone()), "attempt ran twice: {line}");
    }
    let ids: HashSet<&str> = log.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(ids.len(), JOBS, "every job ran");
}

/// The server stops mid-drain and comes back (`pg_ctl stop -m fast`, then
/// start; later `pg_ctl restart -m fast`): workers and `serve` say so in one
/// line each, carry on, and lose nothing; an enqueue during the outage is refused at once (HTTP 503 with
/// Retry-After; the CLI exits 1 naming the cause), never left hanging.
#[test]
fn a_database_restart_mid_drain_loses_nothing_and_refuses_enqueues_clearly() {
    let Some(cluster) = Cluster::private("restart") else {
        return;
    };
    let url = cluster.create_db("restart");
    let s = Sandbox::with_url(&url);
    let recorder = Recorder::start();
    s.config(&recorder.config(2));
    let q = Queue::open(&url).unwrap();
    enqueue(&q, 3000, "rec");
    let mut procs = vec![s.spawn(&["work"], "w0"), s.spawn(&["work"], "w1")];
    let port = crate::pg_many::free_port();
    procs.push(s.spawn(&["serve", "--addr", &format!("127.0.0.1:{port}")], "serve"));
    let token = s.ok(&["token", "create", "--user", "ops", "--admin"]);
    wait_for("serve to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // Both pools must be running before the outage: a process still
    // starting when the server stops (slow under a loaded machine) meets it
    // only as a slow open, never as a failed round, and has nothing to say.
    wait_for("both pools to start", Duration::from_secs(60), || {
        ["w0", "w1"]
            .iter()
            .all(|name| s.log(name).contains(" started: "))
    });
    wait_for("a third done", Duration::from_secs(120), || {
        recorder.count() >= 1000
    });
    cluster.stop();
    let answer = post_job(port, token.trim());
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after:"),
        "{answer}"
    );
    let cli = s.run(&["enqueue", "rec"]);
    assert_eq!(cli.code, 1, "{cli:?}");
    assert!(
        cli.stderr.contains("unavailable") || cli.stderr.contains("cannot open"),
        "{cli:?}"
    );
    wait_for(
        "both pools to meet the outage",
        Duration::from_secs(60),
        || {
            ["w0", "w1"]
                .iter()
                .all(|name| s.log(name).contains("retrying every"))
        },
    );
    cluster.start_again();
    wait_for("two thirds done", Duration::from_secs(300), || {
        recorder.count() >= 2000
    });
    cluster.restart();
    wait_for("every job completed", Duration::from_secs(300), || {
        recorder.count() >= 3000 && completed(&q) == 3000
    });
    for p in &procs {
        signal(p, libc::SIGTERM);
    }
    for p in &mut procs {
        assert_eq!(wait_exit(p, Duration::from_secs(60)), 0);
    }
    for name in ["w0", "w1"] {
        let log = s.log(name);
        assert!(log.contains("the database answers again"), "{name}: {log}");
    }
    let jobs = crate::util::all_of(&q, "rec");
    assert_eq!(jobs.len(), 3000, "no job lost");
    assert!(jobs.iter().all(|j| j.status == JobStatus::Completed));
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn post_job(port: u16, token: &str) -> String {
    let body = r#"{"job_type": "rec"}"#;
    let req = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    crate::http_util::raw(addr, req.as_bytes(), Duration::from_secs(30))
}
