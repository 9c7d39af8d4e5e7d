//! The power-cut tests' books: what the drivers saw acknowledged (read from
//! their logs), and the check of a post-cut image against it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// An acknowledged fact about a job: the lease token, when it was acknowledged.
type Acked = (i64, u128);

/// Every acknowledgement so far, and counts for the figures.
#[derive(Default)]
pub struct Ledger {
    /// id -> when its enqueue was acknowledged.
    enqueued: HashMap<String, u128>,
    /// id -> its acknowledged completion.
    completed: HashMap<String, Acked>,
    /// id -> its last acknowledged failed attempt.
    failed: HashMap<String, Acked>,
    /// id -> its acknowledged claim with the highest token.
    claimed: HashMap<String, Acked>,
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
    /// When the earliest lost acknowledgement was made (ns), if any was lost.
    pub earliest_lost: Option<u128>,
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

/// Is the acknowledged `what` of job `id` missing from the image?
fn lost(rows: &Rows, what: char, id: &str, token: i64) -> bool {
    let row = rows.get(id);
    let (status, held) = row.map_or(("", -1), |r| (r.0.as_str(), r.1));
    match what {
        'E' => row.is_none(),
        'C' => held < token,
        'D' => status != "completed" || held != token,
        _ => status == "in_progress" && held == token,
    }
}

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
        let at: u128 = f[1].parse().expect("time");
        let (id, token) = (f[2].to_string(), || f[3].parse::<i64>().expect("token"));
        let t = &mut self.totals;
        match f[0] {
            "E" => {
                t.enqueues += 1;
                self.enqueued.insert(id, at);
            }
            "C" => {
                t.claims += 1;
                t.reissued += u64::from(!self.claims.insert((id.clone(), token())));
                let max = self.claimed.entry(id).or_insert((0, at));
                *max = (*max).max((token(), at));
            }
            "D" | "F" => {
                let run = (
                    token(),
                    f[4].parse().expect("start"),
                    f[5].parse().expect("end"),
                );
                self.attempts.entry(id.clone()).or_default().push(run);
                let (count, book) = match f[0] {
                    "D" => (&mut t.completions, &mut self.completed),
                    _ => (&mut t.fails, &mut self.failed),
                };
                *count += 1;
                book.insert(id, (token(), at));
            }
            "X" if at >= cut_ns => {}
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

    /// Every acknowledgement: (kind, id, token, when).
    fn all(&self) -> Vec<(char, &String, i64, u128)> {
        let mut out: Vec<_> = self
            .enqueued
            .iter()
            .map(|(id, at)| ('E', id, 0, *at))
            .collect();
        for (kind, book) in [
            ('C', &self.claimed),
            ('D', &self.completed),
            ('F', &self.failed),
        ] {
            out.extend(book.iter().map(|(id, (tok, at))| (kind, id, *tok, *at)));
        }
        out
    }

    /// Compares an image's jobs (id -> status, lease token) with the books.
    pub fn check(&self, rows: &Rows, integrity: String) -> Found {
        let mut found = Found {
            integrity,
            jobs: rows.len() as u64,
            ..Found::default()
        };
        for (kind, id, token, at) in self.all() {
            if !lost(rows, kind, id, token) {
                continue;
            }
            *match kind {
                'E' => &mut found.lost_enqueues,
                'C' => &mut found.lost_claims,
                'D' => &mut found.lost_completions,
                _ => &mut found.lost_fails,
            } += 1;
            found.earliest_lost = Some(found.earliest_lost.map_or(at, |e| e.min(at)));
        }
        found
    }

    /// Forgets what the image lost (under `durability = "normal"` the next rounds
    /// go on from what survived).
    pub fn forget_lost(&mut self, rows: &Rows) {
        self.enqueued.retain(|id, _| !lost(rows, 'E', id, 0));
        self.completed.retain(|id, a| !lost(rows, 'D', id, a.0));
        self.failed.retain(|id, a| !lost(rows, 'F', id, a.0));
        self.claimed.retain(|id, _| rows.contains_key(id));
        for (id, a) in self.claimed.iter_mut() {
            a.0 = a.0.min(rows[id].1);
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
    let opened = jobq::Queue::open(&db).map_err(|e| format!("jobq cannot open the image: {e}"));
    if let Err(e) = opened.and_then(|q| q.recover_expired().map_err(|e| format!("recovery: {e}"))) {
        return (e, Rows::new());
    }
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
