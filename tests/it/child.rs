//! Child processes for multi-process tests: the test binary re-runs itself with
//! `JOBQ_TEST_CHILD` set, and the test named here does the child's part.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The command that runs this test binary as a child doing `role` on `db`.
pub fn child_command(role: &str, db: &Path) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "child::child_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("JOBQ_TEST_CHILD", role)
    .env("JOBQ_TEST_DB", db)
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    cmd
}

/// Starts this test binary as a child that runs `role` on `db`, with `extra` env.
pub fn spawn_child(role: &str, db: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = child_command(role, db);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child test process")
}

/// The child's entry point; a no-op in a normal test run.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var("JOBQ_TEST_CHILD") else {
        return;
    };
    let db = std::env::var("JOBQ_TEST_DB").expect("JOBQ_TEST_DB");
    match role.as_str() {
        "claimer" => crate::store_transitions::child_claimer(Path::new(&db)),
        "slow_worker" => crate::worker_crash::child_slow_worker(Path::new(&db)),
        "prefetcher" => crate::prefetch::child_prefetcher(Path::new(&db)),
        "pool" => crate::rel_contention::child_pool(Path::new(&db)),
        "enqueuer" => crate::rel_contention::child_enqueuer(Path::new(&db)),
        "chaos" => crate::rel_contention::child_chaos(Path::new(&db)),
        "pc_enqueuer" => crate::powercut_drivers::child_enqueuer(Path::new(&db)),
        "pc_worker" => crate::powercut_drivers::child_worker(Path::new(&db)),
        "pc_cli" => crate::powercut_drivers::child_cli(Path::new(&db)),
        "uniq_enqueuer" => crate::unique::child_uniq_enqueuer(Path::new(&db)),
        other => panic!("unknown child role {other}"),
    }
}
