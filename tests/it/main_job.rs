//! The main job on real input: 2,000 jobs from a JSONL file, half gzipping real
//! files (examples/gzip_file.rs), half posting to a webhook that answers 503 to
//! each job's first request. `jobq work --workers 4` is SIGKILLed halfway, then
//! started again with `--drain`: every job completes exactly once.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use jobq::{Job, JobStatus, Queue};
use serde_json::json;

use crate::util::{all_of, example_bin, wait_exit, wait_for, Sandbox};

const FILES: usize = 1000;
const HOOKS: usize = 1000;

/// Per job id: requests seen and successes answered.
#[derive(Default)]
struct HookState {
    jobs: HashMap<String, (u32, u32)>,
    paused: bool,
}

/// The webhook server: 503 to a job's first request, 200 afterwards. While paused
/// it holds requests and then answers them 503 (their worker was killed).
struct Hook {
    state: Mutex<HookState>,
    resumed: Condvar,
}

impl Hook {
    fn answer(&self, job: &str) -> u16 {
        let mut st = self.state.lock().unwrap();
        if st.paused {
            while st.paused {
                st = self.resumed.wait(st).unwrap();
            }
            return 503;
        }
        let entry = st.jobs.entry(job.to_string()).or_default();
        entry.0 += 1;
        if entry.0 == 1 {
            return 503;
        }
        entry.1 += 1;
        200
    }

    fn pause(&self, paused: bool) {
        self.state.lock().unwrap().paused = paused;
        self.resumed.notify_all();
    }

    /// Jobs that got their first answer (the 503).
    fn first_answers(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .jobs
            .values()
            .filter(|e| e.0 >= 1)
            .count()
    }

    fn successes(&self) -> u32 {
        self.state.lock().unwrap().jobs.values().map(|e| e.1).sum()
    }
}

fn start_hook() -> (String, Arc<Hook>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let url = format!("http://{}/hook", server.server_addr().to_ip().expect("ip"));
    let hook = Arc::new(Hook {
        state: Mutex::new(HookState::default()),
        resumed: Condvar::new(),
    });
    for _ in 0..8 {
        let (server, hook) = (server.clone(), hook.clone());
        thread::spawn(move || {
            while let Ok(mut req) = server.recv() {
                let (id, _body) = crate::util::read_hook_request(&mut req);
                let code = hook.answer(&id);
                let resp =
                    tiny_http::Response::from_string(r#"{"ok":true}"#).with_status_code(code);
                req.respond(resp).ok();
            }
        });
    }
    (url, hook)
}

/// Writes FILES text files of 1-40 KB and the JSONL of all jobs, interleaved.
fn write_input(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let data = dir.join("files");
    std::fs::create_dir(&data).unwrap();
    let mut files = Vec::new();
    let mut jsonl = std::fs::File::create(dir.join("jobs.jsonl")).unwrap();
    for i in 0..FILES.max(HOOKS) {
        if i < FILES {
            let path = data.join(format!("doc-{i:04}.txt"));
            let line = format!("line of document {i}: naïve café, 数据, 🎉\n");
            std::fs::write(&path, line.repeat(20 + (i * 37) % 800)).unwrap();
            let job =
                json!({"job_type": "gzip_file", "payload": {"path": path}, "owner": "user-1"});
            writeln!(jsonl, "{job}").unwrap();
            files.push(path);
        }
        if i < HOOKS {
            let job = json!({"job_type": "notify", "payload": {"order": i, "note": "ünïcödé ✓"},
                             "priority": (i % 3) as i32, "entity_type": "order", "entity_id": i.to_string()});
            writeln!(jsonl, "{job}").unwrap();
        }
    }
    (dir.join("jobs.jsonl"), files)
}

/// Webhook jobs whose error history records a 503.
fn recorded_503s(queue: &Queue) -> usize {
    let has_503 = |j: &Job| {
        j.error_context.as_ref().is_some_and(|c| {
            c["errors"].as_array().is_some_and(|errors| {
                errors
                    .iter()
                    .any(|e| e["message"].as_str().unwrap_or("").contains("503"))
            })
        })
    };
    all_of(queue, "notify")
        .iter()
        .filter(|j| has_503(j))
        .count()
}

fn completed(queue: &Queue, job_type: &str) -> u64 {
    let stats = queue.stats().unwrap();
    stats.by_type.get(job_type).map_or(0, |c| c.completed)
}

#[test]
fn two_thousand_jobs_survive_a_sigkill_and_complete_exactly_once() {
    let (url, hook) = start_hook();
    let s = Sandbox::new();
    s.config(&format!(
        r#"
[workers]
lease = "2s"
poll_interval = "100ms"
durability = "normal"
[handlers.gzip_file]
command = [{gzip:?}]
timeout = "30s"
backoff = ["100ms"]
max_attempts = 10
[handlers.notify]
url = "{url}"
timeout = "10s"
backoff = ["100ms"]
max_attempts = 10
"#,
        gzip = example_bin("gzip_file").display().to_string()
    ));
    let (jsonl, files) = write_input(s.path());
    let total = (FILES + HOOKS).to_string();
    assert_eq!(
        s.ok(&["enqueue", "--jsonl", jsonl.to_str().unwrap()]),
        total
    );
    let queue = Queue::open(s.db()).unwrap();

    let mut work = s.spawn(&["work", "--workers", "4"], "work");
    let half = ((FILES + HOOKS) / 2) as u64;
    wait_for("half the jobs to complete", Duration::from_secs(90), || {
        queue.stats().unwrap().by_status.completed >= half
    });
    // Hold new webhook requests, and let every answer already given (200 or the
    // first 503) be recorded, so that the kill cannot fall between an answer and
    // its record: each job then succeeds once and its history shows its 503.
    hook.pause(true);
    wait_for(
        "answered webhooks to be recorded",
        Duration::from_secs(30),
        || {
            completed(&queue, "notify") == u64::from(hook.successes())
                && recorded_503s(&queue) == hook.first_answers()
        },
    );
    work.kill().unwrap();
    wait_exit(&mut work, Duration::from_secs(10));
    hook.pause(false);
    let before = queue.stats().unwrap();
    assert!(
        before.by_status.completed < (FILES + HOOKS) as u64,
        "killed halfway"
    );

    wait_for(
        "every job to complete after restarts with --drain",
        Duration::from_secs(90),
        || {
            s.ok(&["work", "--drain", "--workers", "4"]);
            completed(&queue, "gzip_file") + completed(&queue, "notify") == (FILES + HOOKS) as u64
        },
    );

    check_files(&queue, &files);
    check_hooks(&queue, &hook);
    let recovered = ["gzip_file", "notify"]
        .iter()
        .flat_map(|t| all_of(&queue, t))
        .filter(|j| {
            let text = j
                .error_context
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            text.contains("lease expired")
        });
    assert!(
        recovered.count() > 0,
        "the kill hit running jobs, which were recovered"
    );
}

fn check_files(queue: &Queue, files: &[PathBuf]) {
    let jobs = all_of(queue, "gzip_file");
    assert_eq!(jobs.len(), FILES);
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{}", job.id);
        let path = PathBuf::from(job.payload["path"].as_str().unwrap());
        let original = std::fs::read(&path).unwrap();
        let result = job.result.as_ref().unwrap();
        assert_eq!(result["bytes_in"], json!(original.len()), "{}", job.id);
        let gz = std::fs::read(path.with_extension("txt.gz")).unwrap();
        assert_eq!(result["bytes_out"], json!(gz.len()));
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, original, "{}", path.display());
    }
    assert!(files.iter().all(|f| f.with_extension("txt.gz").exists()));
}

fn check_hooks(queue: &Queue, hook: &Hook) {
    let jobs = all_of(queue, "notify");
    assert_eq!(jobs.len(), HOOKS);
    let st = hook.state.lock().unwrap();
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{}", job.id);
        assert_eq!(job.result, Some(json!({"ok": true})));
        let (requests, successes) = st.jobs[&job.id.to_string()];
        assert_eq!(successes, 1, "job {} succeeded once at the server", job.id);
        assert!(requests >= 2);
        let errors = job.error_context.as_ref().unwrap()["errors"]
            .as_array()
            .unwrap();
        let saw_503 = errors
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("503"));
        assert!(saw_503, "job {} history shows its 503: {errors:?}", job.id);
    }
}
