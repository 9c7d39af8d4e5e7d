//! Wake-ups across processes: LISTEN/NOTIFY. Enqueues send `NOTIFY jobq_insert`
//! in their own transaction (so only committed jobs wake anyone), at most one
//! per [`DEBOUNCE`] per process: NOTIFY serializes committing transactions
//! server-wide, so a burst of enqueues sends one. Each listening process keeps
//! one connection that LISTENs and wakes its pool on every notification, and
//! once more [`TRAILING`] later, to start jobs whose notification the debounce
//! left out. Polling stays the fallback (and the only way with `notify` off,
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

/// The sending side's debounce.
#[derive(Debug, Default)]
pub(crate) struct Debounce {
    last: Mutex<Option<Instant>>,
}

impl Debounce {
    /// True (and the time noted) when no notification was sent in the last [`DEBOUNCE`].
    pub(crate) fn take(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < DEBOUNCE) {
            return false;
        }
        *last = Some(now);
        true
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
    fn listen(&self, client: &mut Client) {
        let mut trailing: Option<Instant> = None;
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
