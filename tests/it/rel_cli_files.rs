//! Reliability through the binary: corrupt and foreign database files, and
//! read-only files and directories (read-only bind mounts, as root).

use std::collections::BTreeSet;
use std::path::Path;

use jobq::{JobPage, Stats};

use crate::rel_readonly::ReadOnlyMount;
use crate::util::{Run, Sandbox};

use crate::util::TEST_CONFIG as CONFIG;

/// The names of the files in `dir`.
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// One clear error line on stderr (besides log lines, which start with `[`,
/// such as the warning that a read-only file was opened for reading), no panic,
/// the given exit code.
fn assert_clear_error(run: &Run, code: i32, words: &str, what: &str) {
    assert_eq!(run.code, code, "{what}: {}", run.stderr);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| !l.starts_with('[')).collect();
    assert_eq!(errors.len(), 1, "{what}: {}", run.stderr);
    assert!(errors[0].starts_with("jobq: "), "{what}: {}", run.stderr);
    assert!(errors[0].contains(words), "{what}: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
}

fn foreign_files(s: &Sandbox) -> Vec<(&'static str, Vec<u8>)> {
    let text = b"id,name\n1,not a database at all\n".to_vec();
    let full = {
        let tmp = s.path().join("full.db");
        let q = jobq::Queue::open(&tmp).unwrap();
        let jobs = (0..2000).map(|i| jobq::NewJob::new("echo", serde_json::json!({"i": i})));
        q.enqueue_many(jobs.collect()).unwrap();
        drop(q);
        let bytes = std::fs::read(&tmp).unwrap();
        std::fs::remove_file(&tmp).unwrap();
        bytes
    };
    let truncated = full[..full.len() / 2 + 100].to_vec();
    let other = {
        let tmp = s.path().join("other-src.db");
        let conn = rusqlite::Connection::open(&tmp).unwrap();
        conn.execute_batch(
            "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);
             INSERT INTO invoices VALUES (1, 9.5);",
        )
        .unwrap();
        drop(conn);
        let bytes = std::fs::read(&tmp).unwrap();
        std::fs::remove_file(&tmp).unwrap();
        bytes
    };
    vec![
        ("text.db", text),
        ("truncated.db", truncated),
        ("other.db", other),
    ]
}

#[test]
fn corrupt_and_foreign_files_are_refused_by_every_command_and_left_untouched() {
    let s = Sandbox::new();
    s.config(CONFIG);
    let files = foreign_files(&s);
    for (name, bytes) in &files {
        std::fs::write(s.path().join(name), bytes).unwrap();
    }
    let before = listing(s.path());
    let commands: [&[&str]; 5] = [
        &["stats"],
        &["enqueue", "echo", "--payload", "{}"],
        &["work", "--drain"],
        &["list"],
        &["recover"],
    ];
    for (name, bytes) in &files {
        for args in commands {
            let mut all = vec!["--db", name];
            all.extend_from_slice(args);
            let run = s.run(&all);
            assert_clear_error(&run, 1, "not a jobq database", &format!("{all:?}"));
            assert!(run.stderr.contains(name), "names the file: {}", run.stderr);
            let after = std::fs::read(s.path().join(name)).unwrap();
            assert!(&after == bytes, "{all:?} changed {name}");
        }
    }
    assert_eq!(listing(s.path()), before, "no file was added or removed");
}

/// A database with a pending (delayed), a failed and a completed job.
fn populated() -> (Sandbox, [String; 3]) {
    let s = Sandbox::new();
    s.config(CONFIG);
    let pending = s.ok(&["enqueue", "echo", "--delay", "1h"]);
    let failed = s.ok(&["enqueue", "fails"]);
    let done = s.ok(&["enqueue", "echo", "--payload", r#"{"ok":1}"#]);
    s.ok(&["work", "--drain"]);
    assert!(s.ok(&["show", &failed]).contains("failed"));
    (s, [pending, failed, done])
}

fn check_cli_read_only(s: &Sandbox, db: &Path, ids: &[String; 3]) {
    let before = std::fs::read(db).unwrap();
    let db = db.to_str().unwrap();
    let [pending, failed, done] = ids;
    let jsonl = s.path().join("one.jsonl");
    std::fs::write(&jsonl, "{\"job_type\":\"echo\"}\n").unwrap();
    let writes: [&[&str]; 5] = [
        &["enqueue", "echo", "--payload", "{}"],
        &["enqueue", "--jsonl", jsonl.to_str().unwrap()],
        &["cancel", pending],
        &["retry", failed],
        &["prune", "--older-than", "0s"],
    ];
    for args in writes {
        let mut all = vec!["--db", db];
        all.extend_from_slice(args);
        assert_clear_error(&s.run(&all), 1, "read-only", &format!("{args:?}"));
    }
    let show = s.json(&["--db", db, "show", done]);
    assert_eq!(show["result"], serde_json::json!({"ok": 1}));
    let page: JobPage = serde_json::from_value(s.json(&["--db", db, "list"])).unwrap();
    assert_eq!(page.total, 3);
    let stats: Stats = serde_json::from_value(s.json(&["--db", db, "stats"])).unwrap();
    assert_eq!(
        (stats.by_status.pending, stats.by_status.failed),
        (1, 1),
        "{stats:?}"
    );
    assert!(s.ok(&["--db", db, "list"]).contains("3 of 3 jobs"));
    assert_eq!(std::fs::read(db).unwrap(), before, "nothing stored changed");
}

#[test]
fn cli_on_a_read_only_directory_reads_and_refuses_writes() {
    let (s, ids) = populated();
    let ro = tempfile::tempdir().unwrap();
    let _mount = match ReadOnlyMount::new(s.path(), ro.path()) {
        Ok(m) => m,
        Err(why) => return eprintln!("SKIPPED CLI read-only directory test: {why}"),
    };
    check_cli_read_only(&s, &ro.path().join("jobq.db"), &ids);
}

#[test]
fn cli_on_a_read_only_database_file_reads_and_refuses_writes() {
    let (s, ids) = populated();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ro.db");
    std::fs::write(&db, b"").unwrap();
    let _mount = match ReadOnlyMount::new(&s.db(), &db) {
        Ok(m) => m,
        Err(why) => return eprintln!("SKIPPED CLI read-only file test: {why}"),
    };
    check_cli_read_only(&s, &db, &ids);
}

/// A drain is a script's step: a database error that waiting does not mend
/// (here pages overwritten in the middle of the file) ends it with exit 1 and
/// the error, instead of retrying every second forever.
#[test]
fn a_drain_stops_with_exit_1_on_a_file_corrupted_under_it() {
    let s = Sandbox::new();
    s.config(CONFIG);
    let q = jobq::Queue::open(s.db()).unwrap();
    let text = "x".repeat(2000);
    let jobs = (0..300).map(|i| jobq::NewJob::new("echo", serde_json::json!({"i": i, "t": text})));
    q.enqueue_many(jobs.collect()).unwrap();
    drop(q);
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(s.db()).unwrap();
    let (from, to) = (bytes.len() * 2 / 5, bytes.len() * 3 / 5);
    bytes[from..to].fill(0xFF);
    std::fs::write(s.db(), &bytes).unwrap();

    let mut child = s.spawn(&["work", "--drain"], "drain");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("the drain went on for 60 s: {}", s.log("drain"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let log = s.log("drain");
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let last = log
        .lines()
        .filter(|l| !l.starts_with('['))
        .collect::<Vec<_>>();
    assert_eq!(last.len(), 1, "{log}");
    assert!(last[0].starts_with("jobq: the drain stopped: "), "{log}");
    assert!(last[0].contains("malformed"), "{log}");
}

/// Overwrites the root page of `table` in the SQLite file at `db` (its WAL
/// copied in first) with bytes that are no b-tree page.
fn damage_table(db: &Path, table: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(db).unwrap();
    let at = usize::try_from((root - 1) * page_size).unwrap();
    bytes[at..at + 64].fill(0xEE);
    std::fs::write(db, &bytes).unwrap();
}

/// Regression: a drain whose claims still worked but whose pool could not be
/// registered (the file reports itself damaged) logged a warning, ran the jobs
/// and exited 0. A pool now refuses to start on such a file, in a drain or not;
/// the jobs stay as they were.
#[test]
fn a_pool_refuses_to_start_on_a_file_whose_pool_table_is_damaged() {
    let s = Sandbox::new();
    s.config(CONFIG);
    let q = jobq::Queue::open(s.db()).unwrap();
    let id = q
        .enqueue(jobq::NewJob::new("echo", serde_json::json!({"n": 1})))
        .unwrap()
        .id;
    drop(q);
    damage_table(&s.db(), "workers");
    for args in [&["work", "--drain"][..], &["work"][..]] {
        let run = s.run(args);
        assert_clear_error(&run, 1, "malformed", "a pool on a damaged file");
        assert!(!run.stderr.contains("drained"), "{}", run.stderr);
    }
    let shown = s.json(&["show", &id.to_string()]);
    assert_eq!(shown["status"], "pending", "{shown}");
    assert_eq!(shown["attempts"], 0, "{shown}");
}

/// Regression: a drain whose schedules could not fire (the file reports
/// itself damaged there) logged the error every tick and exited 0.
#[test]
fn a_drain_stops_with_exit_1_when_its_schedules_cannot_fire_on_a_damaged_file() {
    let s = Sandbox::new();
    s.config(&format!(
        "{CONFIG}\n[handlers.nap]\ncommand = [\"sleep\", \"2\"]\n"
    ));
    // Fires the built-in daily prune once, so its schedule has a row.
    s.ok(&["work", "--drain"]);
    damage_table(&s.db(), "schedules");
    // A job long enough for the schedules to be looked at during the drain.
    s.ok(&["enqueue", "nap"]);
    let run = s.run(&["work", "--drain"]);
    assert_clear_error(&run, 1, "the drain stopped: ", "a drain on a damaged file");
    assert!(run.stderr.contains("malformed"), "{}", run.stderr);
}
