//! Wake-ups across processes: LISTEN/NOTIFY. Enqueues send `NOTIFY jobq_insert`
//! in their own transaction (so only committed jobs wake anyone), about one
//! per [`DEBOUNCE`] per open database (see [`Debounce`]): NOTIFY serializes
//! committing transactions server-wide, so a burst of enqueues sends few. Each
//! listening process keeps one connection that LISTENs and wakes its pool on
//! every notification, and once more [`TRAILING`] later, to start jobs whose
//! notification the debounce left out. Polling stays the fallback (and the only way with `notify` off,
//! e.g. behind PgBouncer in transaction mode, where LISTEN does not work).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

/// The shortest time between two notifications sent by one process.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(20);
/// When a listener wakes its pool a second time after a notification.
const TRAILING: Duration = Duration::from_millis(60);
/// How often the listener looks whether its queue is gone.
const TICK: Duration = Duration::from_millis(250);
/// How long the listener waits between attempts to reconnect.
const RECONNECT: Duration = Duration::from_secs(1);

/// The sending side's debounce. A change that makes jobs due sends a
/// notification in its own transaction unless an earlier one, sent and
/// committed, started less than [`DEBOUNCE`] before this change did. Listeners
/// wake once more [`TRAILING`] after each notification they receive, which
/// starts the jobs of the changes left without one; a change left without one
/// that commits too late for that second wake-up sends its own after its
/// commit ([`Debounce::late`]). Only committed notifications count: a change
/// that fails, or makes nothing due, leaves the next one to notify.
#[derive(Debug, Default)]
pub(crate) struct Debounce {
    /// When the latest committed notification's change started.
    last: Mutex<Option<Instant>>,
}

/// What one change does about notifying, decided before it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    started: Instant,
    /// The start of the committed notification that covers this change.
    covered_by: Option<Instant>,
}

impl Plan {
    /// A notification sent on its own, starting now.
    pub(crate) fn alone() -> Plan {
        Plan {
            started: Instant::now(),
            covered_by: None,
        }
    }

    /// True: the change sends a notification in its transaction.
    pub(crate) fn notifies(&self) -> bool {
        self.covered_by.is_none()
    }
}

impl Debounce {
    /// The plan of a change starting now.
    pub(crate) fn plan(&self) -> Plan {
        self.plan_at(Instant::now())
    }

    fn plan_at(&self, now: Instant) -> Plan {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        Plan {
            started: now,
            covered_by: last.filter(|t| now.saturating_duration_since(*t) < DEBOUNCE),
        }
    }

    /// Notes that the change of `plan` committed with its notification.
    pub(crate) fn sent(&self, plan: &Plan) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t < plan.started) {
            *last = Some(plan.started);
        }
    }

    /// True when a change of `plan` that sent no notification committed (at
    /// the latest) at `now`, too late for the listeners' second wake-up after
    /// the notification that covered it: that notification committed after
    /// it started, listeners received it after that and wake again
    /// [`TRAILING`] later, so a commit before `started + TRAILING` is seen.
    pub(crate) fn late(plan: &Plan, now: Instant) -> bool {
        plan.covered_by
            .is_some_and(|t| now.saturating_duration_since(t) >= TRAILING)
    }
}

/// What a listener thread needs.
pub(crate) struct Listener {
    pub config: postgres::Config,
    pub shown: String,
    pub wake: Arc<dyn Fn() + Send + Sync>,
    pub stop: Arc<AtomicBool>,
}

impl Listener {
    /// Starts the listening thread; it ends soon after `stop` is set.
    pub(crate) fn spawn(self) {
        let spawned = std::thread::Builder::new()
            .name("jobq-listen".into())
            .spawn(move || self.run());
        if let Err(e) = spawned {
            log::warn!("cannot start the LISTEN thread ({e}); polling only");
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn run(self) {
        let mut down = false;
        while !self.stopped() {
            match self.connect() {
                Ok(mut client) => {
                    if down {
                        log::info!("{}: LISTEN connection back", self.shown);
                        down = false;
                    }
                    (self.wake)(); // jobs enqueued while not listening
                    self.listen(&mut client);
                }
                Err(e) => {
                    if !down {
                        log::warn!(
                            "{}: LISTEN connection lost ({e}); polling until it is back",
                            self.shown
                        );
                        down = true;
                    }
                    self.pause(RECONNECT);
                }
            }
        }
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute("LISTEN jobq_insert")?;
        Ok(client)
    }

    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() && Instant::now() < end {
            std::thread::sleep(TICK.min(end.saturating_duration_since(Instant::now())));
        }
    }

    /// Wakes on notifications until the connection breaks or the queue is gone.
    /// The caller woke the pool once as it started listening; a change the
    /// debounce left to a notification sent before that (which this
    /// connection never got) and committed since is started by a second
    /// wake-up [`TRAILING`] later, as after any notification.
    fn listen(&self, client: &mut Client) {
        let mut trailing: Option<Instant> = Some(Instant::now() + TRAILING);
        while !self.stopped() {
            let wait = trailing.map_or(TICK, |t| t.saturating_duration_since(Instant::now()));
            let got = client.notifications().timeout_iter(wait.min(TICK)).next();
            match got {
                Ok(Some(_)) => {
                    while let Ok(Some(_)) = client.notifications().iter().next() {}
                    (self.wake)();
                    trailing = Some(Instant::now() + TRAILING);
                }
                Ok(None) if client.is_closed() => return,
                Ok(None) => {}
                Err(_) => return,
            }
            if trailing.is_some_and(|t| Instant::now() >= t) {
                (self.wake)();
                trailing = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_change_notifies_unless_a_committed_notification_started_within_the_debounce() {
        let d = Debounce::default();
        let t0 = Instant::now() + ms(1_000);
        let first = d.plan_at(t0);
        assert!(first.notifies());
        // Not yet committed: a second change notifies too.
        assert!(d.plan_at(t0 + ms(1)).notifies());
        d.sent(&first);
        let covered = d.plan_at(t0 + ms(5));
        assert!(!covered.notifies());
        assert!(d.plan_at(t0 + DEBOUNCE).notifies());
        // An older plan committing later does not move the mark back.
        d.sent(&Plan {
            started: t0 - ms(100),
            covered_by: None,
        });
        assert!(!d.plan_at(t0 + ms(5)).notifies());
    }

    #[test]
    fn a_change_that_failed_or_made_nothing_due_leaves_the_next_to_notify() {
        let d = Debounce::default();
        let t0 = Instant::now() + ms(1_000);
        let failed = d.plan_at(t0);
        assert!(failed.notifies());
        // `sent` is never called for it.
        assert!(d.plan_at(t0 + ms(1)).notifies());
    }

    #[test]
    fn a_covered_change_committing_after_the_trailing_wake_is_late() {
        let d = Debounce::default();
        let t0 = Instant::now() + ms(1_000);
        d.sent(&d.plan_at(t0));
        let covered = d.plan_at(t0 + ms(10));
        assert!(!Debounce::late(&covered, t0 + ms(30)));
        assert!(!Debounce::late(&covered, t0 + TRAILING - ms(1)));
        assert!(Debounce::late(&covered, t0 + TRAILING));
        // A change that notified itself is never late.
        let own = d.plan_at(t0 + DEBOUNCE + ms(1));
        assert!(!Debounce::late(&own, t0 + ms(10_000)));
    }
}
