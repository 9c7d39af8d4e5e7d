//! The library's error type.

use std::path::PathBuf;

use crate::job::{JobId, JobStatus};

/// Everything a [`crate::Queue`] call can fail with. Messages carry context (the
/// operation, the job id, the path) and never payloads or secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No job has this id.
    #[error("job {id} not found")]
    NotFound {
        /// The id asked for.
        id: JobId,
    },
    /// No job's id starts with this prefix (see [`crate::Queue::resolve_id`]).
    #[error("no job id starts with {prefix}")]
    NoSuchIdPrefix {
        /// The prefix, as the start of the hyphenated id text.
        prefix: String,
    },
    /// More than one job's id starts with this prefix (see
    /// [`crate::Queue::resolve_id`]).
    #[error("job id prefix {prefix} is ambiguous: it matches {}{}", list_ids(matches), if *more { " and more" } else { "" })]
    AmbiguousId {
        /// The prefix, as the start of the hyphenated id text.
        prefix: String,
        /// The newest matching ids, newest first (the job list's order), at
        /// most [`crate::MAX_LISTED_MATCHES`].
        matches: Vec<JobId>,
        /// Whether more ids match than are listed.
        more: bool,
    },
    /// The job's status does not allow the operation (e.g. retrying a completed job).
    #[error("cannot {operation} job {id}: it is {status}")]
    Conflict {
        /// The job.
        id: JobId,
        /// Its status when the operation was refused.
        status: JobStatus,
        /// What was refused: `cancel`, `retry`, ...
        operation: &'static str,
    },
    /// A manual retry would make a second live job with the unique key another
    /// job holds. Nothing was changed.
    #[error("cannot retry job {id}: job {holder} holds its unique key")]
    UniqueConflict {
        /// The job asked to be retried.
        id: JobId,
        /// The job holding the key.
        holder: JobId,
    },
    /// A worker pool's heartbeat is fresh: its jobs are not handed back unless
    /// forced.
    #[error("worker {worker} is alive (its heartbeat is fresh): stop it first, or force")]
    WorkerAlive {
        /// The worker pool's id.
        worker: String,
    },
    /// The caller's lease on the job is gone: it expired and the job was recovered,
    /// or another attempt holds it. Nothing was changed.
    #[error("lease lost on job {id} (attempt token {lease_token}): {operation} refused")]
    LeaseLost {
        /// The job.
        id: JobId,
        /// The fencing token the caller presented.
        lease_token: i64,
        /// What was refused: `complete`, `fail`, `heartbeat`, ...
        operation: &'static str,
    },
    /// A field of a new job or a request is not valid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, e.g. `job_type`.
        field: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// Text that should be JSON (a request body, a JSONL line) is not.
    #[error("malformed JSON: {reason}")]
    MalformedJson {
        /// The parser's message (line and column).
        reason: String,
    },
    /// No queue of this name is known (declared, stored, or with pending or running jobs).
    #[error(
        "unknown queue {name:?} (a queue is known while it has a pending or running job, once it has settings stored, or when it is declared: [queues.{}] in jobq.toml, Catalog::declare_queue in Rust)",
        toml_key(name)
    )]
    UnknownQueue {
        /// The name asked for.
        name: String,
    },
    /// No schedule of this name is declared.
    #[error("unknown schedule {name:?}")]
    UnknownSchedule {
        /// The name asked for.
        name: String,
    },
    /// The payload's serialized size is over the limit.
    #[error("payload too large: {size} bytes, the limit is {limit} bytes")]
    PayloadTooLarge {
        /// The serialized size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The file is not a jobq database: text, truncated, corrupt, or another
    /// program's SQLite database. The file was left unchanged.
    #[error("{path}: not a jobq database ({reason})")]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The database was locked by another connection for longer than the busy timeout.
    #[error("database busy: {operation} waited longer than the busy timeout")]
    Busy {
        /// The operation that waited.
        operation: &'static str,
    },
    /// The disk (or the filesystem holding the database) is full. Nothing was written.
    #[error("disk full: {operation} could not write to the database")]
    DiskFull {
        /// The operation that could not write.
        operation: &'static str,
    },
    /// The database file or its directory is read-only.
    #[error("database is read-only: {operation} needs to write")]
    ReadOnly {
        /// The operation that needed to write.
        operation: &'static str,
    },
    /// Any other SQLite error.
    #[error("database error during {operation}: {source}")]
    Database {
        /// The operation, e.g. `claim` or `migrate to version 2`.
        operation: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database server cannot be reached (down, restarting, or the
    /// connection was lost). Nothing was written, or the outcome of the last
    /// commit is unknown when the connection broke during it. Transient.
    #[error("database unavailable during {operation}: {reason}")]
    Unavailable {
        /// The operation that needed the database.
        operation: &'static str,
        /// What the client saw (never the URL or its password).
        reason: String,
    },
    /// A move ([`crate::Queue::migrate_into`]) was refused: the source has jobs
    /// whose lease is live or worker pools whose heartbeat is fresh. Nothing
    /// was written.
    #[error(
        "the source has {jobs} running job(s) with a live lease and {workers} live worker pool(s): \
         stop the workers first (or pass --release-leases to hand their jobs back to pending)"
    )]
    LiveLeases {
        /// Jobs in progress whose lease has not expired.
        jobs: u64,
        /// Worker pools whose heartbeat is fresh.
        workers: u64,
    },
    /// A move was refused: the target already holds jobs, tokens, queue
    /// settings or schedule state. Nothing was written.
    #[error(
        "the target is not empty ({jobs} job(s), {others} token, queue or schedule row(s)): \
         migrate only into a new database"
    )]
    TargetNotEmpty {
        /// Jobs in the target.
        jobs: u64,
        /// Token, queue-settings and schedule rows in the target.
        others: u64,
    },
    /// A move stopped at a job row with values jobq cannot read back as stored
    /// (see [`crate::Job::unreadable`]): copying it would change it. The rows
    /// before it were copied.
    #[error("job {id} has values that do not fit their columns ({problem}): fix or delete it, empty the target and run again")]
    UnreadableRow {
        /// The job.
        id: JobId,
        /// The first problem, e.g. `payload is not valid JSON (...)`.
        problem: String,
    },
    /// Any other PostgreSQL error.
    #[error("database error during {operation}: {}", pg_text(.source))]
    Postgres {
        /// The operation, e.g. `claim`.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The system refused to start a thread (too many threads, or out of
    /// memory); what was started before it was stopped again.
    #[error("cannot start a thread for {what}: {source}")]
    Thread {
        /// What the thread was for, e.g. `worker pool`.
        what: &'static str,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// No pooled connection could be had, or opening the file failed.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The file (for PostgreSQL, the URL with its password redacted).
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A PostgreSQL client error as text: the server's message and SQLSTATE for
/// an error the server sent (the client's own text says only "db error"),
/// else the client's text and its causes. Never the server's DETAIL, which
/// may quote values (a payload, a key).
pub(crate) fn pg_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// `name` as a TOML table key: bare when it may be (letters, digits, `_`,
/// `-`), else quoted (a queue name may hold `.` and `:`).
fn toml_key(name: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.is_empty() && name.chars().all(bare) {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

fn list_ids(ids: &[JobId]) -> String {
    let text: Vec<String> = ids.iter().map(JobId::to_string).collect();
    text.join(", ")
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a SQLite error for `operation`, turning busy, full, read-only and
    /// corrupt-file codes into their own variants.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| {
            use rusqlite::ErrorCode as C;
            match source.sqlite_error_code() {
                Some(C::DatabaseBusy | C::DatabaseLocked) => Error::Busy { operation },
                Some(C::DiskFull) => Error::DiskFull { operation },
                Some(C::ReadOnly) => Error::ReadOnly { operation },
                _ => Error::Database { operation, source },
            }
        }
    }

    /// True for errors that pass with time: busy, disk full, database unavailable.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Busy { .. } | Error::DiskFull { .. } | Error::Unavailable { .. }
        )
    }

    /// True for a database error that waiting does not mend and that is not a
    /// refused value: a corrupt or read-only file, a refused permission (what
    /// ends a drain; see [`crate::WorkerPool::drain_error`]).
    pub(crate) fn is_lasting(&self) -> bool {
        let database = matches!(
            self,
            Error::Database { .. }
                | Error::Postgres { .. }
                | Error::ReadOnly { .. }
                | Error::NotADatabase { .. }
                | Error::Open { .. }
        );
        database && !self.refuses_value()
    }

    /// True when the database refused a value written, not the write itself:
    /// a constraint or trigger, a value too big, or one its type does not
    /// take (SQLite `CONSTRAINT`, `TOOBIG`, `MISMATCH`; PostgreSQL SQLSTATE
    /// classes 22 data exception, 23 integrity constraint violation and 54
    /// program limit exceeded). Writing the same value again fails again,
    /// whatever the wait; writing other values may succeed.
    pub(crate) fn refuses_value(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            Error::Database { source, .. } => {
                matches!(source, rusqlite::Error::ToSqlConversionFailure(_))
                    || matches!(
                        source.sqlite_error_code(),
                        Some(C::ConstraintViolation | C::TooBig | C::TypeMismatch)
                    )
            }
            Error::Postgres { source, .. } => source
                .code()
                .is_some_and(|c| matches!(c.code().get(..2), Some("22" | "23" | "54"))),
            _ => false,
        }
    }
}

impl From<crate::retry::EmptyBackoff> for Error {
    fn from(e: crate::retry::EmptyBackoff) -> Error {
        Error::Invalid {
            field: "backoff",
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::ffi::c_int) -> Error {
        let e = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        Error::db("settle")(e)
    }

    #[test]
    fn only_a_refused_value_is_told_apart_from_a_failed_write() {
        use rusqlite::ffi;
        for code in [
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_TOOBIG,
            ffi::SQLITE_MISMATCH,
        ] {
            assert!(sqlite(code).refuses_value(), "{code}");
        }
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_FULL,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_IOERR,
        ] {
            let e = sqlite(code);
            assert!(!e.refuses_value(), "{code}: {e}");
        }
    }
}
