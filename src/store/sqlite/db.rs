//! The open SQLite file: [`Store`] serializes writers inside the process (one
//! writer connection behind a mutex: SQLite's busy handler is unfair) and reads
//! from a pool.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
use crate::store::sqlite::checkpoint::{Checkpoints, Limits};
use crate::store::sqlite::migrate;
use crate::store::sqlite::open::{self, Access, ConnSettings};
use crate::store::Durability;

/// True for errors that mean the file, its directory or its filesystem is read-only.
fn cannot_write(e: &Error) -> bool {
    match e {
        Error::ReadOnly { .. } => true,
        Error::Open { reason, .. } => {
            reason.contains("unable to open") || reason.contains("readonly")
        }
        Error::Database { source, .. } => matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
        ),
        _ => false,
    }
}

/// The open database: a writer connection and a pool of readers.
pub(crate) struct Store {
    path: PathBuf,
    /// Background checkpoints of the writer (read-write stores). Declared
    /// before `writer`: it is dropped first, while the connection its hook is
    /// installed on is still open.
    checkpoints: Option<Checkpoints>,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Validates the file, creates or upgrades the schema, and opens the connections.
    /// A file that is not a jobq database is refused before anything is written to it.
    ///
    /// A file that cannot be written (read-only file, directory or filesystem) is
    /// opened read-only when its schema is current: reads work, writes fail with
    /// [`Error::ReadOnly`].
    pub(crate) fn open(
        path: &Path,
        settings: ConnSettings,
        readers: u32,
        file_mode: u32,
    ) -> Result<Store> {
        open::check_path(path)?;
        open::check_file(path)?;
        open::check_identity(path)?;
        open::create_with_mode(path, file_mode);
        match Store::open_as(path, settings, readers) {
            Err(e) if path.exists() && cannot_write(&e) => {
                log::warn!("{}: cannot write ({e}); opening read-only", path.display());
                let ro = ConnSettings {
                    access: Access::ReadOnly,
                    ..settings
                };
                Store::open_as(path, ro, readers).or_else(|_| {
                    let imm = ConnSettings {
                        access: Access::Immutable,
                        ..settings
                    };
                    Store::open_as(path, imm, readers)
                })
            }
            other => other,
        }
    }

    fn open_as(path: &Path, settings: ConnSettings, readers: u32) -> Result<Store> {
        let mut writer = open::open_conn(path, settings)?;
        migrate::migrate(&mut writer)?;
        let readers = open::build_pool(path, settings, readers)?;
        // Under `full` every commit already waits for an fsync, and a WAL
        // growing past its old size made each of those fsyncs write metadata
        // too: measured slower (BENCHMARKS.md). So only `normal` gets them.
        let checkpoints = match (settings.access, settings.durability) {
            (Access::ReadWrite, Durability::Normal) => {
                let page: i64 = writer
                    .query_row("PRAGMA page_size", [], |r| r.get(0))
                    .map_err(Error::db("page size"))?;
                let limits = Limits::for_page_size(page);
                Some(Checkpoints::install(&writer, path, settings, limits))
            }
            _ => None,
        };
        Ok(Store {
            path: path.to_path_buf(),
            checkpoints,
            writer: Mutex::new(writer),
            readers,
        })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits; rolls back on error.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db(operation))?;
        let out = f(&tx)?;
        tx.commit().map_err(Error::db(operation))?;
        drop(conn);
        self.after_write();
        Ok(out)
    }

    /// Starts the checkpoint thread when the last commit asked for it.
    fn after_write(&self) {
        if let Some(c) = &self.checkpoints {
            c.start_if_wanted();
        }
    }

    /// Runs one autocommit statement (or any work that needs no transaction) on the writer.
    pub(crate) fn write_autocommit<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let out = f(&self.writer());
        self.after_write();
        out
    }

    /// Runs `f` on a pooled reader inside one read transaction (one snapshot).
    pub(crate) fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.readers.get().map_err(|e| Error::Open {
            path: self.path.clone(),
            reason: format!("no database connection for {operation}: {e}"),
        })?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(Error::db(operation))?;
        let out = f(&tx)?;
        tx.finish().map_err(Error::db(operation))?;
        Ok(out)
    }
}
