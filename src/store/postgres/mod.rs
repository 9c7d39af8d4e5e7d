//! The PostgreSQL backend: the same tables and semantics as SQLite, for many
//! processes on many machines. A pool of clients (each caching its prepared
//! statements), claims with `FOR UPDATE SKIP LOCKED`, and LISTEN/NOTIFY
//! wake-ups with polling as the fallback. One module per group of statements.

mod admin;
mod backend;
mod bulk;
mod claim;
pub(crate) mod conn;
mod find;
mod finish;
pub(crate) mod migrate;
mod notify;
mod overview;
mod queues;
mod read;
mod reserve;
mod row;
mod schedules;
mod settle;
mod tokens;
mod transfer;
mod workers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use crate::error::{Error, Result};

pub(crate) use overview::STATEMENTS as OVERVIEW_STATEMENTS;

use conn::{Conn, Pool};
use notify::Debounce;

/// How a PostgreSQL queue connects.
#[derive(Debug, Clone)]
pub(crate) struct PgOptions {
    /// Clients in the pool (at least 2).
    pub pool: u32,
    /// How long a call waits for a client (and a connect for the server).
    pub wait: Duration,
    /// LISTEN/NOTIFY wake-ups; false: polling only (PgBouncer in transaction mode).
    pub notify: bool,
    /// False: `synchronous_commit = off` (a server crash may lose the last commits).
    pub synchronous_commit: bool,
}

/// Jobs in one PostgreSQL database (schema `jobq`).
pub(crate) struct Postgres {
    pool: Pool,
    config: postgres::Config,
    notify: bool,
    debounce: Debounce,
    listening: Once,
    stop: Arc<AtomicBool>,
    /// Claim rounds so far: where the next round starts among the queues.
    rounds: AtomicUsize,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.pool.shown)
            .finish()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Postgres {
    /// Connects to `url` (shown as `shown`), creates or upgrades the schema.
    ///
    /// # Errors
    /// [`Error::Open`] for a bad URL or an unreachable server; migration errors.
    pub(crate) fn open(url: &str, shown: String, o: &PgOptions) -> Result<Postgres> {
        let config = Postgres::config(url, &shown, o)?;
        let pool = Pool::new(config.clone(), o.pool, o.wait, shown.clone())?;
        let mut c = pool.get("open").map_err(|e| Error::Open {
            path: PathBuf::from(&shown),
            reason: e.to_string(),
        })?;
        migrate::migrate(&mut c)?;
        drop(c);
        Ok(Postgres {
            pool,
            config,
            notify: o.notify,
            debounce: Debounce::default(),
            listening: Once::new(),
            stop: Arc::new(AtomicBool::new(false)),
            rounds: AtomicUsize::new(0),
        })
    }

    /// Brings the database at `url` to schema `version` (tests build old versions).
    pub(crate) fn migrate_to(url: &str, version: i32) -> Result<()> {
        let shown = crate::location::redact_url(url);
        let o = PgOptions {
            pool: 2,
            wait: Duration::from_secs(5),
            notify: false,
            synchronous_commit: true,
        };
        let config = Postgres::config(url, &shown, &o)?;
        let pool = Pool::new(config, 2, o.wait, shown)?;
        migrate::migrate_to(&mut *pool.get("migrate")?, version)
    }

    fn config(url: &str, shown: &str, o: &PgOptions) -> Result<postgres::Config> {
        let mut config: postgres::Config = url.parse().map_err(|e| Error::Open {
            path: PathBuf::from(shown),
            reason: format!("not a valid PostgreSQL URL ({e})"),
        })?;
        config.connect_timeout(o.wait).application_name("jobq");
        if !o.synchronous_commit {
            config.options("-c synchronous_commit=off");
        }
        Ok(config)
    }

    /// Runs a change that may make jobs due (an enqueue, a retry, a resume).
    /// `change(notify)` writes it in one transaction, with a notification when
    /// `notify` is true and it made jobs due, and returns its result and
    /// whether it made jobs due. The debounce ([`Debounce`]) decides `notify`,
    /// and whether a notification must follow the commit; that one failing is
    /// logged, not returned (the change is committed).
    ///
    /// # Errors
    /// The change's own.
    fn notifying<T>(
        &self,
        step: &'static str,
        change: impl FnOnce(bool) -> Result<(T, bool)>,
    ) -> Result<T> {
        if !self.notify {
            return change(false).map(|(out, _)| out);
        }
        let plan = self.debounce.plan();
        let result = change(plan.notifies());
        let due = matches!(result, Ok((_, true)));
        if Debounce::finish(&plan, due, std::time::Instant::now()) {
            let sent = self
                .pool
                .auto(step, |c| c.query(step, admin::NOTIFY, &[]).map(drop));
            if let Err(e) = sent {
                log::warn!(
                    "{}: a notification after {step} failed ({e}); \
                     listening pools find its jobs at their next poll",
                    self.pool.shown
                );
            }
        }
        result.map(|(out, _)| out)
    }

    /// [`Postgres::notifying`] for a change written by `change` in one
    /// transaction (`step`): `change` returns its result and whether it made
    /// jobs due, and the notification, when the debounce asks for one, is
    /// sent at the end of the same transaction.
    ///
    /// # Errors
    /// The change's own.
    fn notifying_tx<T>(
        &self,
        step: &'static str,
        change: impl FnOnce(&mut Conn) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.notifying(step, |notify| {
            self.pool.tx(step, |c| {
                let (out, due) = change(c)?;
                if notify && due {
                    c.query(step, admin::NOTIFY, &[])?;
                }
                Ok((out, due))
            })
        })
    }
}
