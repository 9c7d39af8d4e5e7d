//! The power-cut disk model's own tests: what survives a cut, and what a
//! failed fsync loses and reports.

use std::ffi::OsStr;

use fuser::Errno;

use crate::powercut_fs::{Disk, Plan};

#[test]
fn the_disk_model_keeps_exactly_what_was_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.db"), b"old").unwrap();
    let plan = Plan {
        cut_at: 8,
        torn: false,
        faults_until: 0,
        fault_one_in: 0,
        db_fsync_faults: true,
        seed: 7,
    };
    let mut disk = Disk::load(dir.path(), plan);
    let a = disk.lookup(OsStr::new("a.db")).unwrap();
    let fa = disk.open(a).unwrap();
    disk.write(a, 0, b"new").unwrap(); // 1
    disk.fsync(fa).unwrap(); // 2
    disk.write(a, 3, b"-lost").unwrap(); // 3
    let w = disk.create(OsStr::new("a.db-wal")).unwrap(); // 4
    disk.write(w, 0, b"frames").unwrap(); // 5
    let fw = disk.open(w).unwrap();
    disk.fsync(fw).unwrap(); // 6: content durable, but not the name
    assert_eq!(disk.read(a, 0, 100).unwrap(), b"new-lost");
    disk.unlink(OsStr::new("a.db")).unwrap(); // 7: not durable either
    assert_eq!(disk.write(a, 0, b"x"), Err(Errno::EIO)); // 8: the power goes
    assert_eq!(disk.fsync(fa), Err(Errno::EIO));
    assert_eq!(disk.stats.cut_at.as_deref(), Some("write db"));
    let out = tempfile::tempdir().unwrap();
    disk.save_durable(out.path());
    assert_eq!(std::fs::read(out.path().join("a.db")).unwrap(), b"new");
    assert!(!out.path().join("a.db-wal").exists());
}

#[test]
fn a_failed_fsync_loses_the_pending_writes_and_every_open_handle_hears_of_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.db"), b"0000").unwrap();
    let plan = Plan {
        cut_at: u64::MAX,
        torn: false,
        faults_until: 0,
        fault_one_in: 0,
        db_fsync_faults: true,
        seed: 3,
    };
    let mut disk = Disk::load(dir.path(), plan);
    let a = disk.lookup(OsStr::new("a.db")).unwrap();
    let (writer, other) = (disk.open(a).unwrap(), disk.open(a).unwrap());
    disk.fail_next = Some(("write".into(), "db"));
    assert_eq!(disk.write(a, 0, b"1"), Err(Errno::EIO));
    disk.write(a, 0, b"2").unwrap();
    disk.fail_next = Some(("fsync".into(), "db"));
    assert_eq!(disk.fsync(other), Err(Errno::EIO), "the failed writeback");
    let later = disk.open(a).unwrap();
    disk.write(a, 1, b"3").unwrap();
    assert_eq!(
        disk.fsync(writer),
        Err(Errno::EIO),
        "told once, data written"
    );
    disk.fsync(writer).unwrap();
    disk.fsync(other).unwrap();
    disk.fsync(later).unwrap();
    assert_eq!(disk.read(a, 0, 4).unwrap(), b"2300", "readers still see it");
    disk.cut("test".into());
    let out = tempfile::tempdir().unwrap();
    disk.save_durable(out.path());
    assert_eq!(std::fs::read(out.path().join("a.db")).unwrap(), b"0300");
    let s = &disk.stats;
    assert_eq!(
        (s.eio_writes, s.eio_fsyncs, s.eio_reported_later),
        (1, 1, 1)
    );
}
