//! The power-cut tests' books: what the drivers saw acknowledged (read from
//! their logs), and the check of a post-cut image against it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Every acknowledgement so far, and counts for the figures.
#[derive(Default)]
pub struct Ledger {
    enqueued: HashSet<String>,
    /// id -> the token of its acknowledged completion.
    completed: HashMap<String, i64>,
    /// id -> the token of its last acknowledged failed attempt.
    failed: HashMap<String, i64>,
    /// id -> the highest acknowledged claim token.
    claimed: HashMap<String, i64>,
    claims: HashSet<(String, i64)>,
    /// id -> settled attempts (token, start ns, end ns).
    attempts: HashMap<String, Vec<(i64, u128, u128)>>,
    /// Counts for the figures.
    pub totals: Totals,
    /// The first few distinct errors jobq reported (operation and message).
    pub error_samples: Vec<String>,
}

/// Counts for the figures.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub enqueues: u64,
    pub claims: u64,
    pub completions: u64,
    pub fails: u64,
    /// Errors jobq reported to the drivers.
    pub errors: u64,
    /// Acknowledged claims whose (job, lease token) had been acknowledged before.
    pub reissued: u64,
}

/// What a post-cut image holds against the ledger.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// `PRAGMA integrity_check`'s first line.
    pub integrity: String,
    pub lost_enqueues: u64,
    pub lost_claims: u64,
    pub lost_completions: u64,
    pub lost_fails: u64,
    /// Jobs in the file.
    pub jobs: u64,
}

impl Found {
    /// All acknowledged operations missing from the image.
    pub fn lost(&self) -> u64 {
        self.lost_enqueues + self.lost_claims + self.lost_completions + self.lost_fails
    }
}

type Rows = HashMap<String, (String, i64)>;

impl Ledger {
    /// Adds every `*.acks` log in `dir`; errors are counted until the power went
    /// at `cut_ns` (after it every request fails).
    pub fn read_logs(&mut self, dir: &Path, cut_ns: u128) {
        for entry in std::fs::read_dir(dir).expect("ack dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "acks") {
                let text = std::fs::read_to_string(&path).expect("read acks");
                text.lines().for_each(|l| self.line(l, cut_ns));
            }
        }
    }

    fn line(&mut self, line: &str, cut_ns: u128) {
        let f: Vec<&str> = line.split(' ').collect();
        let token = || f[2].parse::<i64>().expect("token");
        let t = &mut self.totals;
        match f[0] {
            "E" => {
                t.enqueues += 1;
                self.enqueued.insert(f[1].into());
            }
            "C" => {
                t.claims += 1;
                t.reissued += u64::from(!self.claims.insert((f[1].into(), token())));
                let max = self.claimed.entry(f[1].into()).or_default();
                *max = (*max).max(token());
            }
            "D" | "F" => {
                let run = (
                    token(),
                    f[3].parse().expect("start"),
                    f[4].parse().expect("end"),
                );
                self.attempts.entry(f[1].into()).or_default().push(run);
                let (count, book) = match f[0] {
                    "D" => (&mut t.completions, &mut self.completed),
                    _ => (&mut t.fails, &mut self.failed),
                };
                *count += 1;
                book.insert(f[1].into(), token());
            }
            "X" if f[1].parse::<u128>().expect("time") >= cut_ns => {}
            "X" => {
                t.errors += 1;
                let text = f[2..].join(" ");
                if self.error_samples.len() < 4 && !self.error_samples.contains(&text) {
                    self.error_samples.push(text);
                }
            }
            other => panic!("unknown ack line kind {other}: {line}"),
        }
    }

    /// Pairs of settled attempts of one job whose runs overlapped in time: two
    /// holders of live leases at once.
    pub fn overlapping_attempts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, runs) in &self.attempts {
            let mut runs = runs.clone();
            runs.sort_by_key(|r| (r.1, r.0));
            for w in runs.windows(2) {
                if w[1].1 < w[0].2 {
                    out.push(format!("job {id}: {:?} and {:?}", w[0], w[1]));
                }
            }
        }
        out
    }

    /// Compares the image at `db` with the books.
    pub fn check(&self, rows: &Rows, integrity: String) -> Found {
        let token = |id: &str| rows.get(id).map(|r| r.1);
        let status = |id: &str| rows.get(id).map(|r| r.0.as_str());
        let count = |n: usize| n as u64;
        Found {
            integrity,
            jobs: rows.len() as u64,
            lost_enqueues: count(
                self.enqueued
                    .iter()
                    .filter(|id| token(id).is_none())
                    .count(),
            ),
            lost_claims: count(
                self.claimed
                    .iter()
                    .filter(|(id, t)| token(id).is_none_or(|d| d < **t))
                    .count(),
            ),
            lost_completions: count(
                self.completed
                    .iter()
                    .filter(|(id, t)| status(id) != Some("completed") || token(id) != Some(**t))
                    .count(),
            ),
            lost_fails: count(
                self.failed
                    .iter()
                    .filter(|(id, t)| token(id) == Some(**t) && status(id) == Some("in_progress"))
                    .count(),
            ),
        }
    }

    /// Forgets what the image lost (under `durability = "normal"` the next rounds
    /// go on from what survived).
    pub fn forget_lost(&mut self, rows: &Rows) {
        let token = |id: &str| rows.get(id).map(|r| r.1);
        self.enqueued.retain(|id| rows.contains_key(id));
        self.completed.retain(|id, t| {
            rows.get(id)
                .is_some_and(|r| r.0 == "completed" && r.1 == *t)
        });
        self.failed
            .retain(|id, t| !(token(id) == Some(*t) && rows[id].0 == "in_progress"));
        self.claimed.retain(|id, _| rows.contains_key(id));
        for (id, t) in self.claimed.iter_mut() {
            *t = (*t).min(token(id).unwrap_or(0));
        }
    }
}

/// Opens a copy of the image in `scratch` as a user would: jobq opens it first
/// (SQLite's and jobq's recovery run); then its integrity check and its jobs
/// (id -> status, lease token).
pub fn inspect(image: &Path, scratch: &Path) -> (String, Rows) {
    std::fs::create_dir_all(scratch).expect("scratch dir");
    for entry in std::fs::read_dir(image).expect("image dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), scratch.join(entry.file_name())).expect("copy image");
    }
    let db = scratch.join("jobq.db");
    let q = jobq::Queue::open(&db).unwrap_or_else(|e| panic!("jobq cannot open the image: {e}"));
    q.recover_expired().expect("recovery on the image");
    drop(q);
    let conn = rusqlite::Connection::open(&db).expect("open the image with SQLite");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| format!("integrity_check failed: {e}"));
    let mut rows = Rows::new();
    if integrity == "ok" {
        let mut stmt = conn
            .prepare("SELECT id, status, lease_token FROM jobs")
            .unwrap();
        let it = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap();
        rows = it.collect::<rusqlite::Result<_>>().expect("read jobs");
    }
    (integrity, rows)
}
