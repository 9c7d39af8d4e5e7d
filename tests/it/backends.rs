//! One suite, both backends: [`both!`] turns each contract test into a module
//! with a `sqlite` and a `postgres` test running the same body on a fresh
//! database of each kind ([`Db`]).

use std::path::Path;

/// A database for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database of the run's throwaway cluster. Either way a scratch
/// directory is there for other files.
pub struct Db {
    dir: tempfile::TempDir,
    pg: Option<crate::pg::TestDb>,
}

impl Db {
    /// A SQLite database (not yet created) in a new temporary directory.
    pub fn sqlite() -> Db {
        Db {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        }
    }

    /// A new PostgreSQL database, or `None` when PostgreSQL is not installed
    /// and not required (the test then passes after printing SKIPPED).
    pub fn postgres(test: &str) -> Option<Db> {
        Some(Db {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some(crate::pg::TestDb::new(test)?),
        })
    }

    /// The database: the SQLite file's path or the PostgreSQL URL, as text.
    pub fn location(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self
                .dir
                .path()
                .join("jobq.db")
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// A scratch directory for the test's other files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// A queue on this database with the default options changed by `tune`.
    pub fn open(&self, tune: impl FnOnce(jobq::QueueOptions) -> jobq::QueueOptions) -> jobq::Queue {
        jobq::Queue::open_with(tune(jobq::QueueOptions::new(self.location()))).expect("open queue")
    }
}

/// Declares tests run on both backends: `both! { fn name(db) { ... } }` makes
/// `name::sqlite` and `name::postgres`, `db` being a [`Db`] of that kind.
macro_rules! both {
    ($( $(#[$m:meta])* fn $name:ident($db:ident) $body:block )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            $(#[$m])*
            fn sqlite() {
                let $db = crate::backends::Db::sqlite();
                $body
            }

            #[test]
            $(#[$m])*
            fn postgres() {
                let Some($db) = crate::backends::Db::postgres(concat!(module_path!(), "::", stringify!($name))) else {
                    return;
                };
                $body
            }
        }
    )*};
}
pub(crate) use both;
