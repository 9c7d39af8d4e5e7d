//! [`Location`]: where a queue lives, parsed once from what the user wrote (a
//! path, a `sqlite:` URL or a `postgres://` URL). Shown everywhere with the
//! password redacted.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a queue's database is: a SQLite file or a PostgreSQL database.
///
/// Parsed by [`Location::parse`]: `postgres://...` and `postgresql://...` are
/// PostgreSQL (libpq URL syntax, e.g. `postgres://user:pass@host:5432/db` or
/// `postgres:///db?host=/run/postgresql`); `sqlite:PATH` (or `sqlite://PATH`)
/// and any other text are a SQLite file's path. Its `Debug` and `Display` never
/// show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, as given (it may hold a password).
    Postgres(String),
}

const PG_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl Location {
    /// Parses what a user wrote for `--db` / `JOBQ_DB` / [`crate::QueueOptions::new`].
    /// Never fails: anything that is not a PostgreSQL URL is a SQLite path.
    pub fn parse(text: impl AsRef<Path>) -> Location {
        let path = text.as_ref();
        let Some(s) = path.to_str() else {
            return Location::Sqlite(path.to_path_buf());
        };
        if PG_SCHEMES.iter().any(|p| has_prefix_ci(s, p)) {
            return Location::Postgres(s.to_string());
        }
        if has_prefix_ci(s, "sqlite:") {
            let rest = &s["sqlite:".len()..];
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            return Location::Sqlite(PathBuf::from(rest));
        }
        Location::Sqlite(path.to_path_buf())
    }

    /// The SQLite file, or `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// True for a PostgreSQL location.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    /// The location as text, with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

fn has_prefix_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// `scheme://user:secret@host/...` -> `scheme://user:***@host/...`; a
/// `password=` query parameter is redacted too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{creds}@{host}"),
        },
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{}", redact_query(tail))
}

fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Location::Postgres(_) => f.debug_tuple("Postgres").field(&self.redacted()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        let cases = [
            ("jobq.db", Location::Sqlite("jobq.db".into())),
            ("/var/q.db", Location::Sqlite("/var/q.db".into())),
            ("sqlite:q.db", Location::Sqlite("q.db".into())),
            ("sqlite:///var/q.db", Location::Sqlite("/var/q.db".into())),
            (
                "postgres://h/db",
                Location::Postgres("postgres://h/db".into()),
            ),
            (
                "PostgreSQL://h/db",
                Location::Postgres("PostgreSQL://h/db".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Location::parse(text), want, "{text}");
        }
    }

    #[test]
    fn passwords_are_never_shown() {
        let l =
            Location::parse("postgres://app:s3cr%40t@db.example:5432/jobs?password=x2&sslmode=off");
        let shown = [l.to_string(), format!("{l:?}"), l.redacted()];
        for s in shown {
            assert!(!s.contains("s3cr") && !s.contains("x2"), "{s}");
            assert!(s.contains("app:***@db.example:5432/jobs"), "{s}");
        }
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    }
}
