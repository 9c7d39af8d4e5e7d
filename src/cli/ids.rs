//! Job ids on the command line: a whole id or a unique prefix of one (as git),
//! and short ids in tables.

use jobq::{Job, JobId, Queue};

use crate::cli::table::{printable, Table};
use crate::cli::{CliError, CliResult};

/// The help of every argument naming a job.
pub const ID_HELP: &str =
    "The job's id, or the start of it: at least 8 hex digits that no other job's id starts with";

/// The job named by `text` (a whole id, or a unique prefix).
///
/// # Errors
/// Usage (exit 2) for text that is not an id or a prefix, and for an ambiguous
/// prefix, listing the jobs it matches; not found (exit 3) when no id starts
/// with it; runtime errors of the database.
pub fn resolve(queue: &Queue, text: &str) -> CliResult<JobId> {
    match queue.resolve_id(text) {
        Err(jobq::Error::AmbiguousId {
            prefix,
            matches,
            more,
        }) => Err(ambiguous(queue, &prefix, &matches, more)),
        other => Ok(other?),
    }
}

/// The usage error of an ambiguous prefix: one line per matching job with its
/// type, status and creation time, as git lists the candidates; newest first,
/// as `jobq list` (the order of `matches`).
fn ambiguous(queue: &Queue, prefix: &str, matches: &[JobId], more: bool) -> CliError {
    let mut t = Table::new(&["  ID", "TYPE", "STATUS", "CREATED"]);
    for id in matches {
        let row = match queue.get(*id) {
            Ok(j) => vec![j.job_type, j.status.to_string(), j.created_at.to_rfc3339()],
            Err(_) => vec!["-".into(), "(gone)".into(), "-".into()],
        };
        t.row([vec![format!("  {id}")], row].concat());
    }
    let tail = match more {
        true => format!("\n  ... and more: give more of the id than {prefix}"),
        false => String::new(),
    };
    CliError::Usage(format!(
        "job id prefix {} is ambiguous; it matches:\n{}{tail}",
        printable(prefix),
        t.render()
    ))
}

/// The id column of `jobs`: the shortest unique prefixes, or whole ids when `full`.
///
/// # Errors
/// Runtime errors of the database.
pub fn shown_ids(queue: &Queue, jobs: &[Job], full: bool) -> CliResult<Vec<String>> {
    jobs.iter()
        .map(|j| match full {
            true => Ok(j.id.to_string()),
            false => Ok(queue.short_id(j.id)?),
        })
        .collect()
}
