//! Commits by other processes, seen as writes to the database's WAL file.
//!
//! Every commit in WAL mode writes frames to `<file>-wal` before it becomes
//! visible; inotify (Linux) reports those writes at once. The event comes
//! before the commit is visible (under FULL, before the writer's fsync), so on
//! an event the watch reads `PRAGMA data_version` on a connection of its own,
//! every 100 µs for up to 100 ms, and reports the change once a commit is
//! visible: a claim started then does not run into the writer's lock (whose
//! busy handler would sleep 1, 2, 5, 10 ms ...). Writes of this process are
//! reported too: the watch is a hint, and polling stays the fallback (other
//! systems, network filesystems, a failed watch).
//!
//! While the pool's workers are all busy the watch is paused (the inotify
//! watch removed): with it in place every write of this process to the
//! directory pays for an event the pool does not need then (about 5 % of a
//! 4-worker no-op drain, BENCHMARKS.md). A commit whose writes came while it
//! was paused is never reported, so a pool that resumes it claims once more,
//! in a write transaction, before it waits: such a commit's writer held the
//! write lock from before its first write until the commit was visible, so
//! that claim either waits for it and sees it, or began after it (see
//! `coordinator.rs`).

use std::path::Path;
use std::time::Duration;

use crate::store::{CommitWatch, Wake};

/// The watch on `path`'s WAL file, or `None` where there is none (not Linux, or
/// inotify refused: then polling finds other processes' jobs).
pub(crate) fn watch(path: &Path) -> Option<Box<dyn CommitWatch>> {
    #[cfg(target_os = "linux")]
    match linux::WalWatch::open(path) {
        Ok(w) => return Some(Box::new(w)),
        Err(e) => log::warn!(
            "{}: cannot watch for other processes' commits ({e}); polling only",
            path.display()
        ),
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
    None
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::{CString, OsString};
    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;

    use rusqlite::{Connection, OpenFlags};

    use super::{Duration, Wake};

    /// How often, and how long at most, the data version is read after an event.
    const SETTLE_STEP: Duration = Duration::from_micros(100);
    const SETTLE_MAX: Duration = Duration::from_millis(100);

    /// An inotify watch on the database's directory (a WAL file can be removed
    /// and created again; a watch on the directory outlives it), reporting
    /// writes to the file named `<db>-wal`, and an eventfd that interrupts a wait.
    pub(super) struct WalWatch {
        events: File,
        stop: File,
        /// The directory watched.
        dir: CString,
        /// The inotify watch.
        mark: Mutex<Mark>,
        /// A failure to put the watch back was logged (and none succeeded since).
        lost_warned: AtomicBool,
        wal_name: Vec<u8>,
        /// A connection of its own and the data version it read last.
        version: Mutex<(Connection, i64)>,
    }

    /// The state of a [`WalWatch`]'s inotify watch.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mark {
        /// In place: its watch descriptor.
        On(i32),
        /// Removed by `pause`.
        Paused,
        /// Could not be put back: polling only until the next pause (which
        /// makes the next resume try again).
        Lost,
    }

    /// Makes a file of a descriptor a libc call returned (`-1`: the OS error).
    fn owned(fd: i32) -> io::Result<File> {
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    impl WalWatch {
        pub(super) fn open(db: &Path) -> io::Result<WalWatch> {
            let dir = match db.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let mut wal_name: OsString = db.file_name().unwrap_or_default().to_os_string();
            wal_name.push("-wal");
            // SAFETY: inotify_init1 and eventfd take flags only and return new descriptors.
            let events =
                owned(unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) })?;
            let stop = owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
            let c_dir = CString::new(dir.as_os_str().as_bytes())?;
            let wd = add_watch(&events, &c_dir)?;
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(db, flags).map_err(io::Error::other)?;
            let v = data_version(&conn).map_err(io::Error::other)?;
            Ok(WalWatch {
                events,
                stop,
                dir: c_dir,
                mark: Mutex::new(Mark::On(wd)),
                lost_warned: AtomicBool::new(false),
                wal_name: wal_name.into_vec(),
                version: Mutex::new((conn, v)),
            })
        }

        /// After a write to the WAL: waits until a commit is visible (the data
        /// version moved), at most [`SETTLE_MAX`]; reports a change either way
        /// (a long fsync, or an error reading: the claim waits on the lock).
        fn settle(&self) -> Wake {
            let mut guard = self.version.lock().unwrap_or_else(|p| p.into_inner());
            let (conn, seen) = &mut *guard;
            let deadline = Instant::now() + SETTLE_MAX;
            while Instant::now() < deadline {
                match data_version(conn) {
                    Ok(v) if v != *seen => {
                        *seen = v;
                        // The rest of this commit's writes came while we waited.
                        self.drain();
                        return Wake::Changed;
                    }
                    Ok(_) => std::thread::sleep(SETTLE_STEP),
                    Err(_) => break,
                }
            }
            Wake::Changed
        }

        /// Reads every queued event; true when one was a write to the WAL file
        /// (or the kernel's queue overflowed, so one may have been lost).
        fn drain(&self) -> bool {
            let mut buf = [0u8; 4096];
            let mut hit = false;
            loop {
                match (&self.events).read(&mut buf) {
                    Ok(0) => return hit,
                    Ok(n) => hit |= self.names_wal(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return hit,
                }
            }
        }

        /// Whether a buffer of `struct inotify_event`s names the WAL file.
        fn names_wal(&self, mut buf: &[u8]) -> bool {
            const HEAD: usize = 16;
            let mut hit = false;
            while buf.len() >= HEAD {
                let mask = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
                let len = u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
                let name = buf.get(HEAD..HEAD + len).unwrap_or_default();
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                hit |= mask & libc::IN_Q_OVERFLOW != 0 || name == self.wal_name.as_slice();
                buf = buf.get(HEAD + len..).unwrap_or_default();
            }
            hit
        }
    }

    /// Watches `dir` for writes on the inotify descriptor `events`: the watch
    /// descriptor.
    fn add_watch(events: &File, dir: &CString) -> io::Result<i32> {
        // SAFETY: a valid inotify descriptor and a NUL-terminated path that lives
        // through the call.
        let wd =
            unsafe { libc::inotify_add_watch(events.as_raw_fd(), dir.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(wd)
    }

    /// `PRAGMA data_version`: moves when another connection has committed.
    fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
        conn.prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))
    }

    impl crate::store::CommitWatch for WalWatch {
        fn wait(&self, timeout: Duration) -> Wake {
            let mut fds = [
                libc::pollfd {
                    fd: self.events.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.stop.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: `fds` is a valid array of two pollfd structs for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
            if n <= 0 {
                return Wake::Quiet;
            }
            if fds[1].revents != 0 {
                return Wake::Stopped;
            }
            if self.drain() {
                self.settle()
            } else {
                Wake::Quiet
            }
        }

        fn interrupt(&self) {
            let _ = (&self.stop).write(&1u64.to_ne_bytes());
        }

        fn pause(&self) {
            let mut mark = self.mark.lock().unwrap_or_else(|p| p.into_inner());
            if let Mark::On(wd) = *mark {
                // SAFETY: a valid inotify descriptor and a watch it returned. An
                // error (the directory is gone: the watch went with it) leaves
                // nothing to remove.
                unsafe { libc::inotify_rm_watch(self.events.as_raw_fd(), wd) };
                *mark = Mark::Paused;
            } else if *mark == Mark::Lost {
                // Put back at the next resume: one failure (the user's inotify
                // watches used up for a moment) does not leave the pool
                // polling for the rest of its life.
                *mark = Mark::Paused;
            }
        }

        fn resume(&self) -> bool {
            let mut mark = self.mark.lock().unwrap_or_else(|p| p.into_inner());
            if *mark != Mark::Paused {
                return false;
            }
            *mark = match add_watch(&self.events, &self.dir) {
                Ok(wd) => {
                    self.lost_warned.store(false, Ordering::Relaxed);
                    Mark::On(wd)
                }
                Err(e) => {
                    // The caller claims once more; then the poll finds other
                    // processes' jobs, as on a system without a watch, until
                    // the next pause and resume try again. Warned once until
                    // a resume succeeds.
                    if !self.lost_warned.swap(true, Ordering::Relaxed) {
                        log::warn!(
                            "{}: cannot watch for other processes' commits again ({e}); \
                             polling until the pool is next busy",
                            self.dir.to_string_lossy()
                        );
                    }
                    Mark::Lost
                }
            };
            true
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// A WAL-mode database at `db` with a table `t (x)` to write to.
    fn wal_table(db: &Path) -> Connection {
        let conn = Connection::open(db).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        conn
    }

    #[test]
    fn a_commit_wakes_the_watch_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let conn = wal_table(&db);
        let w = watch(&db).unwrap();
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        assert_eq!(w.wait(Duration::ZERO), Wake::Quiet);
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(w.wait(Duration::from_secs(30)), Wake::Changed);
        assert_eq!(w.wait(Duration::ZERO), Wake::Quiet, "events drained");
    }

    #[test]
    fn a_paused_watch_reports_nothing_and_resuming_says_it_was_paused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let conn = wal_table(&db);
        let w = watch(&db).unwrap();
        assert!(!w.resume(), "a watch that was never paused");
        w.pause();
        w.pause();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(w.wait(Duration::ZERO), Wake::Quiet, "paused");
        assert!(w.resume(), "the caller must claim once more");
        assert!(!w.resume(), "already watching");
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(w.wait(Duration::from_secs(30)), Wake::Changed);
    }

    #[test]
    fn a_watch_that_could_not_be_put_back_is_tried_again_at_the_next_resume() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join("q.db");
        let conn = wal_table(&db);
        let w = watch(&db).unwrap();
        w.pause();
        // The directory is not there to watch (as when inotify refuses).
        let away = top.path().join("away");
        std::fs::rename(&dir, &away).unwrap();
        assert!(w.resume(), "the caller claims once more either way");
        std::fs::rename(&away, &dir).unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(w.wait(Duration::ZERO), Wake::Quiet, "not watching");
        // The next busy spell and its end put it back.
        w.pause();
        assert!(w.resume());
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(w.wait(Duration::from_secs(30)), Wake::Changed);
    }

    #[test]
    fn interrupt_ends_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        drop(Connection::open(&db).unwrap());
        let w: std::sync::Arc<dyn CommitWatch> = watch(&db).unwrap().into();
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait(Duration::from_secs(3600)));
        w.interrupt();
        assert_eq!(t.join().unwrap(), Wake::Stopped);
    }
}
