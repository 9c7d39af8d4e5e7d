//! Wake-ups across processes: LISTEN/NOTIFY. Enqueues send `NOTIFY jobq_insert`
//! in their own transaction (so only committed jobs wake anyone), about one
//! per [`DEBOUNCE`] per open database (see [`Debounce`]): NOTIFY serializes
//! committing transactions server-wide, so a burst of enqueues sends few. Each
//! listening process keeps one connection that LISTENs and wakes its pool on
//! every notification, and once more [`TRAILING`] later, to start jobs whose
//! notification the debounce left out. Polling stays the fallback (and the
//! only way with `notify` off, e.g. behind PgBouncer in transaction mode,
//! where LISTEN does not work).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

/// The shortest time between two notifications sent by one process.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(20);
/// When a listener wakes its pool a second time after a notification.
const TRAILING: Duration = Duration::from_millis(60);
/// A covered change that commits this long after its coverer started sends
/// its own notification: half of [`TRAILING`], leaving the other half as a
/// margin for the clocks of the processes (a claim compares a job's due time,
/// set by the enqueuing process's clock, with its own).
const LATE: Duration = Duration::from_millis(30);
/// How often the listener looks whether its queue is gone.
const TICK: Duration = Duration::from_millis(250);
/// How long the listener waits between attempts to reconnect.
const RECONNECT: Duration = Duration::from_secs(1);

/// The sending side's debounce. A change that makes jobs due sends a
/// notification in its own transaction unless another change of this handle
/// that does started less than [`DEBOUNCE`] before it (its coverer, whether
/// committed yet or not). Listeners wake once more [`TRAILING`] after each
/// notification they receive, which starts the jobs of the changes it
/// covered. A covered change sends its own notification after its commit
/// when that comes too late for the second wake-up, or when its coverer sent
/// none (it failed, or made nothing due); a coverer that sent none sends one
/// after the fact for the changes that relied on it ([`Debounce::finish`]).
#[derive(Debug, Default)]
pub(crate) struct Debounce {
    /// The latest change that set out to notify.
    last: Mutex<Option<Arc<Ticket>>>,
}

/// A change that set out to notify, as the changes it covers see it. Until
/// it ends it counts as notifying: a covered change that commits first is
/// seen by the notification that commits after it.
#[derive(Debug)]
pub(crate) struct Ticket {
    started: Instant,
    /// It ended with no notification (it failed, or made nothing due).
    sent_none: AtomicBool,
    /// A covered change committed jobs relying on this notification.
    relied_on: AtomicBool,
}

/// What one change does about notifying, decided before it runs.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Notifies in its transaction.
    Notify(Arc<Ticket>),
    /// Relies on this ticket's notification.
    Covered(Arc<Ticket>),
}

impl Plan {
    /// True: the change sends a notification in its transaction.
    pub(crate) fn notifies(&self) -> bool {
        matches!(self, Plan::Notify(_))
    }
}

impl Debounce {
    /// The plan of a change starting now.
    pub(crate) fn plan(&self) -> Plan {
        self.plan_at(Instant::now())
    }

    fn plan_at(&self, now: Instant) -> Plan {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = last.as_ref().filter(|t| {
            now.saturating_duration_since(t.started) < DEBOUNCE
                && !t.sent_none.load(Ordering::SeqCst)
        }) {
            return Plan::Covered(t.clone());
        }
        let own = Arc::new(Ticket {
            started: now,
            sent_none: AtomicBool::new(false),
            relied_on: AtomicBool::new(false),
        });
        *last = Some(own.clone());
        Plan::Notify(own)
    }

    /// Records how the change of `plan` ended (`due`: it committed and made
    /// jobs due) at `now`. Returns true when the caller must now send a
    /// notification of its own, after the commit:
    /// - a notifying change that sent none (it failed or made nothing due)
    ///   while covered changes relied on it;
    /// - a covered change that made jobs due, when its coverer sent none, or
    ///   when its commit came [`LATE`] or more after its coverer started:
    ///   the coverer's notification commits after it starts, listeners get
    ///   it after that and wake again [`TRAILING`] later, so an earlier
    ///   commit is seen, with [`TRAILING`] - [`LATE`] to spare for clocks (a
    ///   coverer still uncommitted notifies after this commit, or sends none
    ///   and then sends for it).
    ///
    /// Both sides write their flag before reading the other's (`SeqCst`), so
    /// when a coverer sends none at least one of the two sends.
    pub(crate) fn finish(plan: &Plan, due: bool, now: Instant) -> bool {
        match plan {
            Plan::Notify(_) if due => false,
            Plan::Notify(own) => {
                own.sent_none.store(true, Ordering::SeqCst);
                own.relied_on.load(Ordering::SeqCst)
            }
            Plan::Covered(_) if !due => false,
            Plan::Covered(t) => {
                t.relied_on.store(true, Ordering::SeqCst);
                t.sent_none.load(Ordering::SeqCst)
                    || now.saturating_duration_since(t.started) >= LATE
            }
        }
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
    fn a_change_within_the_debounce_of_a_notifying_one_is_covered_committed_or_not() {
        let d = Debounce::default();
        let t0 = Instant::now() + ms(1_000);
        let first = d.plan_at(t0);
        assert!(first.notifies());
        // Not committed yet: still covers.
        let second = d.plan_at(t0 + ms(1));
        assert!(!second.notifies());
        assert!(!Debounce::finish(&first, true, t0 + ms(2)));
        assert!(!d.plan_at(t0 + ms(5)).notifies());
        assert!(d.plan_at(t0 + DEBOUNCE).notifies());
    }

    #[test]
    fn a_coverer_that_sent_none_covers_no_one_and_sends_for_those_that_relied_on_it() {
        let d = Debounce::default();
        let t0 = Instant::now() + ms(1_000);
        let coverer = d.plan_at(t0);
        let early = d.plan_at(t0 + ms(1));
        // The covered change commits first, the coverer still running: it
        // relies on the coverer's notification.
        assert!(!Debounce::finish(&early, true, t0 + ms(2)));
        // The coverer fails: it sends one for the change that relied on it.
        assert!(Debounce::finish(&coverer, false, t0 + ms(3)));
        // A later change is not covered by it.
        let later = d.plan_at(t0 + ms(4));
        assert!(later.notifies());
        // A covered change that committed after the coverer sent none sends its own.
        let d = Debounce::default();
        let coverer = d.plan_at(t0);
        let covered = d.plan_at(t0 + ms(1));
        assert!(
            !Debounce::finish(&coverer, false, t0 + ms(2)),
            "none relied on it"
        );
        assert!(Debounce::finish(&covered, true, t0 + ms(3)));
        // A covered change that made nothing due sends nothing.
        let d = Debounce::default();
        let coverer = d.plan_at(t0);
        let covered = d.plan_at(t0 + ms(1));
        assert!(!Debounce::finish(&covered, false, t0 + ms(2)));
        assert!(!Debounce::finish(&coverer, false, t0 + ms(3)));
    }

    #[test]
    fn a_covered_change_committing_after_the_trailing_wake_sends_its_own() {
        let d = Debounce::default();
        let t0 = Instant::now() + ms(1_000);
        let coverer = d.plan_at(t0);
        assert!(!Debounce::finish(&coverer, true, t0 + ms(2)));
        let covered = || d.plan_at(t0 + ms(10));
        assert!(!Debounce::finish(&covered(), true, t0 + ms(20)));
        assert!(!Debounce::finish(&covered(), true, t0 + LATE - ms(1)));
        assert!(Debounce::finish(&covered(), true, t0 + LATE));
        // The same while the coverer has not finished.
        let d = Debounce::default();
        let _running = d.plan_at(t0);
        let covered = d.plan_at(t0 + ms(10));
        assert!(Debounce::finish(&covered, true, t0 + LATE));
        // A change that notified itself never sends again.
        let own = Debounce::default().plan_at(t0);
        assert!(!Debounce::finish(&own, true, t0 + ms(10_000)));
    }
}
