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
