//! Reliability: `jobq work` is SIGKILLed at random moments, 20 times, while it
//! drains 5,000 jobs whose exec handler appends its job id to a file. Afterwards
//! every job is completed once in the database, every id was executed at least
//! once (at-least-once), never more often than it was claimed, and no job is
//! left in_progress.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use jobq::{JobStatus, Queue};

use crate::util::{wait_exit, wait_for, Sandbox};

const JOBS: usize = 5000;
const KILLS: usize = 20;

/// A small xorshift generator: the seed is printed so a failure can be replayed
/// with `JOBQ_TEST_SEED`.
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed (0 becomes 1).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Seeded from `JOBQ_TEST_SEED`, else the clock; prints the seed.
    pub fn from_env(label: &str) -> Rng {
        let seed = std::env::var("JOBQ_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.map_or(1, |d| d.as_nanos() as u64) | 1
            });
        eprintln!("{label}: JOBQ_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn config() -> String {
    // The payload reaches the program on stdin only; the command line is fixed.
    r#"
[workers]
count = 4
lease = "1s"
poll_interval = "50ms"
durability = "normal"
[handlers.append]
command = ["sh", "-c", "read -r payload; echo \"$JOBQ_JOB_ID\" >> ran.txt"]
timeout = "30s"
max_attempts = 1000
backoff = ["10ms"]
"#
    .to_string()
}

fn enqueue_all(s: &Sandbox) {
    let path = s.path().join("jobs.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..JOBS {
        writeln!(file, r#"{{"job_type":"append","payload":{{"n":{i}}}}}"#).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    assert_eq!(
        s.ok(&["enqueue", "--jsonl", "jobs.jsonl"]),
        JOBS.to_string()
    );
}

fn completed(queue: &Queue) -> u64 {
    queue.stats().unwrap().by_status.completed
}

/// Starts `jobq work`, waits until `more` further jobs completed (0: kill it
/// during start-up), SIGKILLs it. Returns false once everything completed before
/// the kill.
fn run_and_kill(s: &Sandbox, queue: &Queue, more: u64, round: usize) -> bool {
    let target = (completed(queue) + more).min(JOBS as u64);
    let mut work = s.spawn(&["work"], &format!("work-{round}"));
    wait_for(
        "jobs to complete before a kill",
        Duration::from_secs(60),
        || completed(queue) >= target,
    );
    work.kill().unwrap();
    wait_exit(&mut work, Duration::from_secs(10));
    completed(queue) < JOBS as u64
}

#[test]
fn sigkill_twenty_times_during_a_drain_loses_nothing() {
    let s = Sandbox::new();
    s.config(&config());
    enqueue_all(&s);
    let queue = Queue::open(s.db()).unwrap();
    let mut rng = Rng::from_env("rel_crash");
    let mut kills = 0;
    let step = 2 * JOBS as u64 / (KILLS as u64 + 5);
    while kills < KILLS && run_and_kill(&s, &queue, rng.below(step), kills) {
        kills += 1;
    }
    wait_for(
        "every job to complete after the kills (work --drain)",
        Duration::from_secs(60),
        || {
            s.ok(&["work", "--drain"]);
            completed(&queue) == JOBS as u64
        },
    );

    let ran = std::fs::read_to_string(s.path().join("ran.txt")).unwrap();
    let mut runs: HashMap<&str, u32> = HashMap::new();
    for line in ran.lines() {
        *runs.entry(line).or_default() += 1;
    }
    // The test's jobs (`work` also schedules a daily `jobq.prune` job).
    let jobs = crate::util::all_of(&queue, "append");
    assert_eq!(jobs.len(), JOBS);
    let stats = queue.stats().unwrap();
    assert_eq!(stats.by_status.in_progress, 0, "no job left in_progress");
    assert_eq!(stats.by_status.completed, JOBS as u64);
    let mut recovered = 0;
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{}", job.id);
        assert!(job.completed_at.is_some() && job.locked_by.is_none());
        let n = runs.get(job.id.to_string().as_str()).copied().unwrap_or(0);
        assert!(n >= 1, "job {} completed but never ran", job.id);
        assert!(
            n <= job.attempts,
            "job {} ran {n} times in {} attempts",
            job.id,
            job.attempts
        );
        recovered += u32::from(job.attempts > 1);
    }
    assert_eq!(runs.len(), JOBS, "no unknown ids in the file");
    let reruns = ran.lines().count() - JOBS;
    eprintln!(
        "rel_crash: {JOBS} jobs, {kills} SIGKILLs, {recovered} jobs recovered and run again, \
         {reruns} re-executions seen in the file, 0 lost, 0 in_progress left"
    );
    assert!(kills >= KILLS / 2, "the kills hit a running drain: {kills}");
}
