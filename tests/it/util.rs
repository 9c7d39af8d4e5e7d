//! Shared helpers for black-box tests of the `jobq` binary: a sandbox directory
//! with its own database and config, running commands, waiting on conditions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `jobq` binary under test.
pub fn jobq_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jobq"))
}

/// An example program built beside the binary (cargo test builds the examples).
pub fn example_bin(name: &str) -> PathBuf {
    let dir = jobq_bin().parent().expect("bin dir").join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "example {name} not built at {}",
        path.display()
    );
    path
}

/// Polls `cond` every 20 ms until it holds; panics naming `label` after `timeout`.
pub fn wait_for(label: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {label}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

/// A temporary directory with a database `jobq.db` (or a PostgreSQL database)
/// and, once written, `jobq.toml`.
pub struct Sandbox {
    dir: tempfile::TempDir,
    url: Option<String>,
}

impl Sandbox {
    /// A fresh, empty sandbox.
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            url: None,
        }
    }

    /// A fresh sandbox whose commands use `db` (SQLite: the sandbox's own file).
    pub fn on(db: &crate::backends::Db) -> Sandbox {
        let mut s = Sandbox::new();
        if db.is_postgres() {
            s.url = Some(db.location());
        }
        s
    }

    /// A fresh sandbox whose commands use the PostgreSQL database at `url`.
    pub fn with_url(url: &str) -> Sandbox {
        let mut s = Sandbox::new();
        s.url = Some(url.to_string());
        s
    }

    /// What `JOBQ_DB` is for the commands: the file's path or the URL.
    pub fn location(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => self.db().to_string_lossy().into_owned(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.path().join("jobq.db")
    }

    /// Writes `jobq.toml` (found by default: commands run in the sandbox).
    pub fn config(&self, text: &str) -> &Sandbox {
        std::fs::write(self.path().join("jobq.toml"), text).expect("write config");
        self
    }

    /// `jobq ARGS` in the sandbox, with its database; JOBQ_* and RUST_LOG unset.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(jobq_bin());
        cmd.current_dir(self.path())
            .args(args)
            .env_remove("JOBQ_CONFIG")
            .env_remove("RUST_LOG")
            .env("JOBQ_DB", self.location())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `jobq ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run jobq"))
    }

    /// Runs `jobq ARGS`, asserting success; returns stdout trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "jobq {args:?} failed: {}", run.stderr);
        run.stdout.trim().to_string()
    }

    /// Runs `jobq ARGS --json`, asserting success; returns the JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all);
        assert_eq!(run.code, 0, "jobq {all:?} failed: {}", run.stderr);
        run.json()
    }

    /// Starts `jobq ARGS` in the background; its stderr goes to `name.log` in the sandbox.
    pub fn spawn(&self, args: &[&str], name: &str) -> Child {
        let log = std::fs::File::create(self.path().join(format!("{name}.log"))).expect("log");
        let mut cmd = self.cmd(args);
        cmd.stdout(Stdio::null()).stderr(log);
        cmd.spawn().expect("spawn jobq")
    }

    /// The stderr log of a process started with [`Sandbox::spawn`].
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// Sends `signal` (e.g. `libc::SIGTERM`) to a child process.
pub fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid; it touches no memory.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Waits for a child to exit; returns its exit code (-1 when killed by a signal).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> i32 {
    let mut code = None;
    wait_for("the jobq process to exit", timeout, || {
        code = child
            .try_wait()
            .expect("try_wait")
            .map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    code.unwrap_or(-1)
}

/// Every job of `job_type`, through the list API's pages.
pub fn all_of(queue: &jobq::Queue, job_type: &str) -> Vec<jobq::Job> {
    let filter = jobq::JobFilter {
        job_type: Some(job_type.into()),
        ..jobq::JobFilter::default()
    };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = queue.list(&filter, 500, cursor.as_deref()).unwrap();
        out.extend(page.jobs);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// A test config: fast polling, `durability = "normal"`, an `echo` handler
/// (`cat`) and a `fails` handler whose error is permanent ("record not found").
pub const TEST_CONFIG: &str = r#"
[workers]
poll_interval = "100ms"
durability = "normal"

[handlers.echo]
command = ["cat"]

[handlers.fails]
command = ["sh", "-c", "echo 'record not found' >&2; exit 1"]
"#;

/// A webhook request as a test server sees it: the `Jobq-Job-Id` header (empty
/// when absent) and the body.
pub fn read_hook_request(req: &mut tiny_http::Request) -> (String, String) {
    let mut body = String::new();
    req.as_reader().read_to_string(&mut body).ok();
    let id = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Jobq-Job-Id"))
        .map(|h| h.value.to_string())
        .unwrap_or_default();
    (id, body)
}

/// A catalogue accepting any type, where `job_type` retries at once (backoff 0).
pub fn retry_at_once(job_type: &str) -> jobq::Catalog {
    let mut c = jobq::Catalog::any_type();
    let zero = jobq::Backoff::new(vec![Duration::ZERO]).unwrap();
    c.declare(jobq::JobType::new(job_type).backoff(zero))
        .unwrap();
    c
}
