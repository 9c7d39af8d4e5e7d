//! Config errors, located: the file, the line and the dotted key.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid config: bad TOML, an unknown key, a bad value.
    #[error("{}", Located { path, line: *line, key, message })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (from 1) where the problem is; 0 when unknown.
        line: usize,
        /// The dotted key, e.g. `handlers.echo.timeout`; empty when unknown.
        key: String,
        /// What is wrong.
        message: String,
    },
}

struct Located<'a> {
    path: &'a Path,
    line: usize,
    key: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    /// Locates a toml error in `text`: its line from the error's span, and the
    /// dotted key written at (or, for a multi-line value, above) that line.
    pub(crate) fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
        let (line, key) = match err.span() {
            Some(span) => locate(text, span.start),
            None => (0, String::new()),
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message: err.message().trim().to_string(),
        }
    }
}

impl ConfigError {
    /// An error at byte `offset` of `text` (its line and the key in force there).
    pub(crate) fn at(path: &Path, text: &str, offset: usize, message: String) -> ConfigError {
        let (line, key) = locate(text, offset);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

/// The 1-based line of byte `offset` and the dotted key in force there.
fn locate(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().take(line).collect();
    let mut key = None;
    let mut table = None;
    for l in lines.iter().rev() {
        let t = l.trim();
        if t.starts_with('[') {
            table = Some(table_name(t));
            break;
        }
        if key.is_none() {
            key = key_of(t);
        }
    }
    let full = match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (Some(t), None) => t,
        (None, Some(k)) => k,
        (None, None) => String::new(),
    };
    (line, full)
}

/// `[handlers.echo]` -> `handlers.echo`; `[[x]]` -> `x`.
fn table_name(header: &str) -> String {
    let inner = header.trim_start_matches('[');
    let end = inner.find(']').unwrap_or(inner.len());
    inner[..end]
        .split('.')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(".")
}

/// The key of a `key = value` line, or None for other lines (values, comments).
fn key_of(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-.\"' ".contains(c);
    (!k.is_empty() && k.chars().all(bare)).then(|| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_at_and_above_the_span() {
        let text = "[workers]\ncount = 2\n\n[handlers.echo]\ncommand = [\n  \"\",\n]\n";
        assert_eq!(
            locate(text, text.find("count").unwrap()),
            (2, "workers.count".into())
        );
        assert_eq!(
            locate(text, text.find("\"\"").unwrap()),
            (6, "handlers.echo.command".into())
        );
        assert_eq!(
            locate(text, text.find("[handlers").unwrap()),
            (4, "handlers.echo".into())
        );
        assert_eq!(locate("a = 1\n", 0), (1, "a".into()));
    }
}
