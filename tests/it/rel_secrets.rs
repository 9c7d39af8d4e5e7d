//! Secrets stay where they belong: the database file (and its `-wal` and
//! `-shm`) is created owner-only, and a handler's program never sees jobq's own
//! secrets.

use std::os::unix::fs::PermissionsExt;

use jobq::Queue;
use serde_json::json;

use crate::util::{Sandbox, TEST_CONFIG};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn modes_of_db_files(sb: &Sandbox) -> [u32; 3] {
    let db = sb.db();
    let side = |s: &str| std::path::PathBuf::from(format!("{}{s}", db.display()));
    // An open queue keeps the -wal and -shm files in place.
    let q = Queue::open(&db).unwrap();
    q.stats().unwrap();
    [mode(&db), mode(&side("-wal")), mode(&side("-shm"))]
}

#[test]
fn a_new_database_and_its_wal_and_shm_are_owner_only() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    sb.ok(&["enqueue", "echo"]);
    assert_eq!(modes_of_db_files(&sb), [0o600; 3]);

    let group = Sandbox::new();
    group.config(&format!(
        "{TEST_CONFIG}\n[database]\nfile_mode = \"0640\"\n"
    ));
    group.ok(&["enqueue", "echo"]);
    assert_eq!(modes_of_db_files(&group), [0o640; 3]);

    let bad = Sandbox::new();
    bad.config(&format!(
        "{TEST_CONFIG}\n[database]\nfile_mode = \"0044\"\n"
    ));
    let run = bad.run(&["enqueue", "echo"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("database.file_mode"), "{}", run.stderr);
    assert!(!bad.db().exists(), "nothing was created");
}

#[test]
fn an_existing_database_keeps_its_mode_with_a_warning_when_others_can_read_it() {
    let sb = Sandbox::new();
    sb.config(TEST_CONFIG);
    sb.ok(&["enqueue", "echo"]);
    std::fs::set_permissions(sb.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = sb.run(&["enqueue", "echo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("readable by other users"),
        "{}",
        run.stderr
    );
    assert_eq!(mode(&sb.db()), 0o644, "left alone");
    sb.config(&format!(
        "{TEST_CONFIG}\n[database]\nfile_mode = \"0644\"\n"
    ));
    let run = sb.run(&["enqueue", "echo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("readable by other users"),
        "the configured mode says others may read it: {}",
        run.stderr
    );
}

#[test]
fn an_exec_handler_never_sees_jobqs_secrets() {
    let sb = Sandbox::new();
    sb.config(
        r#"
[workers]
poll_interval = "100ms"
durability = "normal"

[handlers.env]
command = ["env"]

[handlers.clean]
command = ["env"]
inherit_env = false
env = { GREETING = "hello" }
"#,
    );
    let inherited = sb.ok(&["enqueue", "env"]);
    let clean = sb.ok(&["enqueue", "clean"]);
    let run = sb
        .cmd(&["work", "--drain"])
        .env("JOBQ_CRON_SECRET", "cron-s3cret")
        .env("JOBQ_METRICS_TOKEN", "metrics-s3cret")
        .env("SOME_APP_SETTING", "kept")
        .output()
        .unwrap();
    assert!(run.status.success());
    let stdout = |id: &str| {
        let job = sb.json(&["show", id]);
        assert_eq!(job["status"], json!("completed"), "{job}");
        job["result"]["stdout"].as_str().unwrap().to_string()
    };
    let env = stdout(&inherited);
    assert!(
        !env.contains("s3cret"),
        "a secret reached the program: {env}"
    );
    assert!(env.contains("SOME_APP_SETTING=kept"), "{env}");
    assert!(env.contains(&format!("JOBQ_JOB_ID={inherited}")), "{env}");
    let clean_env = stdout(&clean);
    let mut lines: Vec<&str> = clean_env.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "GREETING=hello".to_string(),
            "JOBQ_ATTEMPT=1".into(),
            "JOBQ_FENCING_TOKEN=1".into(),
            format!("JOBQ_JOB_ID={clean}"),
            "JOBQ_JOB_TYPE=clean".into(),
        ]
    );
}
