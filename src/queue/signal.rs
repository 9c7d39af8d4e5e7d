//! [`Signal`]: a counter threads can wait on, bumped by enqueues and by workers.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A wake-up counter. [`Signal::notify`] bumps it; [`Signal::wait`] blocks until it
/// moves past a value seen earlier, so no wake-up between the look and the wait
/// is lost.
#[derive(Debug, Default)]
pub struct Signal {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Signal {
    /// A new signal at generation 0.
    pub fn new() -> Signal {
        Signal::default()
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bumps the generation and wakes every waiter.
    pub fn notify(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g = g.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Blocks until the generation differs from `seen` or `timeout` passes;
    /// returns the generation then.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |g| *g == seen)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_notify_before_the_wait_is_not_lost() {
        let s = Signal::new();
        let seen = s.generation();
        s.notify();
        assert_eq!(s.wait(seen, Duration::from_secs(60)), seen + 1);
    }

    #[test]
    fn wait_wakes_on_notify_from_another_thread() {
        let s = Arc::new(Signal::new());
        let seen = s.generation();
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.notify());
        assert_ne!(s.wait(seen, Duration::from_secs(60)), seen);
        t.join().unwrap();
    }
}
