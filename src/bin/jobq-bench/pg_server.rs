//! The PostgreSQL server the PostgreSQL rows run on: the one at `--db URL`, or
//! with `--db postgres` a throwaway cluster of Debian's packages
//! (`/usr/lib/postgresql/N/bin`), initialized in a temporary directory (as the
//! `postgres` user when running as root: initdb refuses root) with the server's
//! default settings, listening only on a Unix socket there, stopped and
//! removed when the benchmark ends. Also: the settings in effect, for the report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postgres::{Client, NoTls};

use crate::BenchResult;

/// Settings the report records, read with `SHOW`.
const SHOWN: [&str; 12] = [
    "server_version",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_level",
    "wal_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "max_connections",
    "work_mem",
    "effective_io_concurrency",
];

/// A server for the benchmark: its URL, and the cluster to stop (if ours).
pub struct Server {
    /// Where jobq and the raw baselines connect.
    pub url: String,
    cluster: Option<Cluster>,
}

/// A throwaway cluster of ours.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
}

impl Server {
    /// The server `--db` names: a URL as given, or `postgres` for a throwaway cluster.
    ///
    /// # Errors
    /// When no PostgreSQL is installed or the cluster does not start.
    pub fn from_arg(db: &str) -> BenchResult<Server> {
        if db != "postgres" {
            return Ok(Server {
                url: db.to_string(),
                cluster: None,
            });
        }
        let cluster = Cluster::start()?;
        let host = escape(&cluster.dir.to_string_lossy());
        Ok(Server {
            url: format!("postgres://postgres@{host}:5432/postgres"),
            cluster: Some(cluster),
        })
    }

    /// Whether the server is a throwaway cluster started by the benchmark.
    pub fn throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    /// The settings in effect (`SHOW`), as name -> value.
    pub fn settings(&self) -> BenchResult<serde_json::Map<String, serde_json::Value>> {
        let mut c = Client::connect(&self.url, NoTls)?;
        let mut out = serde_json::Map::new();
        for name in SHOWN {
            let v: String = c.query_one(&format!("SHOW {name}"), &[])?.get(0);
            out.insert(name.to_string(), v.into());
        }
        Ok(out)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let data = c.dir.join("data").to_string_lossy().into_owned();
            run(
                &c.bin,
                c.as_postgres,
                "pg_ctl",
                &["-D", &data, "-m", "fast", "-w", "stop"],
            )
            .ok();
            std::fs::remove_dir_all(&c.dir).ok();
        }
    }
}

/// The newest `/usr/lib/postgresql/N/bin` with initdb.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// Runs a PostgreSQL program, as the `postgres` user when `as_postgres`.
fn run(bin: &Path, as_postgres: bool, prog: &str, args: &[&str]) -> BenchResult<Output> {
    let exe = bin.join(prog);
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd.args(args).output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{prog} failed: {err}").into());
    }
    Ok(out)
}

impl Cluster {
    fn start() -> BenchResult<Cluster> {
        let bin = find_bin().ok_or(
            "--db postgres: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql), \
             or pass --db postgres://USER@HOST/DB",
        )?;
        // SAFETY: geteuid has no preconditions and touches no memory.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = std::env::temp_dir().join(format!("jobq-bench-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let cluster = Cluster {
            bin,
            dir,
            as_postgres,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.dir)
                .status()?;
            if !ok.success() {
                return Err("cannot chown the cluster directory to postgres".into());
            }
        }
        cluster.init_and_start()?;
        Ok(cluster)
    }

    fn init_and_start(&self) -> BenchResult<()> {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let log = self.dir.join("log").to_string_lossy().into_owned();
        let init = [
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        run(&self.bin, self.as_postgres, "initdb", &init)?;
        let opts = format!(
            "-k {} -p 5432 -c listen_addresses= -c max_connections=200",
            self.dir.display()
        );
        let start = ["-D", &data, "-l", &log, "-o", &opts, "-w", "start"];
        run(&self.bin, self.as_postgres, "pg_ctl", &start).map(drop)
    }
}

/// Percent-escapes a socket directory for the host part of a URL.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
