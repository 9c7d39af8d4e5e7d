//! The power-cut tests' books: what the drivers saw acknowledged (read from
//! their logs), the check of a post-cut image against it, and the figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::powercut_fs::DiskStats;

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
                // A write is one syscall, but the kernel stops a write to a
                // regular file at a page boundary when SIGKILL is pending: a
                // killed driver can leave its last line torn. A torn line was
                // never whole in the log, so it counts as not acknowledged.
                let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
                whole.lines().for_each(|l| self.line(l, cut_ns));
            }
        }
    }

    fn line(&mut self, line: &str, cut_ns: u128) {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(f.len() >= 3, "an ack line without its fields: {line:?}");
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
            .query_map([], |r| Ok((id_text(r.get(0)?), (r.get(1)?, r.get(2)?))))
            .unwrap();
        rows = it.collect::<rusqlite::Result<_>>().expect("read jobs");
    }
    (integrity, rows)
}

/// A stored job id (the UUID's 16 bytes) in its text form.
fn id_text(stored: Vec<u8>) -> String {
    uuid::Uuid::from_slice(&stored)
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| format!("unreadable {stored:?}"))
}

/// What a run measured.
#[derive(Default)]
pub struct Figures {
    pub cuts: u64,
    pub torn: u64,
    pub cut_points: BTreeMap<String, u64>,
    pub disk: DiskStats,
    /// Acknowledged operations lost, per cut.
    pub lost: Vec<u64>,
    /// Lost enqueues, claims, completions, failed attempts.
    pub lost_by_kind: [u64; 4],
    /// The longest time between a lost acknowledgement and its cut (ms).
    pub lost_age_ms: u128,
    pub corrupt: u64,
    pub jobs: u64,
}

impl Figures {
    pub fn add(&mut self, stats: &DiskStats, torn: bool, found: &Found) {
        self.cuts += 1;
        self.torn += u64::from(torn);
        let at = stats.cut_at.clone().unwrap_or_default();
        *self.cut_points.entry(at).or_default() += 1;
        self.disk.ops += stats.ops;
        self.disk.eio_writes += stats.eio_writes;
        self.disk.eio_fsyncs += stats.eio_fsyncs;
        self.disk.eio_reported_later += stats.eio_reported_later;
        self.disk.discarded += stats.discarded;
        self.disk.kept += stats.kept;
        self.lost.push(found.lost());
        let f = found;
        let kinds = [
            f.lost_enqueues,
            f.lost_claims,
            f.lost_completions,
            f.lost_fails,
        ];
        for (sum, n) in self.lost_by_kind.iter_mut().zip(kinds) {
            *sum += n;
        }
        if let Some(at) = found.earliest_lost {
            let age = stats.cut_ns.saturating_sub(at) / 1_000_000;
            self.lost_age_ms = self.lost_age_ms.max(age);
        }
        self.corrupt += u64::from(found.integrity != "ok");
        self.jobs = found.jobs;
    }
}

pub fn report(name: &str, f: &Figures, ledger: &Ledger, started: Instant) {
    let (t, d) = (ledger.totals, &f.disk);
    let mut per_cut = f.lost.clone();
    per_cut.sort_unstable();
    let median = per_cut.get(per_cut.len() / 2).copied().unwrap_or(0);
    let max = per_cut.last().copied().unwrap_or(0);
    let with_loss = per_cut.iter().filter(|n| **n > 0).count();
    let [le, lc, ld, lf] = f.lost_by_kind;
    eprintln!(
        "rel_powercut[{}]: {} cuts ({} torn) at {:?}; {} requests, {} unsynced changes \
         discarded, {} kept by torn cuts",
        name, f.cuts, f.torn, f.cut_points, d.ops, d.discarded, d.kept
    );
    eprintln!(
        "rel_powercut[{}]: injected I/O errors: {} writes, {} fsyncs (+{} later fsyncs of other \
         handles told of one); jobq errors reported: {} (e.g. {:?})",
        name, d.eio_writes, d.eio_fsyncs, d.eio_reported_later, t.errors, ledger.error_samples
    );
    eprintln!(
        "rel_powercut[{}]: acknowledged: {} enqueues, {} claims, {} completions, {} failed \
         attempts; lost: {le} enqueues, {lc} claims, {ld} completions, {lf} failed attempts \
         ({with_loss} cuts lost some; per cut median {median}, max {max}; the oldest lost \
         acknowledgement {} ms before its cut); lease tokens handed out twice: {}; corrupt: {}; \
         {} jobs in the file; {:.0?}",
        name,
        t.enqueues,
        t.claims,
        t.completions,
        t.fails,
        f.lost_age_ms,
        t.reissued,
        f.corrupt,
        f.jobs,
        started.elapsed()
    );
}

/// Copies a failed round's images (before and after the cut), the drivers' logs
/// and the disk's last requests to a directory that outlives the test.
pub fn keep_evidence(
    dir: &Path,
    before: &Path,
    after: &Path,
    trace: &str,
    name: &str,
    n: usize,
) -> PathBuf {
    let keep =
        std::env::temp_dir().join(format!("jobq-powercut-{name}-{}-{n}", std::process::id()));
    for (from, to) in [
        (before, "before"),
        (after, "after"),
        (&dir.join("acks"), "logs"),
    ] {
        std::fs::create_dir_all(keep.join(to)).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), keep.join(to).join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(keep.join("requests.txt"), trace).unwrap();
    keep
}

#[test]
fn a_torn_last_ack_line_is_not_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = "0190b7a5-1c2d-7e3f-8a4b-5c6d7e8f9a0b";
    let text = format!("E 10 {id}\nC 11 {id} 1\nE");
    std::fs::write(dir.path().join("0-0.acks"), text).expect("write acks");
    let mut ledger = Ledger::default();
    ledger.read_logs(dir.path(), 100);
    assert_eq!((ledger.totals.enqueues, ledger.totals.claims), (1, 1));
    assert_eq!(ledger.enqueued.get(id), Some(&10));
}
