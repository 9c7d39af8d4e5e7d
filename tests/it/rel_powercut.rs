//! Reliability: power loss. The database lives on a FUSE filesystem that keeps
//! data only once it is fsynced (`powercut_fs.rs` has the model). Four driver
//! processes (an enqueuer, two workers, and one running `jobq enqueue` again and
//! again) work on it; at a random request the power goes: the filesystem drops
//! everything not fsynced and fails every later request, the drivers are
//! SIGKILLed, and the durable image is checked against what the drivers saw
//! acknowledged. The next round goes on from that image, so cuts also hit
//! SQLite's and jobq's recovery.
//!
//! `JOBQ_POWERCUT_CUTS` sets the number of cuts under FULL (default 50; the
//! NORMAL and fault-injection runs get a quarter, at least 12). Without FUSE
//! (not root, no /dev/fuse, mount refused) the tests print SKIPPED and pass,
//! unless `JOBQ_REQUIRE_FUSE=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::powercut_check::{inspect, keep_evidence, report, Figures, Ledger};
use crate::powercut_drivers::{users_of, Drivers};
use crate::powercut_fs::{Disk, DiskStats, Plan};
use crate::powercut_fuse::Mounted;
use crate::rel_crash::Rng;
use crate::util::wait_for;

/// One kind of run.
struct Phase {
    name: &'static str,
    durability: &'static str,
    cuts: usize,
    /// Faults injected before the cut (fsyncgate), or none.
    faults: bool,
}

/// Cuts under FULL: `JOBQ_POWERCUT_CUTS`, default 50; the NORMAL and fault
/// runs get 2/5 of that, at least 20.
fn cuts_wanted(full: bool) -> usize {
    let n = std::env::var("JOBQ_POWERCUT_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    if full {
        n
    } else {
        (n * 2 / 5).max(20)
    }
}

/// The most mutating requests a round runs before its cut.
const MAX_OPS: u64 = 8000;

/// Mounts `disk`, or says SKIPPED (None) when this machine refuses FUSE, unless
/// `JOBQ_REQUIRE_FUSE=1`.
pub fn mount_or_skip(disk: Disk, at: &Path, label: &str) -> Option<Mounted> {
    let mounted = if Path::new("/dev/fuse").exists() {
        Mounted::mount(disk, at)
    } else {
        Err("there is no /dev/fuse".to_string())
    };
    match mounted {
        Ok(m) => Some(m),
        Err(why) if std::env::var("JOBQ_REQUIRE_FUSE").as_deref() == Ok("1") => {
            panic!("{label}: FUSE is required (JOBQ_REQUIRE_FUSE=1) but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {label}: {why}");
            None
        }
    }
}

/// Waits until the power went (the disk reached the round's cut point).
fn wait_for_the_cut(mounted: &Mounted, drivers: &mut Drivers, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mounted.disk().is_cut() {
        if let Some(log) = drivers.exited() {
            panic!("{label}: a driver exited before the cut: {log}");
        }
        if Instant::now() > deadline {
            let stats = mounted.disk().stats.clone();
            panic!(
                "{label}: no cut after 60 s ({stats:?}); {}",
                drivers.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One round: mount the image, run the drivers until the power goes, save what
/// survived as the next image. Returns the disk's figures, the plan and the
/// disk's last requests.
fn round(
    dir: &Path,
    image: &Path,
    next: &Path,
    n: usize,
    rng: &mut Rng,
    phase: &Phase,
) -> Option<(DiskStats, Plan, String)> {
    let cut_at = 1 + rng.below(MAX_OPS);
    let plan = Plan {
        cut_at,
        torn: rng.below(2) == 0,
        faults_until: if phase.faults { cut_at * 3 / 4 } else { 0 },
        fault_one_in: 25,
        db_fsync_faults: std::env::var("JOBQ_POWERCUT_DB_FSYNC_FAULTS").as_deref() == Ok("1"),
        seed: rng.below(u64::MAX),
    };
    let mnt = dir.join(format!("mnt-{n}"));
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = mount_or_skip(Disk::load(image, plan), &mnt, phase.name)?;
    let mut drivers = Drivers::start(
        dir,
        &mnt.join("jobq.db"),
        n,
        rng.below(u64::MAX),
        phase.durability,
    );
    let label = format!("{} round {n} ({plan:?})", phase.name);
    wait_for_the_cut(&mounted, &mut drivers, &label);
    drivers.kill();
    wait_for(
        "every process using the mount to be gone",
        Duration::from_secs(30),
        || users_of(&mnt).is_empty(),
    );
    std::fs::create_dir_all(next).unwrap();
    let stats = mounted.disk().stats.clone();
    let trace = mounted
        .disk()
        .trace
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    mounted.disk().save_durable(next);
    mounted.unmount();
    std::fs::remove_dir(&mnt).unwrap();
    Some((stats, plan, trace))
}

/// Runs `phase`'s cuts; None when FUSE is refused here.
fn run(phase: &Phase) -> Option<(Figures, Ledger)> {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("acks")).unwrap();
    let config = crate::powercut_drivers::cli_config(phase.durability);
    std::fs::write(dir.join("jobq.toml"), config).unwrap();
    let mut image: PathBuf = dir.join("img-0");
    std::fs::create_dir_all(&image).unwrap();
    drop(jobq::Queue::open(image.join("jobq.db")).unwrap());
    let mut rng = Rng::from_env(phase.name);
    let (mut figures, mut ledger) = (Figures::default(), Ledger::default());
    for n in 0..phase.cuts {
        let next = dir.join(format!("img-{}", n + 1));
        let (stats, plan, mounted_trace) = round(dir, &image, &next, n, &mut rng, phase)?;
        ledger.read_logs(&dir.join("acks"), stats.cut_ns);
        let (integrity, rows) = inspect(&next, &dir.join(format!("check-{n}")));
        let found = ledger.check(&rows, integrity);
        figures.add(&stats, plan.torn, &found);
        let what = format!("{} cut {n} ({plan:?}, {stats:?}): {found:?}", phase.name);
        let lost = phase.durability == "full" && found.lost() > 0;
        if found.integrity != "ok" || lost {
            let kept = keep_evidence(dir, &image, &next, &mounted_trace, phase.name, n);
            panic!(
                "{what}; the images, logs and requests are kept in {}",
                kept.display()
            );
        }
        ledger.forget_lost(&rows);
        for old in [image, dir.join(format!("check-{n}"))] {
            std::fs::remove_dir_all(old).unwrap();
        }
        for log in std::fs::read_dir(dir.join("acks")).unwrap() {
            std::fs::remove_file(log.unwrap().path()).unwrap();
        }
        image = next;
    }
    Some((figures, ledger))
}

#[test]
fn power_cut_loses_no_acknowledged_job_under_full() {
    let phase = Phase {
        name: "full",
        durability: "full",
        cuts: cuts_wanted(true),
        faults: false,
    };
    let started = Instant::now();
    let Some((f, ledger)) = run(&phase) else {
        return;
    };
    report(phase.name, &f, &ledger, started);
    assert_eq!(f.cuts, phase.cuts as u64);
    assert_eq!((f.lost.iter().sum::<u64>(), f.corrupt), (0, 0));
    assert_eq!(
        ledger.totals.reissued, 0,
        "a lease token was handed out twice"
    );
    assert_eq!(ledger.overlapping_attempts(), Vec::<String>::new());
    assert!(ledger.totals.enqueues > 0 && ledger.totals.completions > 0);
}

#[test]
fn power_cut_under_normal_never_corrupts_and_loses_only_the_last_commits() {
    let phase = Phase {
        name: "normal",
        durability: "normal",
        cuts: cuts_wanted(false),
        faults: false,
    };
    let started = Instant::now();
    let Some((f, ledger)) = run(&phase) else {
        return;
    };
    report(phase.name, &f, &ledger, started);
    assert_eq!(f.corrupt, 0);
    assert!(ledger.totals.enqueues > 0 && ledger.totals.completions > 0);
}

#[test]
fn failed_writes_and_fsyncs_are_reported_and_never_acknowledged() {
    let phase = Phase {
        name: "eio",
        durability: "full",
        cuts: cuts_wanted(false),
        faults: true,
    };
    let started = Instant::now();
    let Some((f, ledger)) = run(&phase) else {
        return;
    };
    report(phase.name, &f, &ledger, started);
    assert!(
        f.disk.eio_writes + f.disk.eio_fsyncs > 0,
        "no fault injected"
    );
    assert!(
        ledger.totals.errors > 0,
        "no injected fault reached a caller"
    );
    assert_eq!((f.lost.iter().sum::<u64>(), f.corrupt), (0, 0));
    assert_eq!(
        ledger.totals.reissued, 0,
        "a lease token was handed out twice"
    );
    assert_eq!(ledger.overlapping_attempts(), Vec::<String>::new());
}
