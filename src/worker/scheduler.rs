//! Firing the catalogue's recurring schedules from a worker pool: every pool
//! may fire them; each fire time becomes one job however many pools run (the
//! fire is one transaction with a unique key per fire time). A pool remembers
//! each schedule's next fire time, so it writes only when one is due.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::queue::Queue;
use crate::worker::ERROR_REPEAT;

/// A pool's view of when each schedule is next due (`None`: look now).
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    next: BTreeMap<String, Option<Timestamp>>,
    /// When a failing fire was last logged at error level (an error that
    /// goes on, a full disk, is logged once a minute, not every tick).
    last_error: Option<Instant>,
}

impl Scheduler {
    /// Fires every enabled schedule whose next fire time has come. Errors are
    /// logged; the schedule is tried again at the next tick.
    ///
    /// # Errors
    /// The first lasting database error met (see `Error::is_lasting`: a
    /// corrupt or read-only file), for a drain to end on; the other
    /// schedules were still tried.
    pub fn tick(&mut self, queue: &Queue) -> Result<()> {
        let now = queue.now();
        let mut lasting = None;
        for s in queue.catalog().schedules().filter(|s| s.enabled) {
            let due = self.next.get(s.name()).copied().flatten();
            if due.is_some_and(|t| t > now) {
                continue;
            }
            match queue.fire_schedule(s.name()) {
                Ok(recorded) => {
                    let next = recorded.and_then(|t| s.next_after(t));
                    self.next.insert(s.name().to_string(), next.or(Some(now)));
                }
                Err(e) => {
                    if self.last_error.is_none_or(|t| t.elapsed() >= ERROR_REPEAT) {
                        self.last_error = Some(Instant::now());
                        log::error!(
                            "schedule {}: {e}; trying again every tick (logged once a minute)",
                            s.name()
                        );
                    } else {
                        log::debug!("schedule {}: {e}; trying again", s.name());
                    }
                    if e.is_lasting() && lasting.is_none() {
                        lasting = Some(e);
                    }
                }
            }
        }
        lasting.map_or(Ok(()), Err)
    }
}
