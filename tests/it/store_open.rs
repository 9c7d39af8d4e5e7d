//! Opening files: new, empty, old schema, and files that are not jobq databases.

use std::fs;

use jobq::{Error, NewJob, Queue};
use serde_json::json;

/// A database as jobq's first schema version wrote it (a fixture of an old file).
const SCHEMA_V1: &str = "
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY NOT NULL,
        job_type TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
        priority INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL DEFAULT 'null',
        result TEXT,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
        next_retry INTEGER NOT NULL,
        error_message TEXT,
        error_context TEXT,
        entity_type TEXT,
        entity_id TEXT,
        owner TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        locked_by TEXT,
        lease_expires_at INTEGER,
        lease_token INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
        progress TEXT
    );
    CREATE INDEX jobs_claim ON jobs (priority DESC, next_retry, id) WHERE status = 'pending';
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'in_progress';
    CREATE INDEX jobs_created ON jobs (created_at, id);
    CREATE INDEX jobs_owner ON jobs (owner, created_at) WHERE owner IS NOT NULL;
    CREATE INDEX jobs_entity ON jobs (entity_type, entity_id) WHERE entity_type IS NOT NULL;
    PRAGMA application_id = 1246708305;
    PRAGMA user_version = 1;";

/// The schema version this build writes, as `schema.sql` states it.
fn current_version() -> i32 {
    let schema = include_str!("../../schema.sql");
    let at = schema.find("PRAGMA user_version = ").unwrap() + "PRAGMA user_version = ".len();
    let digits: String = schema[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn an_empty_file_is_initialized() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    fs::write(&path, b"").unwrap();
    let q = Queue::open(&path).unwrap();
    let job = q.enqueue(NewJob::new("a", json!(1))).unwrap();
    assert_eq!(q.get(job.id).unwrap().payload, json!(1));
    let header = fs::read(&path).unwrap();
    assert_eq!(&header[..16], b"SQLite format 3\0");
    assert_eq!(header[18], 2, "WAL mode is set in the file header");
    let page_size = u16::from_be_bytes([header[16], header[17]]);
    assert_eq!(page_size, 2048, "a new file gets jobq's page size");
}

#[test]
fn a_database_of_an_older_schema_is_upgraded_and_keeps_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO jobs (id, job_type, next_retry, created_at, updated_at) \
             VALUES ('0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01', 'legacy', 0, 0, 0)",
            [],
        )
        .unwrap();
    }
    let q = Queue::open(&path).unwrap();
    let id = "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01".parse().unwrap();
    assert_eq!(q.get(id).unwrap().job_type, "legacy");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, current_version());
    let n: i64 = conn
        .query_row("SELECT count(*) FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 4096, "an existing file keeps its page size");
}

fn assert_refused_unchanged(path: &std::path::Path, want_reason: &str) {
    let before = fs::read(path).unwrap();
    let err = Queue::open(path).unwrap_err();
    match &err {
        Error::NotADatabase { path: p, reason } => {
            assert_eq!(p, path);
            assert!(
                reason.contains(want_reason),
                "reason {reason:?} lacks {want_reason:?}"
            );
        }
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert!(err.to_string().contains("not a jobq database"));
    assert_eq!(
        fs::read(path).unwrap(),
        before,
        "the file must be left unchanged"
    );
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(!dir.join(format!("{name}-wal")).exists());
}

#[test]
fn a_text_file_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    fs::write(&path, "these are my notes, not a database\n".repeat(50)).unwrap();
    assert_refused_unchanged(&path, "not a SQLite database");
}

#[test]
fn a_truncated_database_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    {
        let q = Queue::open(&path).unwrap();
        let jobs = (0..2000).map(|i| NewJob::new("t", json!({"i": i, "pad": "x".repeat(200)})));
        q.enqueue_many(jobs.collect()).unwrap();
    }
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() / 2 + 100]).unwrap();
    assert_refused_unchanged(&path, "truncated");
}

#[test]
fn a_damaged_jobq_database_is_refused_as_damaged_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    {
        let q = Queue::open(&path).unwrap();
        let jobs = (0..200).map(|i| NewJob::new("t", json!({"i": i})));
        q.enqueue_many(jobs.collect()).unwrap();
    }
    // The schema's page (page 1 after its 100-byte header) overwritten: the
    // header still says jobq, the pages cannot be read.
    let mut bytes = fs::read(&path).unwrap();
    bytes[200..4000].fill(0xAB);
    fs::write(&path, &bytes).unwrap();
    let err = Queue::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("the file is damaged: database disk image is malformed"),
        "{text}"
    );
    assert!(text.contains("left unchanged"), "{text}");
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "the file is left unchanged"
    );
}

#[test]
fn another_programs_sqlite_database_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'a');")
            .unwrap();
    }
    assert_refused_unchanged(&path, "another program");
}

#[test]
fn another_programs_wal_database_is_refused_with_its_wal_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let wal = dir.path().join("other.db-wal");
    // The other program keeps its connection open, its commits still in the WAL.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO customers VALUES (1, 'a');",
    )
    .unwrap();
    let (db_before, wal_before) = (fs::read(&path).unwrap(), fs::read(&wal).unwrap());
    assert!(wal_before.len() > 32, "the WAL holds the program's commits");
    let err = Queue::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::NotADatabase { .. }),
        "expected NotADatabase, got {err:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), db_before, "the file is unchanged");
    assert_eq!(fs::read(&wal).unwrap(), wal_before, "the WAL is unchanged");
    assert!(dir.path().join("other.db-shm").exists());
    // The program still reads its own data.
    let name: String = conn
        .query_row("SELECT name FROM customers WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "a");
    // The same files as a crashed program left them: no connection open.
    let (crashed, crashed_wal) = (dir.path().join("c.db"), dir.path().join("c.db-wal"));
    fs::copy(&path, &crashed).unwrap();
    fs::copy(&wal, &crashed_wal).unwrap();
    drop(conn);
    assert!(!wal.exists(), "its WAL went away with its last connection");
    let err = Queue::open(&crashed).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");
    assert_eq!(
        fs::read(&crashed).unwrap(),
        db_before,
        "the file is unchanged"
    );
    assert_eq!(
        fs::read(&crashed_wal).unwrap(),
        wal_before,
        "the WAL is unchanged"
    );
}

#[test]
fn unicode_and_emoji_payloads_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("u.db")).unwrap();
    let payload = json!({
        "title": "Über naïve café — 日本語テキスト 🚀🔥👩‍👩‍👧",
        "nul": "a\u{0}b",
        "rtl": "עברית العربية",
        "nested": [{"emoji": "🧪"}, "\u{1F600}"]
    });
    let job = q
        .enqueue(NewJob::new("unicode", payload.clone()).owner("zoë"))
        .unwrap();
    let back = q.get(job.id).unwrap();
    assert_eq!(back.payload, payload);
    assert_eq!(back.owner.as_deref(), Some("zoë"));
    assert_eq!(
        serde_json::to_string(&back.payload).unwrap(),
        serde_json::to_string(&payload).unwrap()
    );
}

#[test]
fn invalid_jobs_are_refused_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let q = jobq::Queue::open_with(
        jobq::QueueOptions::new(dir.path().join("v.db")).max_payload_bytes(100),
    )
    .unwrap();
    let cases = [
        (NewJob::new("Bad Type", json!(null)), "job_type"),
        (NewJob::new("", json!(null)), "job_type"),
        (NewJob::new("x".repeat(65), json!(null)), "job_type"),
        (
            NewJob::new("ok", json!(null)).max_attempts(0),
            "max_attempts",
        ),
    ];
    for (new, field) in cases {
        match q.enqueue(new) {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    match q.enqueue(NewJob::new("ok", json!("y".repeat(200)))) {
        Err(Error::PayloadTooLarge { size, limit }) => assert_eq!((size, limit), (202, 100)),
        other => panic!("expected too large, got {other:?}"),
    }
    let mut both = NewJob::new("ok", json!(null)).delay(std::time::Duration::from_secs(5));
    both.run_at = Some(jobq::Timestamp(0));
    assert!(matches!(
        q.enqueue(both),
        Err(Error::Invalid {
            field: "run_at",
            ..
        })
    ));
    let many = vec![NewJob::new("ok", json!(1)), NewJob::new("BAD", json!(2))];
    let err = q.enqueue_many(many).unwrap_err();
    assert!(err.to_string().contains("job 1"), "{err}");
    assert_eq!(
        q.stats().unwrap().total,
        0,
        "enqueue_many is all or nothing"
    );
}

/// Regression: big integers and long decimals came back as rounded floats.
#[test]
fn numbers_beyond_f64_round_trip_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("n.db")).unwrap();
    let text = r#"{"big":12345678901234567890123,"neg":-98765432109876543210,"dec":1.00000000000000000001,"tiny":5e-324}"#;
    let payload: serde_json::Value = serde_json::from_str(text).unwrap();
    let job = q.enqueue(NewJob::new("numbers", payload)).unwrap();
    assert_eq!(q.get(job.id).unwrap().payload.to_string(), text);
}

/// What README says is not kept: whitespace, an exponent's spelling, and the
/// first of two values for one key (through the CLI, as users write them).
#[test]
fn a_payload_is_stored_as_parsed_json() {
    let sb = crate::util::Sandbox::new();
    sb.config(crate::util::TEST_CONFIG);
    let payload = r#"{ "a" : 1, "e": 1e400, "a": 2, "z": [1,  2] }"#;
    let job = sb.json(&["enqueue", "echo", "--payload", payload]);
    assert_eq!(
        job["payload"].to_string(),
        r#"{"a":2,"e":1e+400,"z":[1,2]}"#
    );
}

/// The file a checkpoint leaves when only its first write reached the disk (a
/// power cut, or another process opening the file meanwhile): page 1 from the
/// WAL, which counts pages the file does not have yet. Returns the job ids.
fn mid_checkpoint_copy(dir: &std::path::Path) -> (std::path::PathBuf, Vec<jobq::JobId>) {
    let live = dir.join("live.db");
    drop(Queue::open(&live).unwrap());
    let q = Queue::open(&live).unwrap();
    let jobs = (0..100).map(|i| NewJob::new("t", json!({"pad": "x".repeat(2000), "i": i})));
    let ids = q.enqueue_many(jobs.collect()).unwrap();
    let copy = dir.join("copy.db");
    fs::copy(&live, &copy).unwrap();
    let wal = fs::read(dir.join("live.db-wal")).unwrap();
    fs::write(dir.join("copy.db-wal"), &wal).unwrap();
    drop(q);
    let page = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    let frames = wal[32..].chunks_exact(24 + page);
    let first = frames.rev().find(|f| f[..4] == 1u32.to_be_bytes()).unwrap();
    let mut db = fs::read(&copy).unwrap();
    let header_pages = u32::from_be_bytes(first[24 + 28..24 + 32].try_into().unwrap());
    assert!(
        header_pages as usize * page > db.len(),
        "the WAL grew the file"
    );
    db[..page].copy_from_slice(&first[24..]);
    fs::write(&copy, db).unwrap();
    (copy, ids)
}

#[test]
fn a_database_caught_mid_checkpoint_is_not_refused_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (copy, ids) = mid_checkpoint_copy(dir.path());
    let q = Queue::open(&copy).unwrap();
    for id in ids {
        assert_eq!(q.get(id).unwrap().job_type, "t");
    }
}

/// What the WAL looked like while one-job commits with a 1 KiB payload were
/// written (sampled every 50 commits).
#[derive(Debug, Default)]
struct WalSeen {
    /// The largest `-wal` file (bytes).
    peak: u64,
    /// Whether frames were found copied into the database while the WAL held
    /// fewer than `copied_below` frames (so no commit had checkpointed yet).
    copied_early: bool,
}

/// `mxFrame` and `nBackfill` of the WAL index in `<db>-shm` (SQLite's WAL
/// format: the header's frame count at byte 16, the checkpoint's copied
/// frames at byte 96, native byte order), or `None` before it exists.
fn wal_index(path: &std::path::Path) -> Option<(u32, u32)> {
    let shm = fs::read(path.with_extension("db-shm")).ok()?;
    let at = |i: usize| Some(u32::from_ne_bytes(shm.get(i..i + 4)?.try_into().ok()?));
    Some((at(16)?, at(96)?))
}

fn wal_seen(q: &Queue, path: &std::path::Path, n: usize, copied_below: u32) -> WalSeen {
    let wal = path.with_extension("db-wal");
    let mut seen = WalSeen::default();
    for i in 0..n {
        q.enqueue(NewJob::new("w", json!("x".repeat(1024))))
            .unwrap();
        if i % 50 == 0 {
            seen.peak = seen.peak.max(fs::metadata(&wal).map_or(0, |m| m.len()));
            if let Some((frames, copied)) = wal_index(path) {
                seen.copied_early |= copied > 0 && frames < copied_below;
            }
        }
    }
    seen
}

#[test]
fn under_normal_the_wal_is_copied_in_the_background_and_rewound_at_about_32_mb() {
    // README, "Durability and leases": under `normal` a checkpoint is asked
    // for every 4 MiB of WAL and runs on a thread of its own; a commit
    // checkpoints itself (after the thread's) once the WAL holds 32 MiB, so
    // the file stops there (frame headers and one commit aside), on new files
    // (2,048-byte pages) and older ones (4,096) alike.
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch(SCHEMA_V1)
        .unwrap();
    for (path, page) in [(new, 2048u64), (old, 4096)] {
        let q =
            Queue::open_with(jobq::QueueOptions::new(&path).durability(jobq::Durability::Normal))
                .unwrap();
        let frame = page + 24;
        let hard = (32u64 << 20) / page;
        // About 40 MB of WAL: past the hard limit.
        let seen = wal_seen(&q, &path, 20_000, u32::try_from(hard).unwrap());
        let most = 32 + (hard + 16) * frame;
        assert!(
            seen.peak > 8 << 20 && seen.peak <= most,
            "{}: WAL peaked at {} bytes (at most {most})",
            path.display(),
            seen.peak
        );
        assert!(
            seen.copied_early,
            "{}: nothing was copied before the WAL reached its hard limit",
            path.display()
        );
    }
}

#[test]
fn under_full_commits_checkpoint_the_wal_at_about_4_mb() {
    // Under `full` a commit checkpoints as SQLite does, at jobq's 4 MiB.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let q = Queue::open(&path).unwrap();
    let wal = path.with_extension("db-wal");
    let mut peak = 0;
    // Ten jobs per commit: about 6 MB in 600 fsynced commits.
    for _ in 0..600 {
        let jobs = (0..10).map(|_| NewJob::new("w", json!("x".repeat(1024))));
        q.enqueue_many(jobs.collect()).unwrap();
        peak = peak.max(fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert!(
        (3 << 20..=(4 << 20) + (512 << 10)).contains(&peak),
        "WAL peaked at {peak} bytes"
    );
}

#[test]
fn an_in_memory_or_empty_path_is_refused_without_making_a_file() {
    for location in [":memory:", ""] {
        let err = Queue::open(location).unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{location:?}: {err:?}");
        assert!(err.to_string().contains("give a file path"), "{err}");
    }
    assert!(!std::path::Path::new(":memory:").exists());
}
