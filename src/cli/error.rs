//! The binary's errors and their exit codes, in one place.

use std::fmt;

use crate::config::ConfigError;

/// What an input file that is not UTF-8 text is told.
pub const NOT_UTF8: &str = "not valid UTF-8 text (JSON must be UTF-8)";

/// A command's failure: one line for stderr and an exit code.
#[derive(Debug)]
pub enum CliError {
    /// The request was wrong: a bad value, an undeclared job type, a bad config
    /// file, a bad JSONL line. Exit code 2 (as clap's own usage errors).
    Usage(String),
    /// No job has the id. Exit code 3.
    NotFound(String),
    /// The job's status does not allow the operation. Exit code 4.
    Conflict(String),
    /// Anything else: I/O, the database, a signal forcing exit. Exit code 1.
    Runtime(String),
}

impl CliError {
    /// The process exit code: 1 runtime, 2 usage, 3 not found, 4 conflict.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Runtime(_) => 1,
            CliError::Usage(_) => 2,
            CliError::NotFound(_) => 3,
            CliError::Conflict(_) => 4,
        }
    }

    /// The same kind of error (so the same exit code) with another message.
    pub fn with_message(self, message: String) -> CliError {
        match self {
            CliError::Usage(_) => CliError::Usage(message),
            CliError::NotFound(_) => CliError::NotFound(message),
            CliError::Conflict(_) => CliError::Conflict(message),
            CliError::Runtime(_) => CliError::Runtime(message),
        }
    }

    /// A runtime error about `what` (e.g. reading a file).
    pub fn io(what: impl fmt::Display, e: std::io::Error) -> CliError {
        CliError::Runtime(format!("{what}: {e}"))
    }

    /// A file named by option `flag` that could not be opened or read: a
    /// usage error (exit 2) when it is missing, not a file, not readable by
    /// this user, or not UTF-8 text (the input is wrong), else a runtime
    /// error (exit 1).
    pub fn input(flag: &str, path: impl fmt::Display, e: std::io::Error) -> CliError {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::InvalidData => CliError::Usage(format!("{flag} {path}: {NOT_UTF8}")),
            K::NotFound | K::PermissionDenied | K::IsADirectory => {
                CliError::Usage(format!("{flag} {path}: {e}"))
            }
            _ => CliError::Runtime(format!("{flag} {path}: {e}")),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::NotFound(m) | CliError::Conflict(m) => f.write_str(m),
            CliError::Runtime(m) => f.write_str(m),
        }
    }
}

impl From<jobq::Error> for CliError {
    fn from(e: jobq::Error) -> CliError {
        let text = e.to_string();
        match e {
            jobq::Error::NotFound { .. } | jobq::Error::NoSuchIdPrefix { .. } => {
                CliError::NotFound(text)
            }
            jobq::Error::Conflict { .. }
            | jobq::Error::UniqueConflict { .. }
            | jobq::Error::WorkerAlive { .. }
            | jobq::Error::LiveLeases { .. }
            | jobq::Error::TargetNotEmpty { .. } => CliError::Conflict(text),
            jobq::Error::Invalid { .. }
            | jobq::Error::AmbiguousId { .. }
            | jobq::Error::UnknownQueue { .. }
            | jobq::Error::UnknownSchedule { .. }
            | jobq::Error::MalformedJson { .. }
            | jobq::Error::PayloadTooLarge { .. } => CliError::Usage(text),
            _ => CliError::Runtime(text),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        CliError::Usage(e.to_string())
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;
    use jobq::{JobId, JobStatus};

    #[test]
    fn library_errors_map_to_exit_codes() {
        let id = JobId::new();
        let table = [
            (jobq::Error::NotFound { id }, 3),
            (
                jobq::Error::Conflict {
                    id,
                    status: JobStatus::Completed,
                    operation: "retry",
                },
                4,
            ),
            (
                jobq::Error::Invalid {
                    field: "job_type",
                    reason: "bad".into(),
                },
                2,
            ),
            (jobq::Error::Busy { operation: "claim" }, 1),
            (
                jobq::Error::NoSuchIdPrefix {
                    prefix: "0193a4f2".into(),
                },
                3,
            ),
            (
                jobq::Error::AmbiguousId {
                    prefix: "0193a4f2".into(),
                    matches: vec![id],
                    more: false,
                },
                2,
            ),
        ];
        for (e, code) in table {
            assert_eq!(CliError::from(e).exit_code(), code);
        }
    }
}
