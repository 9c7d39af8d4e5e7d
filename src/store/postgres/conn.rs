//! Connections: a pool of clients, each with its own cache of prepared
//! statements (the `postgres` crate has none, and preparing costs a round trip),
//! transactions, and the mapping of client errors to [`Error`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use crate::error::{Error, Result};

/// Parameters of one statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One client and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    stmts: HashMap<&'static str, Statement>,
    /// Statements answered since the pool handed the client out.
    answered: u32,
    /// The server ended this session (shutdown, restart) before a statement ran.
    terminated: bool,
}

impl Conn {
    fn note_err<T>(
        &mut self,
        r: std::result::Result<T, postgres::Error>,
    ) -> std::result::Result<T, postgres::Error> {
        if let Err(e) = &r {
            let code = e.code();
            self.terminated |= code.is_some_and(ends_session);
        }
        r
    }

    fn note<T>(
        &mut self,
        r: std::result::Result<T, postgres::Error>,
    ) -> std::result::Result<T, postgres::Error> {
        if r.is_ok() {
            self.answered += 1;
        }
        self.note_err(r)
    }

    fn stmt(&mut self, sql: &'static str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    pub(crate) fn query(
        &mut self,
        op: &'static str,
        sql: &'static str,
        p: Params<'_>,
    ) -> Result<Vec<Row>> {
        let s = self.stmt(sql);
        let s = self.note_err(s).map_err(pg(op))?;
        let r = self.client.query(&s, p);
        self.note(r).map_err(pg(op))
    }

    /// Runs `sql` and returns its one row, or `None`.
    pub(crate) fn opt(
        &mut self,
        op: &'static str,
        sql: &'static str,
        p: Params<'_>,
    ) -> Result<Option<Row>> {
        let s = self.stmt(sql);
        let s = self.note_err(s).map_err(pg(op))?;
        let r = self.client.query_opt(&s, p);
        self.note(r).map_err(pg(op))
    }

    /// Runs `sql` and returns how many rows it changed.
    pub(crate) fn execute(
        &mut self,
        op: &'static str,
        sql: &'static str,
        p: Params<'_>,
    ) -> Result<u64> {
        let s = self.stmt(sql);
        let s = self.note_err(s).map_err(pg(op))?;
        let r = self.client.execute(&s, p);
        self.note(r).map_err(pg(op))
    }

    /// Runs `sql` put together at run time (a filter's shape), unprepared so
    /// the server plans it for the values bound, and returns its rows.
    pub(crate) fn query_text(
        &mut self,
        op: &'static str,
        sql: &str,
        p: Params<'_>,
    ) -> Result<Vec<Row>> {
        let r = self.client.query(sql, p);
        self.note(r).map_err(pg(op))
    }

    /// Runs statements without parameters (migrations, BEGIN, COMMIT).
    pub(crate) fn batch(&mut self, op: &'static str, sql: &str) -> Result<()> {
        let r = self.client.batch_execute(sql);
        self.note(r).map_err(pg(op))
    }
}

/// How every transaction begins. The claim's limits and pause checks and the
/// schedules' firings read rows after taking a lock, and rely on each statement
/// seeing what committed before it started: READ COMMITTED, whatever the
/// server's, database's or role's `default_transaction_isolation` says (under
/// REPEATABLE READ a statement after the lock would read the snapshot taken
/// before it, and a queue's concurrency limit could be exceeded).
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Opens clients for the pool.
pub(crate) struct Manager {
    pub config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            stmts: HashMap::new(),
            answered: 0,
            terminated: false,
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// The pool, and what the URL is called in messages (password redacted).
pub(crate) struct Pool {
    pool: r2d2::Pool<Manager>,
    pub shown: String,
}

impl Pool {
    /// Builds a pool of up to `size` clients; connects one now, so a wrong URL
    /// or a server that is down fails the open.
    pub(crate) fn new(
        config: postgres::Config,
        size: u32,
        wait: Duration,
        shown: String,
    ) -> Result<Pool> {
        // One connection first, outside the pool: a server that answers with
        // an error (no such database, authentication failed) or a URL that
        // can never connect fails at once and says why, where the pool would
        // retry for `wait` and keep only "db error". A server that does not
        // answer is left to the pool's wait (it may be restarting).
        if let Err(e) = config.connect(NoTls) {
            let answered = e.as_db_error().is_some() || e.to_string().starts_with("invalid");
            if answered {
                return Err(Error::Open {
                    path: PathBuf::from(&shown),
                    reason: crate::error::pg_text(&e),
                });
            }
        }
        let pool = r2d2::Pool::builder()
            .max_size(size.max(2))
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(wait)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(Manager { config })
            .map_err(|e| Error::Open {
                path: PathBuf::from(&shown),
                reason: e.to_string(),
            })?;
        Ok(Pool { pool, shown })
    }

    /// A client from the pool.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when none can be had within the wait (server down).
    pub(crate) fn get(&self, op: &'static str) -> Result<r2d2::PooledConnection<Manager>> {
        let mut conn = self.pool.get().map_err(|e| Error::Unavailable {
            operation: op,
            reason: e.to_string(),
        })?;
        conn.answered = 0;
        Ok(conn)
    }

    /// A client, and once more a fresh one when the first turned out to be a
    /// session the server had ended before `f` ran anything (after a restart):
    /// nothing was done, so running `f` again is safe.
    fn with_fresh_retry<T>(
        &self,
        op: &'static str,
        f: impl Fn(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.get(op)?;
        if conn.client.is_closed() {
            drop(conn);
            conn = self.get(op)?;
        }
        // Every idle client may be such a session: try up to one more than the pool holds.
        for _ in 0..self.pool.max_size() {
            match f(&mut conn) {
                Err(_) if conn.terminated && conn.answered == 0 => {
                    drop(conn);
                    conn = self.get(op)?;
                }
                other => return other,
            }
        }
        f(&mut conn)
    }

    /// Runs `f` in one transaction and commits; rolls back on error. A client
    /// found closed at `BEGIN` (the server restarted since its last use) is
    /// dropped and the transaction begun once more on a fresh one: nothing had
    /// been sent yet.
    pub(crate) fn tx<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        self.tx_begun(op, BEGIN, f)
    }

    /// As [`Pool::tx`], beginning with `begin`: [`BEGIN`] and then statements
    /// sent with it in one round trip (a lock the transaction takes first).
    pub(crate) fn tx_begun<T>(
        &self,
        op: &'static str,
        begin: &str,
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.get(op)?;
        let mut tries = self.pool.max_size();
        while let Err(e) = conn.batch(op, begin) {
            if !is_unavailable(&e) || tries == 0 {
                // `begin` may have opened the transaction before a later
                // statement of it failed (a lock wait cut by `lock_timeout`):
                // the client must not go back to the pool inside it.
                let _ = conn.batch(op, "ROLLBACK");
                return Err(e);
            }
            tries -= 1;
            drop(conn);
            conn = self.get(op)?;
        }
        match f(&mut conn) {
            Ok(v) => {
                conn.batch(op, "COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = conn.batch(op, "ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs `f` on a client outside any explicit transaction (one autocommit
    /// statement); a client whose session the server had already ended is
    /// swapped for a fresh one (see `with_fresh_retry`).
    pub(crate) fn auto<T>(
        &self,
        op: &'static str,
        f: impl Fn(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        self.with_fresh_retry(op, f)
    }
}

fn is_unavailable(e: &Error) -> bool {
    matches!(e, Error::Unavailable { .. })
}

/// Wraps a client error for `op`: a lost connection or a server shutting down
/// is [`Error::Unavailable`], a full disk [`Error::DiskFull`], a read-only
/// server [`Error::ReadOnly`], lock and serialization failures [`Error::Busy`].
pub(crate) fn pg(op: &'static str) -> impl FnOnce(postgres::Error) -> Error {
    move |source| {
        let code = source.code().cloned();
        let unavailable = |reason: String| Error::Unavailable {
            operation: op,
            reason,
        };
        let described = crate::error::pg_text(&source);
        match code {
            None if source.is_closed() => unavailable("the connection was closed".into()),
            None if lost_connection(&source) => unavailable(described),
            Some(c)
                if ends_session(&c)
                    || c == SqlState::CANNOT_CONNECT_NOW
                    || c.code().starts_with("08")
                    || c.code().starts_with("53") && c != SqlState::DISK_FULL =>
            {
                unavailable(described)
            }
            Some(c) if c == SqlState::DISK_FULL => Error::DiskFull { operation: op },
            Some(c) if c == SqlState::READ_ONLY_SQL_TRANSACTION => {
                Error::ReadOnly { operation: op }
            }
            Some(c)
                if c == SqlState::T_R_SERIALIZATION_FAILURE
                    || c == SqlState::T_R_DEADLOCK_DETECTED
                    || c == SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN
                    || c == SqlState::LOCK_NOT_AVAILABLE
                    || c == SqlState::QUERY_CANCELED =>
            {
                Error::Busy { operation: op }
            }
            _ => Error::Postgres {
                operation: op,
                source,
            },
        }
    }
}

/// The server ended the client's session: shut down, or timed out an idle
/// session (`idle_session_timeout`, `idle_in_transaction_session_timeout`).
/// The call is tried again on a fresh client when nothing had run yet.
fn ends_session(c: &SqlState) -> bool {
    [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::IDLE_SESSION_TIMEOUT,
        SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
    ]
    .contains(c)
}

/// An I/O error under the client's error, or a timeout: the server is gone.
fn lost_connection(e: &postgres::Error) -> bool {
    use std::error::Error as _;
    e.source().is_some_and(|s| s.is::<std::io::Error>()) || e.to_string().starts_with("timeout")
}
