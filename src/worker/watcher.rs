//! The watcher thread: wakes an idle coordinator when another process may have
//! committed (a job enqueued by `jobq enqueue`, a retry, a resumed queue), so
//! that its jobs start in milliseconds instead of at the next poll.
//!
//! It watches only while the coordinator is idle; while the pool is busy the
//! coordinator claims at every round anyway, and the kernel keeps the events.
//! While every worker is busy the watch itself is paused, and the coordinator
//! claims once more after resuming it (see `coordinator.rs`).
//! The hand-off is a counter and a flag, so that no event is lost between the
//! coordinator's last claim and its wait: the coordinator marks itself idle and
//! then compares the counter with the one it read before its claim; the watcher
//! bumps the counter and then wakes the coordinator if it is marked idle. One of
//! the two always sees the other.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::queue::{CommitWatch, Wake};
use crate::worker::shared::Shared;

/// How long one wait on the watch lasts before the thread looks at the pool's
/// state again (it is interrupted at once when the pool stops).
const TICK: Duration = Duration::from_secs(60);

/// Runs until the pool's coordinator has exited.
pub(crate) fn watcher_loop(shared: Arc<Shared>, watch: Arc<dyn CommitWatch>) {
    while shared.wait_until_idle() {
        match watch.wait(TICK) {
            Wake::Stopped => return,
            Wake::Quiet => {}
            Wake::Changed => {
                shared.external.fetch_add(1, Ordering::SeqCst);
                if shared.is_idle() {
                    shared.signal.notify();
                }
            }
        }
    }
}

impl Shared {
    /// Marks the coordinator idle (or busy) and wakes the watcher.
    pub(crate) fn set_idle(&self, idle: bool) {
        let mut flag = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        flag.0 = idle;
        self.idle_cv.notify_all();
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Blocks while the coordinator is busy; false once the pool is done.
    fn wait_until_idle(&self) -> bool {
        let flag = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let flag = self
            .idle_cv
            .wait_while(flag, |f| !f.0 && !f.1)
            .unwrap_or_else(|p| p.into_inner());
        !flag.1
    }

    /// Ends the watcher thread (the coordinator has exited).
    pub(crate) fn stop_watching(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.idle_cv.notify_all();
        if let Some(w) = &self.watch {
            w.interrupt();
        }
    }
}
