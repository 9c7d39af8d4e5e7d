//! A throwaway PostgreSQL cluster for this test run: found under
//! `/usr/lib/postgresql/*/bin` (Debian's packages), initialized in a temporary
//! directory (as the `postgres` user when running as root: initdb refuses
//! root), listening only on a Unix socket there, stopped and removed when the
//! test binary exits. Each test gets a database of its own.
//!
//! Without PostgreSQL binaries the PostgreSQL tests print SKIPPED and pass,
//! unless `JOBQ_REQUIRE_POSTGRES=1` (set by CI), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The running cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
/// Clusters to stop and remove at exit: (bin dir, cluster dir, as postgres).
static TO_STOP: Mutex<Vec<(PathBuf, PathBuf, bool)>> = Mutex::new(Vec::new());

/// The newest `/usr/lib/postgresql/N/bin` with initdb and pg_ctl.
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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root.
fn run(bin: &Path, as_postgres: bool, prog: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(prog);
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

extern "C" fn stop_at_exit() {
    let all = TO_STOP
        .lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default();
    for (bin, dir, as_pg) in all {
        let data = dir.join("data");
        let data = data.to_string_lossy();
        run(
            &bin,
            as_pg,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Cluster {
    /// A cluster of the caller's own (for tests that stop or restart the server),
    /// or `None` without PostgreSQL (after printing SKIPPED).
    pub fn private(test: &str) -> Option<Cluster> {
        let c = Cluster::start();
        if c.is_none() {
            eprintln!("SKIPPED {test} on PostgreSQL: no PostgreSQL installed");
        }
        c
    }

    fn start() -> Option<Cluster> {
        let required = std::env::var("JOBQ_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let Some(bin) = find_bin() else {
            assert!(
                !required,
                "JOBQ_REQUIRE_POSTGRES=1 but no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)"
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("jobq-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster directory to postgres");
        }
        let data = dir.join("data").to_string_lossy().into_owned();
        let out = run(
            &bin,
            as_postgres,
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut to_stop = TO_STOP.lock().unwrap();
        if to_stop.is_empty() {
            // SAFETY: registering a plain extern "C" function with atexit.
            unsafe { libc::atexit(stop_at_exit) };
        }
        to_stop.push((bin.clone(), dir.clone(), as_postgres));
        drop(to_stop);
        let c = Cluster {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        c.start_again();
        Some(c)
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        let host: String = url_escape(&self.dir.to_string_lossy());
        format!("postgres://postgres@{host}:{}/{db}", self.port)
    }

    /// Runs one statement on the `postgres` database.
    pub fn admin(&self, sql: &str) {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server comes back
    /// (logging to the cluster's log file: without `-l` the new server would
    /// keep pg_ctl's output pipe open and this call would never return).
    pub fn restart(&self) {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let log = self.dir.join("log").to_string_lossy().into_owned();
        let out = run(
            &self.bin,
            self.as_postgres,
            "pg_ctl",
            &["-D", &data, "-l", &log, "-m", "fast", "-w", "restart"],
        );
        assert!(
            out.status.success(),
            "pg_ctl restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl stop -m fast` (see [`Cluster::start_again`]).
    pub fn stop(&self) {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let out = run(
            &self.bin,
            self.as_postgres,
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster stopped by [`Cluster::stop`] with its settings.
    pub fn start_again(&self) {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let log = self.dir.join("log").to_string_lossy().into_owned();
        let opts = format!(
            "-k {} -p {} -c listen_addresses= -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400",
            self.dir.display(),
            self.port
        );
        let args = ["-D", &data, "-l", &log, "-o", &opts, "-w", "start"];
        let out = run(&self.bin, self.as_postgres, "pg_ctl", &args);
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Creates database `name` and returns its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.admin(&format!("CREATE DATABASE {name}"));
        self.url(name)
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The cluster of this test run, started on first use; `None` when PostgreSQL
/// is not installed and not required.
pub fn cluster() -> Option<&'static Cluster> {
    CLUSTER.get_or_init(Cluster::start).as_ref()
}

/// A fresh database of the test cluster, dropped with this value.
pub struct TestDb {
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// A new empty database, or `None` (after printing SKIPPED) without PostgreSQL.
    pub fn new(test: &str) -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let Some(c) = cluster() else {
            eprintln!("SKIPPED {test} on PostgreSQL: no PostgreSQL installed");
            return None;
        };
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        c.admin(&format!("CREATE DATABASE {name}"));
        Some(TestDb {
            url: c.url(&name),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(c) = cluster() {
            let mut client = match postgres::Client::connect(&c.url("postgres"), postgres::NoTls) {
                Ok(client) => client,
                Err(_) => return,
            };
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
