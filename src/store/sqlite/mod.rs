//! The SQLite backend: one file in WAL mode, one writer connection per process
//! (behind a mutex) and a pool of readers. One module per group of statements.

mod admin;
mod backend;
mod bulk;
mod checkpoint;
mod claim;
mod db;
mod enqueue;
mod find;
mod finish;
mod group;
pub(crate) mod id;
mod lease;
pub(crate) mod migrate;
mod open;
mod overview;
mod parts;
mod queues;
mod read;
#[cfg(test)]
mod read_plans;
mod reserve;
mod row;
mod schedules;
mod settle;
mod tokens;
mod transfer;
mod watch;
mod workers;

use std::path::Path;

use crate::error::Result;
use crate::store::Durability;

pub(crate) use db::Store;
pub(crate) use open::{Access, ConnSettings};

/// Jobs on one SQLite file.
#[derive(Debug)]
pub(crate) struct Sqlite {
    store: Store,
    /// Claim rounds so far: where the next round starts among the queues.
    rounds: std::sync::atomic::AtomicUsize,
    /// Concurrent inserts share commits.
    group: group::InsertGroup,
}

/// How the file is opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqliteOptions {
    pub durability: Durability,
    pub busy_timeout: std::time::Duration,
    pub readers: u32,
    pub file_mode: u32,
}

impl Sqlite {
    /// Validates the file, creates or upgrades the schema, opens the connections.
    pub(crate) fn open(path: &Path, o: SqliteOptions) -> Result<Sqlite> {
        let settings = ConnSettings {
            durability: o.durability,
            busy_timeout: o.busy_timeout,
            access: Access::ReadWrite,
        };
        let store = Store::open(path, settings, o.readers, o.file_mode)?;
        Ok(Sqlite {
            store,
            rounds: std::sync::atomic::AtomicUsize::new(0),
            group: group::InsertGroup::default(),
        })
    }
}
