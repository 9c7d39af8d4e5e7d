//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs
//! inside the commit that crosses its threshold: that commit then copies the
//! WAL into the database file and waits for two fsyncs (milliseconds) while
//! every other writer of the process waits for it. Measured on a 4-worker
//! no-op drain under `synchronous=NORMAL`: a quarter of a round's time went to
//! those waits (BENCHMARKS.md, "Checkpoints off the commit path").
//!
//! So the writer connection gets a WAL hook instead ([`Limits::action`]):
//! - every [`Limits::soft`] frames written since the last request, it asks a
//!   checkpoint thread (started at the first request) for a `PASSIVE`
//!   checkpoint on its own connection, and the commit returns at once. That
//!   checkpoint syncs the WAL first and the database file after, as the
//!   automatic one does, so under `normal` a power cut still loses only about
//!   the last [`Limits::soft`] frames (README, "Durability and leases").
//! - at [`Limits::hard`] frames the commit checkpoints itself, as SQLite's own
//!   hook does. A WAL is only rewound from its start by a write that finds it
//!   wholly copied; under a steady stream of commits the thread's checkpoints
//!   always end with a few newer frames left, so without this the file would
//!   grow as long as the stream lasts. By then the thread has copied nearly
//!   everything, so this checkpoint is short, and it comes a
//!   `hard / soft`-th as often as the automatic one would.
//!
//! Other processes' connections keep SQLite's automatic checkpoint.

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::{ffi, Connection};

use crate::store::sqlite::open::{self, ConnSettings, WAL_CHECKPOINT_BYTES};

/// How many WAL frames trigger which checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Frames written since the last request that ask the thread for a checkpoint.
    pub soft: i64,
    /// Frames in the WAL at which the commit checkpoints itself.
    pub hard: i64,
}

/// What a commit that leaves `frames` frames in the WAL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing.
    None,
    /// Asks the thread for a checkpoint.
    Background,
    /// Checkpoints in the commit.
    Inline,
}

impl Limits {
    /// The WAL hard limit in multiples of the soft one (WAL_CHECKPOINT_BYTES):
    /// 8, so the WAL file grows to at most about 32 MiB.
    const HARD_PER_SOFT: i64 = 8;

    /// The limits for a file of `page_size`-byte pages: a checkpoint request
    /// every [`WAL_CHECKPOINT_BYTES`] of WAL, a checkpoint in the commit at 8
    /// times that.
    pub(crate) fn for_page_size(page_size: i64) -> Limits {
        let soft = (WAL_CHECKPOINT_BYTES / page_size.max(512)).max(1);
        Limits {
            soft,
            hard: soft * Limits::HARD_PER_SOFT,
        }
    }

    /// What a commit leaving `frames` in the WAL does, when the last request
    /// was made at `requested_at` frames; and the new `requested_at`. A WAL
    /// that holds fewer frames than at the last request was rewound.
    pub(crate) fn action(&self, frames: i64, requested_at: i64) -> (Action, i64) {
        let since = if frames < requested_at {
            0
        } else {
            requested_at
        };
        if frames >= self.hard {
            (Action::Inline, 0)
        } else if frames - since >= self.soft {
            (Action::Background, frames)
        } else {
            (Action::None, since)
        }
    }
}

/// What the hook and the thread share.
struct Signal {
    limits: Limits,
    /// WAL frames at the last request (only the hook writes it; the hook runs
    /// on the writer, one commit at a time).
    requested_at: AtomicI64,
    /// A checkpoint was asked for and the thread is not running yet.
    wanted: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
    /// Checkpoints the thread has run (tests read it).
    background: AtomicU64,
    /// Checkpoints commits have run at the hard limit (tests read it).
    inline: AtomicU64,
}

#[derive(Default)]
struct State {
    requested: bool,
    stop: bool,
    /// A checkpoint of this store runs (the thread's or a commit's): one at a
    /// time, so that a commit's at the hard limit is never refused as busy
    /// because of the thread's.
    running: bool,
}

impl Signal {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self) {
        self.state().requested = true;
        self.wake.notify_all();
        self.wanted.store(true, Ordering::Release);
    }

    /// Waits until no checkpoint of this store runs (a request, if any, is
    /// taken over), marks one as running, runs `f`, and marks it done.
    fn exclusive<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut st = self.state();
        while st.running {
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.running = true;
        st.requested = false;
        drop(st);
        let out = f();
        self.state().running = false;
        self.wake.notify_all();
        out
    }
}

/// The WAL hook (`sqlite3_wal_hook`): runs after each commit of the writer
/// connection with the number of frames in the WAL. Must not unwind: nothing
/// in it panics (the lock is taken poison or not).
unsafe extern "C" fn on_commit(
    arg: *mut c_void,
    db: *mut ffi::sqlite3,
    name: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `arg` is the `Signal` of the `Checkpoints` that installed the
    // hook; it lives until the hook is removed (see `Checkpoints::drop`).
    let signal = unsafe { &*(arg as *const Signal) };
    let before = signal.requested_at.load(Ordering::Relaxed);
    let (action, after) = signal.limits.action(i64::from(frames), before);
    signal.requested_at.store(after, Ordering::Relaxed);
    match action {
        Action::None => {}
        Action::Background => signal.request(),
        Action::Inline => {
            signal.inline.fetch_add(1, Ordering::Relaxed);
            // After the thread's checkpoint, if one runs: most of the WAL is
            // copied by then, and this one is not refused as busy.
            // SAFETY: `db` and `name` are the connection and schema SQLite
            // passed to this hook; SQLite's own hook checkpoints the same way.
            // Its result is left alone, as SQLite's hook does: a checkpoint
            // refused (another process's runs) is tried at the next commit.
            signal.exclusive(|| unsafe { ffi::sqlite3_wal_checkpoint(db, name) });
        }
    }
    ffi::SQLITE_OK
}

/// Background checkpoints of one writer connection (see the module docs).
pub(crate) struct Checkpoints {
    signal: Arc<Signal>,
    path: PathBuf,
    settings: ConnSettings,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The writer connection the hook is installed on, to remove it on drop.
    writer: *mut ffi::sqlite3,
}

// SAFETY: `writer` is only used in `drop`, to remove the hook, while the owner
// (`Store`) still holds the connection; the rest is Send + Sync.
unsafe impl Send for Checkpoints {}
// SAFETY: as above; `writer` is never used through a shared reference.
unsafe impl Sync for Checkpoints {}

impl Checkpoints {
    /// Installs the hook on `writer` (replacing SQLite's automatic
    /// checkpoint). The thread starts at the first request ([`Self::start_if_wanted`]).
    /// `writer` must outlive the returned value.
    pub(crate) fn install(
        writer: &Connection,
        path: &Path,
        settings: ConnSettings,
        limits: Limits,
    ) -> Checkpoints {
        let signal = Arc::new(Signal {
            limits,
            requested_at: AtomicI64::new(0),
            wanted: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            background: AtomicU64::new(0),
            inline: AtomicU64::new(0),
        });
        // SAFETY: the handle is the open writer connection; the hook's argument
        // is the `Signal`, kept alive by `self.signal` until `drop` removes
        // the hook.
        let handle = unsafe { writer.handle() };
        unsafe {
            ffi::sqlite3_wal_hook(handle, Some(on_commit), Arc::as_ptr(&signal) as *mut c_void);
        }
        Checkpoints {
            signal,
            path: path.to_path_buf(),
            settings,
            thread: Mutex::new(None),
            writer: handle,
        }
    }

    /// Starts the checkpoint thread when a commit has asked for it and it is
    /// not running yet (cheap otherwise: one atomic load). Called after each
    /// write, outside the hook.
    pub(crate) fn start_if_wanted(&self) {
        if !self.signal.wanted.load(Ordering::Acquire)
            || !self.signal.wanted.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_some() {
            return;
        }
        let (signal, path, settings) = (self.signal.clone(), self.path.clone(), self.settings);
        match std::thread::Builder::new()
            .name("jobq-checkpoint".into())
            .spawn(move || run(&signal, &path, settings))
        {
            Ok(t) => *thread = Some(t),
            Err(e) => log::warn!(
                "{}: no checkpoint thread ({e}); commits checkpoint at the hard limit",
                self.path.display()
            ),
        }
    }

    /// Checkpoints run by the thread and by commits (in that order).
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.signal.background.load(Ordering::Relaxed),
            self.signal.inline.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        // SAFETY: the writer connection is still open (its owner drops it
        // after this); no hook means SQLite no longer holds the argument.
        unsafe { ffi::sqlite3_wal_hook(self.writer, None, std::ptr::null_mut()) };
        self.signal.state().stop = true;
        self.signal.wake.notify_all();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The checkpoint thread: a `PASSIVE` checkpoint per request, on its own
/// connection (which syncs as the writer does), until stopped.
fn run(signal: &Signal, path: &Path, settings: ConnSettings) {
    let conn = match open::open_conn(path, settings) {
        Ok(c) => c,
        Err(e) => {
            log::warn!(
                "{}: checkpoint thread cannot open the file ({e}); commits checkpoint at the hard limit",
                path.display()
            );
            return;
        }
    };
    loop {
        {
            let mut st = signal.state();
            while (!st.requested || st.running) && !st.stop {
                st = signal.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop {
                return;
            }
        }
        match signal.exclusive(|| passive(&conn)) {
            Ok((busy, log_frames, copied)) => {
                signal.background.fetch_add(1, Ordering::Relaxed);
                log::trace!(
                    "{}: checkpoint: {copied} of {log_frames} frames copied (busy: {busy})",
                    path.display()
                );
            }
            Err(e) => log::warn!("{}: background checkpoint failed: {e}", path.display()),
        }
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: (busy, frames in the WAL, frames copied).
fn passive(conn: &Connection) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_asks_every_soft_frames_and_checkpoints_itself_at_hard() {
        let l = Limits { soft: 10, hard: 80 };
        let table = [
            // (frames, requested_at) -> (action, requested_at)
            ((3, 0), (Action::None, 0)),
            ((10, 0), (Action::Background, 10)),
            ((19, 10), (Action::None, 10)),
            ((20, 10), (Action::Background, 20)),
            // The WAL was rewound: counted from its start.
            ((4, 20), (Action::None, 0)),
            ((12, 20), (Action::Background, 12)),
            ((79, 75), (Action::None, 75)),
            ((80, 75), (Action::Inline, 0)),
            ((500, 0), (Action::Inline, 0)),
        ];
        for ((frames, at), want) in table {
            assert_eq!(
                l.action(frames, at),
                want,
                "frames {frames} requested at {at}"
            );
        }
    }

    /// A writer with the hook at `limits` on a new file; `commits` one-row
    /// commits, the thread started after each as `Store` does when `start`.
    /// Returns the counts and the largest WAL file seen (bytes).
    fn write_through(limits: Limits, commits: i64, start: bool) -> ((u64, u64), u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let settings = ConnSettings {
            durability: crate::store::Durability::Normal,
            busy_timeout: std::time::Duration::from_secs(5),
            access: open::Access::ReadWrite,
        };
        let writer = open::open_conn(&path, settings).unwrap();
        writer
            .execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)")
            .unwrap();
        let c = Checkpoints::install(&writer, &path, settings, limits);
        let wal = dir.path().join("q.db-wal");
        let mut largest = 0;
        for n in 0..commits {
            writer
                .execute(
                    "INSERT INTO t VALUES (?1, ?2)",
                    rusqlite::params![n, "x".repeat(300)],
                )
                .unwrap();
            if start {
                c.start_if_wanted();
            }
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, commits);
        let ok: String = writer
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let counts = c.counts();
        drop(c);
        (counts, largest)
    }

    /// The WAL file of `frames` frames of 2,048-byte pages (header 32, frame header 24).
    fn wal_bytes(frames: i64) -> u64 {
        u64::try_from(32 + frames * (2048 + 24)).unwrap()
    }

    #[test]
    fn the_wal_stays_under_the_hard_limit_with_the_thread_or_without() {
        let limits = Limits {
            soft: 16,
            hard: 128,
        };
        for start in [true, false] {
            let ((background, inline), largest) = write_through(limits, 3000, start);
            assert_eq!(background > 0, start, "thread checkpoints: {background}");
            assert!(inline > 0, "the WAL was never rewound (thread: {start})");
            // A commit's checkpoint waits for the thread's: the WAL ends at
            // the hard limit plus one commit's frames (a few here).
            assert!(
                largest <= wal_bytes(limits.hard + 8),
                "WAL grew to {largest} bytes (thread: {start})"
            );
        }
    }

    #[test]
    fn the_limits_follow_the_page_size() {
        assert_eq!(
            Limits::for_page_size(2048),
            Limits {
                soft: 2048,
                hard: 16384
            }
        );
        assert_eq!(Limits::for_page_size(4096).soft, 1024);
    }
}
