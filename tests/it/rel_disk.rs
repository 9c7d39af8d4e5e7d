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
    let disk = match SmallDisk::mount(dir.path(), "6m") {
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
