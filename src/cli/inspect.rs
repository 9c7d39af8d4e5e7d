//! `jobq show`, `jobq list`, `jobq stats`: tables for people, `--json` for programs.

use clap::Args;
use jobq::{JobFilter, JobId, JobStatus, Stats, StatusCounts};

use crate::cli::table::{emit, emit_json, job_detail, short, Table};
use crate::cli::{CliResult, Context};

/// `jobq show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The job's id.
    id: JobId,
    /// Print the job as JSON (the same as the HTTP API).
    #[arg(long)]
    json: bool,
}

/// `jobq list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in this status: pending, in_progress, completed, failed, cancelled.
    #[arg(long)]
    status: Option<JobStatus>,
    /// Only jobs of this type.
    #[arg(long = "type", value_name = "TYPE")]
    job_type: Option<String>,
    /// Only jobs of this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only jobs on this entity, as TYPE:ID (or TYPE for every id).
    #[arg(long, value_name = "TYPE:ID")]
    entity: Option<String>,
    /// Only jobs of this owner.
    #[arg(long)]
    owner: Option<String>,
    /// Jobs per page, 1-500.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this cursor (printed at the end of the previous page).
    #[arg(long)]
    cursor: Option<String>,
    /// Print the page as JSON (the same as the HTTP API).
    #[arg(long)]
    json: bool,
}

/// `jobq stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print the stats as JSON (the same as the HTTP API).
    #[arg(long)]
    json: bool,
}

/// Runs `jobq show`.
pub fn show(ctx: &Context, args: ShowArgs) -> CliResult {
    let job = ctx.open_existing()?.get(args.id)?;
    if args.json {
        emit_json(&job)
    } else {
        emit(&job_detail(&job))
    }
}

/// Runs `jobq list`.
pub fn list(ctx: &Context, args: ListArgs) -> CliResult {
    let (entity_type, entity_id) = match args.entity.as_deref().map(|e| e.split_once(':')) {
        Some(Some((t, id))) => (Some(t.to_string()), Some(id.to_string())),
        Some(None) => (args.entity.clone(), None),
        None => (None, None),
    };
    let filter = JobFilter {
        status: args.status,
        job_type: args.job_type,
        queue: args.queue,
        entity_type,
        entity_id,
        owner: args.owner,
    };
    let page = ctx
        .open_existing()?
        .list(&filter, args.limit, args.cursor.as_deref())?;
    if args.json {
        return emit_json(&page);
    }
    let mut t = Table::new(&[
        "ID", "TYPE", "QUEUE", "STATUS", "ATTEMPTS", "PRI", "CREATED", "ERROR",
    ]);
    for j in &page.jobs {
        t.row(vec![
            j.id.to_string(),
            j.job_type.clone(),
            j.queue.clone(),
            j.status.to_string(),
            format!("{}/{}", j.attempts, j.max_attempts),
            j.priority.to_string(),
            j.created_at.to_rfc3339(),
            // A completed job's old error is history (`show` has it), not news.
            match j.status {
                JobStatus::Completed => String::new(),
                _ => short(j.error_message.as_deref().unwrap_or(""), 60),
            },
        ]);
    }
    emit(&t.render())?;
    let mut footer = format!("{} of {} jobs", page.jobs.len(), page.total);
    if let Some(c) = &page.next_cursor {
        footer.push_str(&format!("; next page: --cursor {c}"));
    }
    emit(&footer)
}

/// Runs `jobq stats`.
pub fn stats(ctx: &Context, args: StatsArgs) -> CliResult {
    let stats = ctx.open_existing()?.stats()?;
    if args.json {
        return emit_json(&stats);
    }
    emit(&render_stats(&stats))
}

fn counts_row(name: &str, c: &StatusCounts) -> Vec<String> {
    let n = [c.pending, c.in_progress, c.completed, c.failed, c.cancelled];
    let total: u64 = n.iter().sum();
    let mut row = vec![name.to_string()];
    row.extend(n.iter().map(u64::to_string));
    row.push(total.to_string());
    row
}

fn render_stats(s: &Stats) -> String {
    let headers = [
        "TYPE",
        "PENDING",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TOTAL",
    ];
    let mut t = Table::new(&headers).align_right(&[1, 2, 3, 4, 5, 6]);
    for (job_type, c) in &s.by_type {
        t.row(counts_row(job_type, c));
    }
    t.row(counts_row("(all)", &s.by_status));
    let mut queue_headers = headers;
    queue_headers[0] = "QUEUE";
    let mut q = Table::new(&queue_headers);
    for (name, c) in &s.by_queue {
        q.row(counts_row(name, c));
    }
    let oldest = s
        .oldest_ready_age_ms
        .map_or_else(|| "-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
    let unserved: Vec<String> = s
        .unserved
        .iter()
        .map(|w| format!("{} {} (queue {})", w.ready, w.job_type, w.queue))
        .collect();
    let unserved = if unserved.is_empty() {
        String::new()
    } else {
        format!(
            "\ndue but served by no live worker: {}",
            unserved.join(", ")
        )
    };
    format!(
        "{}\n\n{}\n\npending: {} ready, {} scheduled, {} retrying; oldest ready job waiting {oldest}{unserved}\nat {}",
        t.render(),
        q.render(),
        s.pending.ready,
        s.pending.scheduled,
        s.pending.retrying,
        s.at
    )
}
