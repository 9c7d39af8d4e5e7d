//! Output: plain tables for people, the library's serde JSON for programs.

use std::io::{ErrorKind, Write};

use jobq::{Job, Timestamp};
use serde::Serialize;

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

/// A table with left-aligned columns separated by two spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    /// Control characters (an error text's ANSI escapes, say) are shown escaped,
    /// so a cell cannot drive the terminal.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| printable(c)).collect());
    }

    /// The table as text, without a trailing newline.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width = |c: usize| {
            let cell_width = |r: &Vec<String>| r.get(c).map_or(0, |s| s.chars().count());
            self.rows.iter().map(cell_width).max().unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |r: &Vec<String>| {
            let cells = r.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}"));
            cells.collect::<Vec<_>>().join("  ").trim_end().to_string()
        };
        self.rows.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

/// `text` with control characters escaped (`\u{1b}`, `\n`, ...).
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
        ("error", short(&opt(&job.error_message), 200)),
    ];
    for (k, v) in fields {
        t.row(vec![k.into(), v]);
    }
    for u in &job.unreadable {
        t.row(vec!["UNREADABLE".into(), short(u, 200)]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_in_cells() {
        let mut t = Table::new(&["E"]);
        t.row(vec!["\u{1b}[31mred\u{7}".into()]);
        assert_eq!(t.render(), "E\n\\u{1b}[31mred\\u{7}");
    }

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(), "A          LONG HEADER\nwide cell  x");
    }

    #[test]
    fn short_text_is_cut_on_characters() {
        assert_eq!(short("héllo\nworld", 20), "héllo world");
        assert_eq!(short("ééééé", 3), "éé…");
    }
}
