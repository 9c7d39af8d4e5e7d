//! Reliability: the disk fills up under the database, then space comes back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jobq::{Error, JobStatus, NewJob, Queue, Registry, WorkerConfig, WorkerPool};
use serde_json::{json, Value};

use crate::util::wait_for;

/// A small tmpfs mounted for the test; unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. "8m"), or says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        let at = dir.join("small");
        std::fs::create_dir_all(&at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(SmallDisk(at))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fill(path: &Path) {
    // Write until the filesystem refuses: a filler file that can be deleted later.
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![7u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_gives_a_clear_error_and_nothing_is_lost_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    // 8 MiB: the database and its WAL (not truncated after checkpoints) must
    // fit beside each other once space returns; 6 MiB held them before the
    // dashboard's two indexes made every write a few pages larger.
    let disk = match SmallDisk::mount(dir.path(), "8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED full-disk test: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let db = disk.0.join("full.db");
    let q = Queue::open(&db).unwrap();
    let stored: Vec<_> = (0..200)
        .map(|i| q.enqueue(NewJob::new("t", json!({"i": i}))).unwrap().id)
        .collect();
    let mut reg = Registry::new();
    reg.register("t", |_: &jobq::JobContext, _: Value| Ok(json!("done")));
    fill(&disk.0.join("filler"));
    let payload = json!({"pad": "x".repeat(100_000)});
    let err = (0..50)
        .map(|_| q.enqueue(NewJob::new("t", payload.clone())))
        .find_map(Result::err)
        .expect("enqueue must fail on a full disk");
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().starts_with("disk full"), "{err}");
    let cfg = WorkerConfig {
        workers: 2,
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::start(q.clone(), reg, cfg).unwrap();
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    wait_for(
        "every stored job completed",
        Duration::from_secs(60),
        || {
            stored.iter().all(|id| {
                q.get(*id)
                    .map(|j| j.status == JobStatus::Completed)
                    .unwrap_or(false)
            })
        },
    );
    pool.shutdown(Duration::from_secs(1));
    q.enqueue(NewJob::new("t", json!("after"))).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 201, "no stored job lost ({n})");
}

/// A pool on a full 32 MiB tmpfs whose results (100 KB each) cannot be written,
/// once it has logged the full disk. None when no tmpfs can be mounted here.
struct FullDiskPool {
    queue: Queue,
    ids: Vec<jobq::JobId>,
    pool: WorkerPool,
    /// The error line the pool logs, with its worker id.
    needle: String,
    disk: SmallDisk,
    _dir: tempfile::TempDir,
}

fn full_disk_pool(name: &str, jobs: usize) -> Option<FullDiskPool> {
    let dir = tempfile::tempdir().unwrap();
    let disk = match SmallDisk::mount(dir.path(), "32m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED {name}: cannot mount a tmpfs here ({why})");
            return None;
        }
    };
    crate::log_capture::install();
    let queue = Queue::open(disk.0.join(format!("{name}.db"))).unwrap();
    let new = (0..jobs).map(|i| NewJob::new("big", json!(i))).collect();
    let ids = queue.enqueue_many(new).unwrap();
    fill(&disk.0.join("filler"));
    let mut reg = Registry::new();
    reg.register("big", |_: &jobq::JobContext, _: Value| {
        Ok(json!("r".repeat(100_000)))
    });
    let worker_id = format!("{name}-{}", std::process::id());
    let cfg = WorkerConfig {
        workers: 2,
        worker_id: worker_id.clone(),
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let needle = format!("worker pool {worker_id}: disk full");
    let pool = WorkerPool::start(queue.clone(), reg, cfg).unwrap();
    wait_for(
        "the pool to notice the full disk",
        Duration::from_secs(30),
        || crate::log_capture::count(&needle) >= 1,
    );
    Some(FullDiskPool {
        queue,
        ids,
        pool,
        needle,
        disk,
        _dir: dir,
    })
}

#[test]
fn workers_back_off_on_a_full_disk_logging_once_per_interval_then_carry_on() {
    let Some(f) = full_disk_pool("disk-full", 20) else {
        return;
    };
    // Watch a window: at most one error line per second, not a storm.
    let (start, before) = (
        std::time::Instant::now(),
        crate::log_capture::count(&f.needle),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let logged = crate::log_capture::count(&f.needle) - before;
    let bound = start.elapsed().as_secs() as usize + 1;
    assert!(
        logged <= bound,
        "{logged} error lines in {:?}",
        start.elapsed()
    );
    let q = &f.queue;
    assert!(f
        .ids
        .iter()
        .all(|id| q.get(*id).unwrap().status != JobStatus::Failed));
    std::fs::remove_file(f.disk.0.join("filler")).unwrap();
    wait_for(
        "every job completed once space is back",
        Duration::from_secs(60),
        || {
            f.ids
                .iter()
                .all(|id| q.get(*id).unwrap().status == JobStatus::Completed)
        },
    );
    f.pool.shutdown(Duration::from_secs(1));
    assert!(
        f.ids.iter().all(|id| q.get(*id).unwrap().attempts == 1),
        "no attempt was lost"
    );
}

#[test]
fn shutdown_returns_while_the_disk_stays_full_and_the_jobs_come_back_later() {
    let Some(f) = full_disk_pool("disk-stuck", 4) else {
        return;
    };
    let pool = f.pool;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(pool.shutdown(Duration::from_millis(300))).unwrap());
    let counts = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("shutdown must return although nothing can be written");
    assert_eq!(counts.completed, 0);
    std::fs::remove_file(f.disk.0.join("filler")).unwrap();
    // The unwritten results' jobs are still in progress: they come back when their
    // leases expire (at-least-once), never lost.
    for id in &f.ids {
        let st = f.queue.get(*id).unwrap().status;
        assert!(
            matches!(st, JobStatus::InProgress | JobStatus::Pending),
            "{st}"
        );
    }
}

/// Under `normal` a writing store checkpoints on a thread of its own (README,
/// "Durability and leases"). The disk fills while that thread copies the WAL
/// into a database file that has to grow: the checkpoint fails and says so,
/// commits go on into the WAL's space until it has none (then the enqueue
/// fails `disk full`), and once space returns every acknowledged job is there,
/// the WAL copies in full and the file checks clean.
#[test]
fn a_full_disk_during_a_background_checkpoint_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = match SmallDisk::mount(dir.path(), "48m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "SKIPPED background-checkpoint full-disk test: cannot mount a tmpfs here ({why})"
            );
            return;
        }
    };
    crate::log_capture::install();
    let db = disk.0.join("bg.db");
    let opts = jobq::QueueOptions::new(&db).durability(jobq::Durability::Normal);
    let q = Queue::open_with(opts).unwrap();
    let pad = |i: usize| json!({"i": i, "pad": format!("{i:08}").repeat(1_250)});
    // About 9 MiB of WAL: the file keeps that size once rewound. (A pause of
    // the writer can let the thread copy it all and the WAL rewind early,
    // so this writes until the file is that big, not a fixed count.)
    let wal_len = || std::fs::metadata(disk.0.join("bg.db-wal")).map_or(0, |m| m.len());
    let mut acked: Vec<(jobq::JobId, usize)> = Vec::new();
    while wal_len() < 9 << 20 && acked.len() < 2_000 {
        let i = acked.len();
        acked.push((q.enqueue(NewJob::new("t", pad(i))).unwrap().id, i));
    }
    let first = acked.len();
    let other = rusqlite::Connection::open(&db).unwrap();
    assert!(copy_all(&other), "the WAL is copied in full");
    let wal = std::fs::metadata(disk.0.join("bg.db-wal")).unwrap().len();
    assert!(wal > 8 << 20, "the WAL file holds {wal} bytes");
    fill(&disk.0.join("filler"));
    let needle = format!("{}: background checkpoint failed", db.display());
    // The next commits rewind into the WAL's space; the thread's checkpoint
    // needs new pages in the database file and fails, until the WAL is full.
    let refused = (first..first + 4_000)
        .find_map(|i| match q.enqueue(NewJob::new("t", pad(i))) {
            Ok(j) => {
                acked.push((j.id, i));
                None
            }
            Err(e) => Some(e),
        })
        .expect("the disk runs out");
    assert!(matches!(refused, Error::DiskFull { .. }), "{refused:?}");
    assert!(
        acked.len() > first + 50,
        "commits went on into the WAL's space"
    );
    // The thread was asked during the commits; it may run a little later.
    wait_for(
        "the background checkpoint to meet the full disk and say so",
        Duration::from_secs(30),
        || crate::log_capture::count(&needle) >= 1,
    );
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    let after = q.enqueue(NewJob::new("t", json!("after"))).unwrap();
    for (id, i) in &acked {
        let job = q.get(*id).unwrap();
        assert_eq!(job.payload, pad(*i), "job {id}");
    }
    assert!(copy_all(&other), "space is back: the WAL copies in full");
    drop(q);
    let check: String = other
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n: i64 = other
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        n as usize,
        acked.len() + 1,
        "every acknowledged job, and {after:?}"
    );
}

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on `conn` until no other checkpoint
/// (the store's thread) holds it off, for up to 10 s. Returns whether every
/// frame of the WAL was copied.
fn copy_all(conn: &rusqlite::Connection) -> bool {
    let mut outcome = false;
    wait_for("a checkpoint not held off", Duration::from_secs(10), || {
        let (busy, frames, copied): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        outcome = frames >= 0 && copied == frames;
        busy == 0
    });
    outcome
}
