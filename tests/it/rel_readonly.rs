//! Reliability: a read-only database file or directory. Reads work; writes fail
//! with a clear read-only error; nothing stored changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use jobq::{Error, JobFilter, NewJob, Queue};
use serde_json::json;

/// A read-only bind mount of `src` at `dst`; unmounted on drop.
pub struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// Mounts; the error is mount's message (not root, no mount namespace rights).
    pub fn new(src: &Path, dst: &Path) -> Result<ReadOnlyMount, String> {
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("mount")
                .args(args)
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        let (s, d) = (src.to_string_lossy(), dst.to_string_lossy());
        run(&["--bind", &s, &d])?;
        let m = ReadOnlyMount(dst.to_path_buf());
        run(&["-o", "remount,bind,ro", &d])?;
        Ok(m)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn make_db(dir: &Path) -> (PathBuf, Vec<jobq::JobId>) {
    std::fs::create_dir_all(dir).unwrap();
    let db = dir.join("ro.db");
    let q = Queue::open(&db).unwrap();
    let ids = (0..5)
        .map(|i| q.enqueue(NewJob::new("t", json!(i))).unwrap().id)
        .collect();
    (db, ids)
}

fn check_read_only(db: &Path, ids: &[jobq::JobId]) {
    let before = std::fs::read(db).unwrap();
    let q = Queue::open(db).expect("a read-only database opens for reading");
    assert_eq!(q.get(ids[0]).unwrap().payload, json!(0));
    assert_eq!(q.list(&JobFilter::default(), 10, None).unwrap().total, 5);
    assert_eq!(q.stats().unwrap().by_status.pending, 5);
    let err = q.enqueue(NewJob::new("t", json!("new"))).unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(matches!(q.cancel(ids[1]), Err(Error::ReadOnly { .. })));
    // A pool would only retry its claims forever: refused at start.
    let mut reg = jobq::Registry::new();
    reg.register("t", |_: &jobq::JobContext, _| Ok(json!(null)));
    let pool = jobq::WorkerPool::start(q.clone(), reg, jobq::WorkerConfig::default());
    assert!(
        matches!(pool, Err(Error::ReadOnly { .. })),
        "{:?}",
        pool.err()
    );
    drop(q);
    assert_eq!(std::fs::read(db).unwrap(), before, "nothing stored changed");
}

#[test]
fn a_database_in_a_read_only_directory_reads_and_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, ids) = make_db(&tmp.path().join("src"));
    let ro = tmp.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let _mount = match ReadOnlyMount::new(&tmp.path().join("src"), &ro) {
        Ok(m) => m,
        Err(why) => {
            return eprintln!("SKIPPED read-only directory test: cannot bind-mount ({why})")
        }
    };
    check_read_only(&ro.join("ro.db"), &ids);
}

#[test]
fn a_read_only_database_file_in_a_writable_directory_reads_and_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (src_db, ids) = make_db(&tmp.path().join("src"));
    let dir = tmp.path().join("rw");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("ro.db");
    std::fs::write(&db, b"").unwrap();
    let _mount = match ReadOnlyMount::new(&src_db, &db) {
        Ok(m) => m,
        Err(why) => return eprintln!("SKIPPED read-only file test: cannot bind-mount ({why})"),
    };
    check_read_only(&db, &ids);
}

/// Runs the jobq binary on `db` with `args`, as an unprivileged user when this
/// test runs as root (root may write anything): exit code, stdout, stderr.
fn jobq_as_reader(db: &Path, args: &[&str]) -> (i32, String, String) {
    let root = effective_uid() == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(crate::util::jobq_bin());
        c
    } else {
        Command::new(crate::util::jobq_bin())
    };
    let out = cmd
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("JOBQ_DB")
        .env_remove("JOBQ_CONFIG")
        .output()
        .expect("run jobq");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// This process's effective user id (from /proc, without libc).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_closed_database_in_a_directory_the_user_cannot_write_reads_from_the_cli() {
    use std::os::unix::fs::PermissionsExt;
    // The usual case of an operator looking at a service's database: the
    // service is stopped (its WAL checkpointed and removed), and the directory
    // and file belong to another user (as root: this test reads as nobody).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("svc");
    let (db, ids) = make_db(&dir);
    assert!(!dir.join("ro.db-wal").exists() && !dir.join("ro.db-shm").exists());
    let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(tmp.path(), 0o755).unwrap();
    let root = effective_uid() == 0;
    mode(&dir, if root { 0o755 } else { 0o555 }).unwrap();
    mode(&db, 0o644).unwrap();
    let before = std::fs::read(&db).unwrap();

    let (code, out, err) = jobq_as_reader(&db, &["list", "--json"]);
    assert_eq!(code, 0, "list: {err}");
    for id in &ids {
        assert!(out.contains(&id.to_string()), "{id} not listed: {out}");
    }
    let (code, _, err) = jobq_as_reader(&db, &["enqueue", "jobq.prune", "--delay", "1h"]);
    assert_eq!(code, 1, "enqueue: {err}");
    assert!(err.contains("read-only"), "{err}");
    // `work --drain` stops at once with the same error, rather than retrying.
    let (code, _, err) = jobq_as_reader(&db, &["work", "--drain"]);
    assert_eq!(code, 1, "work: {err}");
    assert!(err.contains("read-only"), "{err}");
    mode(&dir, 0o755).unwrap();
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "nothing stored changed"
    );
    assert!(!dir.join("ro.db-wal").exists(), "no WAL left behind");
}
