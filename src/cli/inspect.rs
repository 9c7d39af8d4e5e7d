//! `jobq show`, `jobq list`, `jobq stats`: tables for people, `--json` for programs.

use clap::Args;
use jobq::{JobFilter, JobPage, JobStatus, Queue, Stats, StatusCounts};

use crate::cli::follow::follow;
use crate::cli::ids::{resolve, shown_ids, ID_HELP};
use crate::cli::present::{current_error, due_or_progress};
use crate::cli::table::{emit, emit_json, job_detail, short, Table};
use crate::cli::watch::watch;
use crate::cli::{CliResult, Context};

/// `jobq show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(help = ID_HELP, value_name = "ID")]
    id: String,
    /// Print the job as JSON (the same as the HTTP API).
    #[arg(long)]
    json: bool,
    /// Print a line at every change of its status and progress until it is
    /// completed, failed or cancelled (with --json: the job at every change).
    #[arg(long, short)]
    follow: bool,
}

/// `jobq list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in this status: pending, in_progress, completed, failed, cancelled.
    #[arg(long)]
    status: Option<JobStatus>,
    /// Only jobs of this type.
    #[arg(long = "type", value_name = "TYPE", value_parser = crate::cli::work::parse_job_type)]
    job_type: Option<String>,
    /// Only jobs of this queue.
    #[arg(long, value_parser = crate::cli::work::parse_queue)]
    queue: Option<String>,
    /// Only jobs on this entity, as TYPE:ID (or TYPE for every id).
    #[arg(long, value_name = "TYPE:ID", value_parser = parse_entity_filter)]
    entity: Option<(String, Option<String>)>,
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
    /// Show whole job ids [default: the shortest unique prefix, at least 8 hex digits].
    #[arg(long)]
    full_ids: bool,
    /// Redraw every second while stdout is a terminal, until Ctrl-C.
    #[arg(long, short, conflicts_with = "json")]
    watch: bool,
}

/// `jobq stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print the stats as JSON (the same as the HTTP API).
    #[arg(long)]
    json: bool,
    /// Redraw every second while stdout is a terminal, until Ctrl-C.
    #[arg(long, short, conflicts_with = "json")]
    watch: bool,
}

/// Runs `jobq show`.
pub fn show(ctx: &Context, args: ShowArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    let id = resolve(&queue, &args.id)?;
    if args.follow {
        return follow(&queue, id, args.json);
    }
    let job = queue.get(id)?;
    if args.json {
        emit_json(&job)
    } else {
        emit(&job_detail(&job))
    }
}

/// Runs `jobq list`.
pub fn list(ctx: &Context, args: ListArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    let filter = list_filter(&args);
    let page = || queue.list(&filter, args.limit, args.cursor.as_deref());
    if args.json {
        return emit_json(&page()?);
    }
    let render = || render_list(&queue, &page()?, args.full_ids);
    match args.watch {
        true => watch("jobq list", render),
        false => emit(&render()?),
    }
}

/// `--entity` of `list`: TYPE:ID or TYPE, neither part empty (as `enqueue
/// --entity` requires), so a typo is a usage error rather than "no jobs".
fn parse_entity_filter(text: &str) -> Result<(String, Option<String>), String> {
    match text.split_once(':') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() => Ok((t.into(), Some(id.into()))),
        None if !text.is_empty() => Ok((text.into(), None)),
        _ => Err("expected TYPE:ID or TYPE, e.g. document:42".into()),
    }
}

fn list_filter(args: &ListArgs) -> JobFilter {
    let (entity_type, entity_id) = match args.entity.clone() {
        Some((t, id)) => (Some(t), id),
        None => (None, None),
    };
    JobFilter {
        status: args.status,
        job_type: args.job_type.clone(),
        queue: args.queue.clone(),
        entity_type,
        entity_id,
        owner: args.owner.clone(),
    }
}

/// The page as a table and a footer. An error is shown only while it explains
/// the job's status (see [`current_error`]).
fn render_list(queue: &Queue, page: &JobPage, full_ids: bool) -> CliResult<String> {
    let now = queue.now();
    let ids = shown_ids(queue, &page.jobs, full_ids)?;
    let pending = page
        .jobs
        .iter()
        .any(|j| j.status == jobq::JobStatus::Pending);
    let paused = if pending {
        queue.paused_queues()?
    } else {
        Vec::new()
    };
    let mut t = Table::new(&[
        "ID",
        "TYPE",
        "QUEUE",
        "STATUS",
        "ATTEMPTS",
        "PRI",
        "CREATED",
        "DUE/PROGRESS",
        "ERROR",
    ]);
    for (j, id) in page.jobs.iter().zip(ids) {
        t.row(vec![
            id,
            j.job_type.clone(),
            j.queue.clone(),
            j.status.to_string(),
            format!("{}/{}", j.attempts, j.max_attempts),
            j.priority.to_string(),
            j.created_at.to_rfc3339(),
            due_or_progress(j, now, paused.contains(&j.queue)),
            short(current_error(j).unwrap_or(""), 60),
        ]);
    }
    let mut footer = format!("{} of {} jobs", page.jobs.len(), page.total);
    if let Some(c) = &page.next_cursor {
        footer.push_str(&format!("; next page: --cursor {c}"));
    }
    Ok(format!("{}\n{footer}", t.render()))
}

/// Runs `jobq stats`.
pub fn stats(ctx: &Context, args: StatsArgs) -> CliResult {
    let queue = ctx.open_existing()?;
    if args.json {
        return emit_json(&queue.stats()?);
    }
    let render = || Ok(render_stats(&queue.stats()?));
    match args.watch {
        true => watch("jobq stats", render),
        false => emit(&render()?),
    }
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
    let unserved = &s.unserved;
    let unserved = if unserved.is_empty() {
        String::new()
    } else {
        format!(
            "\ndue but served by no live worker: {}",
            waiting_list(unserved)
        )
    };
    let paused = if s.paused.is_empty() {
        String::new()
    } else {
        format!(
            "\ndue in paused queues (`jobq queue resume NAME`): {}",
            waiting_list(&s.paused)
        )
    };
    let reserved = match s.reserved {
        0 => String::new(),
        n => format!("\nin progress: {n} reserved by a pool's prefetch, not started"),
    };
    format!(
        "{}\n\n{}\n\npending: {} ready, {} scheduled, {} retrying; oldest ready job waiting {oldest}{reserved}{unserved}{paused}\nat {}",
        t.render(),
        q.render(),
        s.pending.ready,
        s.pending.scheduled,
        s.pending.retrying,
        s.at
    )
}

/// Due jobs by type and queue: `3 email (queue default), 1 resize (queue images)`.
pub fn waiting_list<'a>(waiting: impl IntoIterator<Item = &'a jobq::Waiting>) -> String {
    let items: Vec<String> = waiting
        .into_iter()
        .map(|w| format!("{} {} (queue {})", w.ready, w.job_type, w.queue))
        .collect();
    items.join(", ")
}
