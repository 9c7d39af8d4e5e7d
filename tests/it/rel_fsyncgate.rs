//! A known limit, pinned: SQLite's checkpoint under Linux's fsync-error semantics
//! (the class of PostgreSQL's "fsyncgate"). A checkpoint that cannot copy every
//! frame (a reader holds an older snapshot) moves SQLite's backfill mark without
//! syncing the database file; when the next checkpoint's fsync of the file
//! fails, Linux drops those unsynced page writes too (the pages are marked
//! clean) and a later fsync succeeds. The checkpoint after it resumes from the
//! mark, syncs, and the WAL restarts over frames the file never received: after
//! a power cut the file is corrupt. SQLite ignores errors of the automatic
//! checkpoint (the commit itself is durable), so jobq never sees this error.
//!
//! Ignored because it fails: `cargo test --release --test it fsyncgate -- --ignored`
//! shows it. RELIABILITY.md has the details.

use rusqlite::Connection;

use crate::powercut_fs::{Disk, Plan};
use crate::rel_powercut::mount_or_skip;

fn insert(conn: &Connection, from: i64, n: i64) {
    let mut stmt = conn
        .prepare("INSERT INTO t VALUES (?1, zeroblob(1500))")
        .unwrap();
    for i in from..from + n {
        stmt.execute([i]).unwrap();
    }
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

#[test]
#[ignore = "a known SQLite limitation under Linux fsync-error semantics (RELIABILITY.md)"]
fn a_failed_database_fsync_after_a_partial_checkpoint_leaves_the_file_intact() {
    let work = tempfile::tempdir().unwrap();
    let (image, mnt, after) = (
        work.path().join("img"),
        work.path().join("mnt"),
        work.path().join("after"),
    );
    for d in [&image, &mnt, &after] {
        std::fs::create_dir_all(d).unwrap();
    }
    let plan = Plan {
        cut_at: u64::MAX,
        torn: false,
        faults_until: 0,
        fault_one_in: 0,
        db_fsync_faults: true,
        seed: 1,
    };
    let Some(m) = mount_or_skip(Disk::load(&image, plan), &mnt, "fsyncgate") else {
        return;
    };
    let db = mnt.join("t.db");
    let w = Connection::open(&db).unwrap();
    w.execute_batch(
        "PRAGMA journal_mode=wal; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t (i INTEGER PRIMARY KEY, pad BLOB);",
    )
    .unwrap();
    insert(&w, 0, 100);
    let r = Connection::open(&db).unwrap();
    r.execute_batch("BEGIN").unwrap();
    let _: i64 = r
        .query_row("SELECT count(*) FROM t", [], |x| x.get(0))
        .unwrap();
    insert(&w, 100, 100);
    let (_, log, done) = checkpoint(&w).unwrap();
    assert!(
        done > 0 && done < log,
        "a partial checkpoint: {done} of {log} frames"
    );
    r.execute_batch("COMMIT").unwrap();
    m.disk().fail_next = Some(("fsync".into(), "db"));
    assert!(checkpoint(&w).is_err(), "the database fsync fails");
    let (_, log, done) = checkpoint(&w).unwrap();
    assert_eq!(done, log, "the next checkpoint completes");
    insert(&w, 200, 1); // restarts the WAL over the checkpointed frames
    m.disk().cut("scripted".into());
    m.disk().save_durable(&after);
    drop((w, r));
    m.unmount();
    let conn = Connection::open(after.join("t.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |x| x.get(0))
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(check, "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |x| x.get(0))
        .unwrap();
    assert_eq!(n, 201, "every committed row");
}
