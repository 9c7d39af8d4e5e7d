//! Opening the file: refusing what is not a jobq database before touching it,
//! setting and reading back the pragmas on every connection, building the pool.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::store::sqlite::migrate::APPLICATION_ID;
use crate::store::Durability;

fn synchronous(d: Durability) -> i64 {
    match d {
        Durability::Full => 2,
        Durability::Normal => 1,
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

/// Creates a missing database file with `mode` before SQLite would create it
/// with 0644 under the usual umask (the `-wal` and `-shm` files SQLite makes
/// later copy the database file's mode; the process umask applies, as to any
/// file). An existing file is left as it is, with a warning when other users
/// can read it and `mode` does not say they may. Failures are left to the open
/// that follows to report (a missing directory, a read-only one).
pub(crate) fn create_with_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path);
    match created {
        Ok(_) => log::debug!("{}: created with mode {mode:04o}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let Ok(meta) = std::fs::metadata(path) else {
                return;
            };
            let m = meta.permissions().mode() & 0o777;
            if meta.is_file() && m & 0o004 != 0 && mode & 0o004 == 0 {
                log::warn!(
                    "{}: readable by other users (mode {m:04o}); it holds payloads, results \
                     and token hashes: `chmod 600` it unless that is intended",
                    path.display()
                );
            }
        }
        Err(_) => {}
    }
}

/// What the first 100 bytes and the length of a file say.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// Missing or empty: it will be initialized.
    Empty,
    /// A SQLite header and a length that holds every page it counts.
    Complete,
    /// A SQLite header that counts more pages than the file holds (or a length
    /// that is not whole pages).
    Short,
}

/// Refuses an empty path or `:memory:`: SQLite would make a private database
/// per connection (and jobq would first create a file named `:memory:`),
/// while a queue's connections and processes share one file.
pub(crate) fn check_path(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Err(Error::Open {
            path: path.to_path_buf(),
            reason: "an in-memory or temporary database is not supported: a queue's \
                     connections and processes share one file; give a file path"
                .into(),
        });
    }
    // SQLite says only "unable to open database file" for a missing directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let reason = match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "its directory {} does not exist (jobq creates the file, not its directory)",
                dir.display()
            )),
            Ok(m) if !m.is_dir() => Some(format!("{} is not a directory", dir.display())),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(Error::Open {
                path: path.to_path_buf(),
                reason,
            });
        }
    }
    Ok(())
}

/// Refuses a file that is not empty and not a complete SQLite database, without
/// writing to it. A missing or empty file is fine (it will be initialized).
///
/// A file in use by other connections may look short for a moment: a checkpoint
/// writes page 1 (with the new page count) before the pages it appends, and the
/// file grows while it runs. Every page it writes is also in the WAL until the
/// checkpoint completes, and the WAL is deleted only by the last connection to
/// close, after a complete checkpoint. So a short file beside a WAL holding
/// frames is in use, not truncated (SQLite reads the missing pages from the
/// WAL); a short file with no such WAL is looked at once more (a WAL that just
/// went away left the file whole) and refused only if it is still short.
pub(crate) fn check_file(path: &Path) -> Result<()> {
    for _ in 0..3 {
        if read_header(path)? != Header::Short || wal_has_frames(path) {
            return Ok(());
        }
    }
    Err(Error::NotADatabase {
        path: path.to_path_buf(),
        reason: "the file is truncated".into(),
    })
}

/// True when `PATH-wal` exists and holds more than its 32-byte header.
fn wal_has_frames(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 32)
}

fn read_header(path: &Path) -> Result<Header> {
    let not_db = |reason: &str| Error::NotADatabase {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Header::Empty),
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
        return Ok(Header::Empty);
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
    if page_size < 512 {
        return Err(not_db("the file is not a SQLite database (bad page size)"));
    }
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    let valid_for = header[92..96] == header[24..28];
    if len % page_size != 0 || (valid_for && len < pages * page_size) {
        return Ok(Header::Short);
    }
    Ok(Header::Complete)
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
    // A WAL file in a directory this process cannot write, with no `-shm`
    // beside it, cannot be opened read-only (SQLite needs to create the
    // `-shm`): it fails to open, or "read-only" at the first read. Nobody can
    // be writing it then, so it is read as immutable.
    let (app_id, tables) = match identity(path, ro(Access::ReadOnly)) {
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
            ) =>
        {
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

/// The page size of a file jobq creates (bytes; SQLite's default is 4096).
/// Under `synchronous=NORMAL` a one-job commit costs about one WAL frame per
/// b-tree page it changes, so smaller pages make small commits cheaper
/// (BENCHMARKS.md, round 2 §0: one-call enqueue about 1.4x at 2048); 1024 would
/// push rows over ~230 bytes into overflow pages in the `WITHOUT ROWID` table.
pub(crate) const NEW_FILE_PAGE_SIZE: i64 = 2048;

/// How much WAL a writing connection lets grow before its commit checkpoints
/// (bytes; SQLite's default is 1,000 pages). Under `synchronous=NORMAL` the
/// checkpoint is the only fsync, so this is also what a power cut can lose
/// (README, "Durability and leases": about 4 MB), whatever the page size.
pub(crate) const WAL_CHECKPOINT_BYTES: i64 = 4 << 20;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// Sets and reads back every pragma jobq depends on. A misspelt or refused
/// pragma is an error, not silence.
pub(crate) fn configure(conn: &Connection, s: ConnSettings) -> rusqlite::Result<()> {
    // Every statement jobq runs stays prepared (rusqlite keeps 16 by default;
    // the writer alone runs more than that, and an evicted one is parsed and
    // planned again on its next use).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(s.busy_timeout)?;
    if s.access == Access::ReadWrite {
        // Only a new (empty) file takes it: an existing file keeps its own,
        // which WAL mode cannot change.
        conn.pragma_update(None, "page_size", NEW_FILE_PAGE_SIZE)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(pragma_refused("journal_mode", &mode));
        }
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        set_and_check(
            conn,
            "wal_autocheckpoint",
            WAL_CHECKPOINT_BYTES / page.max(512),
        )?;
    }
    set_and_check(conn, "synchronous", synchronous(s.durability))?;
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
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        // A jobq file (its header says so) whose pages SQLite cannot read:
        // say it is damaged, not only that it is no jobq database.
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::NotADatabase {
            path: path.to_path_buf(),
            reason: format!(
                "the file is damaged: {e}; it was left unchanged (restore a backup, \
                 or see what `sqlite3 FILE .recover` saves)"
            ),
        },
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
