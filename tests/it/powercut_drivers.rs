//! The power-cut tests' drivers: child processes that enqueue, claim, complete
//! and fail jobs on the FUSE mount until they are SIGKILLed, and record every
//! acknowledged operation in an append-only log OUTSIDE the mount, written only
//! after the jobq call returned success. One line per fact, `KIND time ...`, the
//! time in nanoseconds of the wall clock (comparable across processes):
//!
//! - `E time id`: an enqueue returned this id;
//! - `C time id token`: a claim returned the job with this lease token;
//! - `D time id token start end` / `F time id token start end`: `complete` (the
//!   job is completed) / `fail` returned success; the attempt ran from `start`
//!   (after the claim returned) to `end` (before `complete`/`fail` was called);
//! - `X time operation: error`: jobq reported an error (never an
//!   acknowledgement); the driver waits 5 ms before it goes on.
//!
//! Also the parent's side: starting, describing and killing a round's drivers.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobq::{Durability, ErrorClass, Failure, JobStatus, NewJob, Queue, QueueOptions};
use serde_json::json;

use crate::rel_crash::Rng;

/// A job's lease in the drivers: abandoned jobs come back after it.
pub const LEASE: Duration = Duration::from_secs(1);
/// The job type the drivers use.
pub const JOB_TYPE: &str = "pc";

/// What a driver was given: its ack log, the durability, a seed.
pub struct Driver {
    log: std::fs::File,
    durability: Durability,
    rng: Rng,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

impl Driver {
    fn from_env() -> Driver {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(var("JOBQ_PC_ACKS"))
            .expect("open the ack log");
        let durability = match var("JOBQ_PC_DURABILITY").as_str() {
            "full" => Durability::Full,
            _ => Durability::Normal,
        };
        let rng = Rng::seeded(var("JOBQ_PC_SEED").parse().expect("seed"));
        Driver {
            log,
            durability,
            rng,
        }
    }

    /// Appends one line in one write. A SIGKILL can still cut it at a page
    /// boundary; the ledger drops a last line without its newline.
    fn ack(&mut self, kind: &str, rest: String) {
        self.log
            .write_all(format!("{kind} {} {rest}\n", nanos()).as_bytes())
            .expect("write the ack log");
    }

    fn error(&mut self, op: &str, e: impl std::fmt::Display) {
        let text = e.to_string().replace('\n', " ");
        self.ack("X", format!("{op}: {text}"));
        std::thread::sleep(Duration::from_millis(5));
    }

    /// Opens the queue, retrying while the disk fails.
    fn open(&mut self, db: &Path) -> Queue {
        loop {
            // Failed attempts are due again at once (the schedule is stored with
            // each job, so every driver applies it).
            let opts = QueueOptions::new(db)
                .durability(self.durability)
                .catalog(crate::util::retry_at_once(JOB_TYPE));
            match Queue::open_with(opts) {
                Ok(q) => return q,
                Err(e) => self.error("open", e),
            }
        }
    }
}

/// Nanoseconds of the wall clock (comparable across processes).
fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

/// Child: enqueues one job or a batch of 2-5 at a time, every 0.5-2.5 ms, forever.
pub fn child_enqueuer(db: &Path) {
    let mut d = Driver::from_env();
    let q = d.open(db);
    for n in 0u64.. {
        let size = 1 + d.rng.below(5) as usize;
        let jobs: Vec<_> = (0..size)
            .map(|i| NewJob::new(JOB_TYPE, json!({"n": n, "i": i})))
            .collect();
        let done = if size == 1 {
            q.enqueue(jobs.into_iter().next().expect("one job"))
                .map(|j| vec![j.id])
        } else {
            q.enqueue_many(jobs)
        };
        match done {
            Ok(ids) => ids.iter().for_each(|id| d.ack("E", id.to_string())),
            Err(e) => d.error("enqueue", e),
        }
        // A producer's pace, so that the workers keep up.
        std::thread::sleep(Duration::from_micros(500 + d.rng.below(2000)));
    }
}

/// Child: claims 1-3 jobs at a time; completes most, fails some (retryably,
/// due again at once) and abandons a few (their leases expire); now and then
/// recovers expired leases.
pub fn child_worker(db: &Path) {
    let mut d = Driver::from_env();
    let q = d.open(db);
    let me = format!("pc-{}", std::process::id());
    loop {
        if d.rng.below(20) == 0 {
            if let Err(e) = q.recover_expired() {
                d.error("recover", e);
            }
        }
        let n = 1 + d.rng.below(3) as usize;
        let jobs = match q.claim(&me, None, n, LEASE) {
            Ok(jobs) => jobs,
            Err(e) => {
                d.error("claim", e);
                continue;
            }
        };
        let start = nanos();
        for job in &jobs {
            d.ack("C", format!("{} {}", job.id, job.lease_token));
        }
        for job in &jobs {
            settle(&mut d, &q, job, start);
        }
        if jobs.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn settle(d: &mut Driver, q: &Queue, job: &jobq::Job, start: u128) {
    let (id, token) = (job.id, job.lease_token);
    let choice = d.rng.below(10);
    let end = nanos();
    if choice == 0 {
        return; // abandoned: the lease expires and recovery takes it back
    }
    if choice <= 2 {
        let failure = Failure::new("flaky", ErrorClass::Retryable);
        match q.fail(id, token, &failure) {
            Ok(_) => d.ack("F", format!("{id} {token} {start} {end}")),
            Err(e) => d.error("fail", e),
        }
        return;
    }
    match q.complete(id, token, &json!({"by": std::process::id()})) {
        Ok(JobStatus::Completed) => d.ack("D", format!("{id} {token} {start} {end}")),
        Ok(other) => d.error("complete", format!("ended {other}")),
        Err(e) => d.error("complete", e),
    }
}

/// Child: runs `jobq enqueue` (a new process each time) forever; an id printed
/// with exit code 0 is an acknowledged enqueue.
pub fn child_cli(db: &Path) {
    let mut d = Driver::from_env();
    let config = PathBuf::from(var("JOBQ_PC_CONFIG"));
    for n in 0u64.. {
        let out = Command::new(crate::util::jobq_bin())
            .args([
                "enqueue",
                JOB_TYPE,
                "--payload",
                &format!("{{\"cli\": {n}}}"),
            ])
            .env("JOBQ_DB", db)
            .env("JOBQ_CONFIG", &config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run jobq enqueue");
        let stdout = String::from_utf8_lossy(&out.stdout);
        match (out.status.success(), stdout.trim().parse::<jobq::JobId>()) {
            (true, Ok(id)) => d.ack("E", id.to_string()),
            _ => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                d.error("jobq enqueue", stderr.lines().next().unwrap_or("no output"));
            }
        }
    }
}

/// The config `jobq enqueue` reads: the durability and the drivers' job type.
pub fn cli_config(durability: &str) -> String {
    format!(
        "[workers]\ndurability = \"{durability}\"\n\n[handlers.{JOB_TYPE}]\ncommand = [\"true\"]\n"
    )
}

/// The processes that have a file of `dir` open or mapped.
pub fn users_of(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut users = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let fds = std::fs::read_dir(entry.path().join("fd"))
            .into_iter()
            .flatten();
        let open = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p.starts_with(&prefix)));
        let maps = std::fs::read_to_string(entry.path().join("maps")).unwrap_or_default();
        if open || maps.contains(&prefix) {
            users.push(pid);
        }
    }
    users
}

/// The driver processes of a round, each the leader of its own process group
/// (`pc_cli` starts `jobq` processes in it); SIGKILLed on drop.
pub struct Drivers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Drivers {
    /// Starts the drivers on the mounted database `db`.
    pub fn start(dir: &Path, db: &Path, round: usize, seed: u64, durability: &str) -> Drivers {
        let roles = ["pc_enqueuer", "pc_worker", "pc_worker", "pc_cli"];
        let mut drivers = Drivers {
            children: Vec::new(),
            logs: Vec::new(),
        };
        for (i, role) in roles.iter().enumerate() {
            let log = dir.join(format!("acks/{round}-{i}.log"));
            let mut cmd = crate::child::child_command(role, db);
            cmd.env("JOBQ_PC_ACKS", dir.join(format!("acks/{round}-{i}.acks")))
                .env("JOBQ_PC_DURABILITY", durability)
                .env("JOBQ_PC_SEED", (seed + i as u64).to_string())
                .env("JOBQ_PC_CONFIG", dir.join("jobq.toml"))
                .stderr(std::fs::File::create(&log).unwrap())
                .process_group(0);
            drivers.children.push(cmd.spawn().expect("spawn a driver"));
            drivers.logs.push(log);
        }
        drivers
    }

    /// The log of the first driver that exited, if one did (they never stop).
    pub fn exited(&mut self) -> Option<String> {
        let i = (self.children.iter_mut()).position(|c| c.try_wait().ok().flatten().is_some())?;
        Some(std::fs::read_to_string(&self.logs[i]).unwrap_or_default())
    }

    /// What each driver process is doing, for a timeout's message.
    pub fn describe(&self) -> String {
        let state = |pid: u32, what: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/{what}")).unwrap_or_default()
        };
        let mut out = String::new();
        for (c, log) in self.children.iter().zip(&self.logs) {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail = &tail[tail.len().saturating_sub(400)..];
            let (wchan, stack) = (state(c.id(), "wchan"), state(c.id(), "stack"));
            out += &format!("\n{}: wchan {wchan}, stack {stack}, log: {tail}", c.id());
        }
        out
    }

    /// SIGKILLs every process group and reaps the drivers.
    pub fn kill(&mut self) {
        for child in &self.children {
            let pgid = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) on a process group this test created; touches no memory.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        for mut child in self.children.drain(..) {
            child.wait().expect("reap a driver");
        }
    }
}

impl Drop for Drivers {
    fn drop(&mut self) {
        self.kill();
    }
}
