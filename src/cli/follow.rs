//! `jobq show ID --follow`: a line at every change of the job until it
//! finishes (or Ctrl-C).

use std::time::Duration;

use jobq::{Job, JobId, Queue};

use crate::cli::present::describe;
use crate::cli::table::{emit, printable};
use crate::cli::watch::Stop;
use crate::cli::CliResult;

/// How often the job is read.
const POLL: Duration = Duration::from_millis(200);

/// Prints the job's state now and at every change until it is completed,
/// failed or cancelled, or until Ctrl-C (exit 0 either way). A line is the
/// change's time (`updated_at`) and what the job is doing, after a first line
/// naming the job; with `json`, the
/// whole job as one JSON line at every change of its JSON.
///
/// # Errors
/// Not found when the job is (or gets) deleted; database errors.
pub fn follow(queue: &Queue, id: JobId, json: bool) -> CliResult {
    let stop = Stop::on_signals()?;
    let mut last = None;
    if !json {
        let job = queue.get(id)?;
        emit(&format!(
            "job {} ({}, queue {})",
            job.id, job.job_type, job.queue
        ))?;
    }
    loop {
        let job = queue.get(id)?;
        let line = render(&job, json)?;
        if last.as_ref() != Some(&line.0) {
            emit(&line.1)?;
            last = Some(line.0);
        }
        if job.status.is_final() || stop.wait(POLL) {
            return Ok(());
        }
    }
}

/// What identifies the job's state, and the line to print for it.
fn render(job: &Job, json: bool) -> CliResult<(String, String)> {
    if json {
        let text = serde_json::to_string(job)
            .map_err(|e| crate::cli::CliError::Runtime(format!("writing JSON: {e}")))?;
        return Ok((text.clone(), text));
    }
    let state = printable(&describe(job));
    let line = format!("{}  {}", job.updated_at, state);
    Ok((state, line))
}
