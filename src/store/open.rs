//! Opening the file: refusing what is not a jobq database before touching it,
//! setting and reading back the pragmas on every connection, building the pool.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::store::migrate::APPLICATION_ID;

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged write survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash; the last commits may be lost
    /// on power loss. Several times faster per commit.
    Normal,
}

impl Durability {
    fn pragma_value(self) -> i64 {
        match self {
            Durability::Full => 2,
            Durability::Normal => 1,
        }
    }
}

/// How connections open the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read and write (the normal case).
    ReadWrite,
    /// `mode=ro`: the file is not writable but its directory is (WAL files can be made).
    ReadOnly,
    /// `immutable=1`: nothing around the file is writable; nobody can be writing it.
    Immutable,
}

/// The settings every connection gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnSettings {
    pub durability: Durability,
    pub busy_timeout: Duration,
    pub access: Access,
}

impl ConnSettings {
    /// The name SQLite opens and the flags, for this access.
    fn target(&self, path: &Path) -> (String, OpenFlags) {
        let uri = |q: &str| format!("file:{}?{q}", uri_escape(&path.to_string_lossy()));
        let ro = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match self.access {
            Access::ReadWrite => (path.to_string_lossy().into_owned(), OpenFlags::default()),
            Access::ReadOnly => (uri("mode=ro"), ro),
            Access::Immutable => (uri("immutable=1"), ro),
        }
    }
}

fn uri_escape(path: &str) -> String {
    path.replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Refuses a file that is not empty and not a complete SQLite database, without
/// writing to it. A missing or empty file is fine (it will be initialized).
pub(crate) fn check_file(path: &Path) -> Result<()> {
    let not_db = |reason: &str| Error::NotADatabase {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(open_err(path, &e.to_string())),
    };
    let meta = file
        .metadata()
        .map_err(|e| open_err(path, &e.to_string()))?;
    if meta.is_dir() {
        return Err(open_err(path, "it is a directory, not a database file"));
    }
    let len = meta.len();
    if len == 0 {
        return Ok(());
    }
    let mut header = [0u8; 100];
    if len < 100 || file.read_exact(&mut header).is_err() {
        return Err(not_db("the file is too short to be a SQLite database"));
    }
    if &header[..16] != SQLITE_MAGIC {
        return Err(not_db("the file is not a SQLite database"));
    }
    let page_size = match u32::from(u16::from_be_bytes([header[16], header[17]])) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    // The header's page count is checked only without a WAL: a checkpoint writes
    // page 1 (counting pages the WAL holds) before it grows the file, so a file
    // opened meanwhile, or left so by a power cut, is short until SQLite recovers
    // it from the WAL.
    let counted = header[92..96] == header[24..28] && wal_len(path) == 0;
    if page_size < 512 || len % page_size != 0 || (counted && len < pages * page_size) {
        return Err(not_db("the file is truncated"));
    }
    Ok(())
}

/// The size of the database's `-wal` file, 0 when there is none.
fn wal_len(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Checks, on a read-only connection, that a SQLite file is jobq's (or empty).
pub(crate) fn check_identity(path: &Path) -> Result<()> {
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(());
    }
    let ro = |access| ConnSettings {
        durability: Durability::Full,
        busy_timeout: Duration::from_secs(5),
        access,
    };
    let (app_id, tables) = match identity(path, ro(Access::ReadOnly)) {
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
            identity(path, ro(Access::Immutable))
        }
        other => other,
    }
    .map_err(|e| classify_open(path, e))?;
    if app_id == i64::from(APPLICATION_ID) || (app_id == 0 && tables == 0) {
        return Ok(());
    }
    Err(Error::NotADatabase {
        path: path.to_path_buf(),
        reason: "it is another program's SQLite database (unknown application_id and tables)"
            .into(),
    })
}

/// The file's `application_id` and number of schema objects.
fn identity(path: &Path, s: ConnSettings) -> rusqlite::Result<(i64, i64)> {
    let (name, flags) = s.target(path);
    let conn = Connection::open_with_flags(name, flags)?;
    let app_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let tables = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok((app_id, tables))
}

fn open_err(path: &Path, reason: &str) -> Error {
    Error::Open {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Sets and reads back every pragma jobq depends on. A misspelt or refused
/// pragma is an error, not silence.
pub(crate) fn configure(conn: &Connection, s: ConnSettings) -> rusqlite::Result<()> {
    conn.busy_timeout(s.busy_timeout)?;
    if s.access == Access::ReadWrite {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(pragma_refused("journal_mode", &mode));
        }
    }
    set_and_check(conn, "synchronous", s.durability.pragma_value())?;
    set_and_check(conn, "foreign_keys", 1)?;
    let timeout = i64::try_from(s.busy_timeout.as_millis()).unwrap_or(i64::MAX);
    let got: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    if got != timeout {
        return Err(pragma_refused("busy_timeout", &got.to_string()));
    }
    Ok(())
}

fn set_and_check(conn: &Connection, name: &str, value: i64) -> rusqlite::Result<()> {
    conn.pragma_update(None, name, value)?;
    let got: i64 = conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?;
    if got != value {
        return Err(pragma_refused(name, &got.to_string()));
    }
    Ok(())
}

fn pragma_refused(name: &str, got: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidParameterName(format!(
        "PRAGMA {name} was not applied (reads back {got})"
    ))
}

/// Opens a read-write connection with the settings applied.
pub(crate) fn open_conn(path: &Path, s: ConnSettings) -> Result<Connection> {
    let (name, flags) = s.target(path);
    let conn = Connection::open_with_flags(name, flags).map_err(|e| classify_open(path, e))?;
    configure(&conn, s).map_err(|e| classify_open(path, e))?;
    Ok(conn)
}

fn classify_open(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::NotADatabase {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
        Some(rusqlite::ErrorCode::CannotOpen) => open_err(path, &e.to_string()),
        _ => Error::db("configure connection")(e),
    }
}

/// Builds the pool of read connections.
pub(crate) fn build_pool(
    path: &Path,
    s: ConnSettings,
    size: u32,
) -> Result<r2d2::Pool<SqliteConnectionManager>> {
    let (name, flags) = s.target(path);
    let manager = SqliteConnectionManager::file(name)
        .with_flags(flags)
        .with_init(move |c| configure(c, s));
    r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(s.busy_timeout.max(Duration::from_secs(5)))
        .build(manager)
        .map_err(|e| open_err(path, &e.to_string()))
}
