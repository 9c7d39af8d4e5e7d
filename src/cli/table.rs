//! Output: plain tables for people, the library's serde JSON for programs.

use std::io::{ErrorKind, Write};

use comfy_table::CellAlignment;
use jobq::{Job, Timestamp};
use serde::Serialize;

use crate::cli::present::current_error;
use crate::cli::{CliError, CliResult};

/// Writes `text` and a newline to stdout. A closed pipe (`jobq list | head`) is
/// not an error.
pub fn emit(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(CliError::io("writing output", e)),
        _ => Ok(()),
    }
}

/// Writes `value` as the library's serde JSON (one line), the same JSON as the HTTP API.
pub fn emit_json(value: &impl Serialize) -> CliResult {
    let text = serde_json::to_string(value)
        .map_err(|e| CliError::Runtime(format!("writing JSON: {e}")))?;
    emit(&text)
}

/// A table for people (comfy-table): no borders and no colour, columns two
/// spaces apart, widths in terminal columns (a wide character counts two), no
/// trailing spaces.
pub struct Table {
    table: comfy_table::Table,
}

impl Table {
    /// A table with this header row; columns are left-aligned.
    pub fn new(headers: &[&str]) -> Table {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::NOTHING);
        table.set_header(headers.to_vec());
        let mut t = Table { table };
        t.space_columns();
        t
    }

    /// Right-aligns these columns (from 0), header included: for numbers.
    pub fn align_right(mut self, columns: &[usize]) -> Table {
        for &i in columns {
            if let Some(c) = self.table.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        self
    }

    /// Adds a row.
    /// Control characters (an error text's ANSI escapes, say) are shown escaped,
    /// so a cell cannot drive the terminal.
    pub fn row(&mut self, cells: Vec<String>) {
        let cells: Vec<String> = cells.iter().map(|c| printable(c)).collect();
        self.table.add_row(cells);
        self.space_columns();
    }

    /// The table as text, without a trailing newline.
    pub fn render(&self) -> String {
        self.table.trim_fmt()
    }

    /// Two spaces after every column (the last one's are trimmed).
    fn space_columns(&mut self) {
        for c in self.table.column_iter_mut() {
            c.set_padding((0, 2));
        }
    }
}

/// `text` with control characters (`\u{1b}`, `\n`, ...) and the
/// bidirectional formatting characters (`\u{202e}`, ...: they reorder what a
/// terminal shows after them, the "Trojan Source" trick) escaped.
pub fn printable(text: &str) -> String {
    if !text.chars().any(unprintable) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else if unprintable(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A control character, or one of Unicode's bidirectional formatting
/// characters (marks, embeddings, overrides, isolates).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `n` of `noun`, plural unless one: `1 job`, `0 jobs`, `3 jobs`.
pub fn count(n: impl TryInto<u64>, noun: &str) -> String {
    match n.try_into().unwrap_or(u64::MAX) {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// A cell for an optional time.
pub fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_rfc3339())
}

/// Text cut to `max` characters with an ellipsis, on one line.
pub fn short(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A job's fields, one per line.
pub fn job_detail(job: &Job) -> String {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map_or("-".into(), |v| v.to_string());
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let entity = match (&job.entity_type, &job.entity_id) {
        (Some(t), Some(i)) => format!("{t}:{i}"),
        _ => "-".into(),
    };
    let mut t = Table::new(&["id", &job.id.to_string()]);
    let fields = [
        ("job_type", job.job_type.clone()),
        ("queue", job.queue.clone()),
        ("status", job.status.to_string()),
        ("priority", job.priority.to_string()),
        (
            "attempts",
            format!("{} of {}", job.attempts, job.max_attempts),
        ),
        ("snoozes", job.snoozes.to_string()),
        ("next_retry", job.next_retry.to_rfc3339()),
        ("entity", entity),
        ("owner", opt(&job.owner)),
        ("created_at", job.created_at.to_rfc3339()),
        ("updated_at", job.updated_at.to_rfc3339()),
        ("started_at", time(job.started_at)),
        ("completed_at", time(job.completed_at)),
        ("locked_by", opt(&job.locked_by)),
        ("lease_expires", time(job.lease_expires_at)),
        ("cancel_req", job.cancel_requested.to_string()),
        ("progress", json(&job.progress)),
        ("payload", short(&job.payload.to_string(), 200)),
        ("result", short(&json(&job.result), 200)),
        ("error", short(current_error(job).unwrap_or("-"), 200)),
    ];
    for (k, v) in fields {
        t.row(vec![k.into(), v]);
    }
    if let Some(name) = &job.schedule {
        let fired = job
            .fire_time
            .map_or(String::new(), |f| format!(", fire time {}", f.to_rfc3339()));
        t.row(vec!["schedule".into(), format!("{name}{fired}")]);
    }
    if let Some(u) = &job.unique {
        let key: String = u.key.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let states: Vec<String> = u.states.statuses().iter().map(|s| s.to_string()).collect();
        t.row(vec![
            "unique".into(),
            format!("key {key}… held while {}", states.join(", ")),
        ]);
    }
    if let (None, Some(earlier)) = (current_error(job), &job.error_message) {
        t.row(vec!["earlier_error".into(), earlier_error(job, earlier)]);
    }
    for u in &job.unreadable {
        t.row(vec!["UNREADABLE".into(), short(u, 200)]);
    }
    t.render()
}

/// An error that no longer explains the job's status: with its attempt and
/// time, so it does not read as the job's state.
fn earlier_error(job: &Job, message: &str) -> String {
    let ctx = job.error_context.as_ref();
    let field = |k: &str| ctx.and_then(|c| c.get(k)).map(|v| v.to_string());
    let attempt = field("attempt").unwrap_or_else(|| "?".into());
    let at = field("failed_at").unwrap_or_default().replace('"', "");
    short(&format!("attempt {attempt} at {at}: {message}"), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_schedule_and_unique_key_are_shown() {
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "id": "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01", "job_type": "t", "queue": "default",
            "status": "pending", "priority": 0, "payload": null, "result": null,
            "attempts": 0, "max_attempts": 3, "next_retry": "2026-01-01T00:00:10.000Z",
            "error_message": null, "error_context": null,
            "entity_type": null, "entity_id": null, "owner": null,
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:05.000Z",
            "started_at": null, "completed_at": null, "locked_by": null,
            "lease_expires_at": null, "cancel_requested": false, "progress": null
        }))
        .unwrap();
        let plain = job_detail(&job);
        assert!(
            !plain.contains("schedule") && !plain.contains("unique"),
            "{plain}"
        );
        job.schedule = Some("nightly".into());
        job.fire_time = Some(Timestamp(1_767_225_600_000));
        job.unique = Some(jobq::HeldKey {
            key: (0..32).collect(),
            states: jobq::StatusSet::live_and(&[jobq::JobStatus::Completed]),
        });
        let shown = job_detail(&job);
        let line = |k: &str| {
            shown
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap_or_else(|| panic!("{k} in {shown}"))
                .to_string()
        };
        assert!(
            line("schedule").ends_with("nightly, fire time 2026-01-01T00:00:00.000Z"),
            "{shown}"
        );
        assert!(
            line("unique")
                .ends_with("key 0001020304050607… held while pending, in_progress, completed"),
            "{shown}"
        );
    }

    #[test]
    fn control_characters_are_escaped_in_cells() {
        let mut t = Table::new(&["E"]);
        t.row(vec!["\u{1b}[31mred\u{7}".into()]);
        assert_eq!(t.render(), "E\n\\u{1b}[31mred\\u{7}");
    }

    #[test]
    fn bidirectional_overrides_are_escaped() {
        assert_eq!(printable("a\u{202e}b\u{2066}c"), "a\\u{202e}b\\u{2066}c");
        assert_eq!(printable("a\tb\n"), "a\\tb\\n");
        assert_eq!(
            printable("شكرا"),
            "شكرا",
            "right-to-left text itself is kept"
        );
    }

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(), "A          LONG HEADER\nwide cell  x");
    }

    #[test]
    fn wide_characters_count_two_columns() {
        let mut t = Table::new(&["NAME", "N"]);
        t.row(vec!["日本".into(), "1".into()]);
        t.row(vec!["ok 🎉".into(), "2".into()]);
        assert_eq!(t.render(), "NAME   N\n日本   1\nok 🎉  2");
    }

    #[test]
    fn numbers_can_be_right_aligned() {
        let mut t = Table::new(&["TYPE", "COUNT"]).align_right(&[1]);
        t.row(vec!["echo".into(), "7".into()]);
        t.row(vec!["slow".into(), "1234567".into()]);
        assert_eq!(t.render(), "TYPE    COUNT\necho        7\nslow  1234567");
    }

    #[test]
    fn short_text_is_cut_on_characters() {
        assert_eq!(short("héllo\nworld", 20), "héllo world");
        assert_eq!(short("ééééé", 3), "éé…");
    }
}
