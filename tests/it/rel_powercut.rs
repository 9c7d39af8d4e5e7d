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

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::powercut_check::{inspect, Found, Ledger};
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

fn cuts_wanted(share: usize) -> usize {
    let full = std::env::var("JOBQ_POWERCUT_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    (full / share).max(if share == 1 { 1 } else { 12 })
}

/// The most mutating requests a round runs before its cut.
const MAX_OPS: u64 = 8000;

/// What a run measured.
#[derive(Default)]
struct Figures {
    cuts: u64,
    torn: u64,
    cut_points: BTreeMap<String, u64>,
    disk: DiskStats,
    lost: Vec<u64>,
    corrupt: u64,
    jobs: u64,
}

impl Figures {
    fn add(&mut self, stats: &DiskStats, torn: bool, found: &Found) {
        self.cuts += 1;
        self.torn += u64::from(torn);
        let at = stats.cut_at.clone().unwrap_or_default();
        *self.cut_points.entry(at).or_default() += 1;
        self.disk.ops += stats.ops;
        self.disk.eio_writes += stats.eio_writes;
        self.disk.eio_fsyncs += stats.eio_fsyncs;
        self.disk.eio_reported_later += stats.eio_reported_later;
        self.disk.discarded += stats.discarded;
        self.disk.kept += stats.kept;
        self.lost.push(found.lost());
        self.corrupt += u64::from(found.integrity != "ok");
        self.jobs = found.jobs;
    }
}

/// Mounts `disk`, or says SKIPPED (None) when this machine refuses FUSE, unless
/// `JOBQ_REQUIRE_FUSE=1`.
fn mount_or_skip(disk: Disk, at: &Path, label: &str) -> Option<Mounted> {
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

/// The processes that have a file of `dir` open or mapped.
fn users_of(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut users = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let fds = std::fs::read_dir(entry.path().join("fd"))
            .into_iter()
            .flatten();
        let open = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p.starts_with(&prefix)));
        let maps = std::fs::read_to_string(entry.path().join("maps")).unwrap_or_default();
        if open || maps.contains(&prefix) {
            users.push(pid);
        }
    }
    users
}

/// The driver processes of a round, each the leader of its own process group
/// (`pc_cli` starts `jobq` processes in it); SIGKILLed on drop.
struct Drivers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Drivers {
    /// Starts the drivers on the mounted database `db`.
    fn start(dir: &Path, db: &Path, round: usize, seed: u64, phase: &Phase) -> Drivers {
        let roles = ["pc_enqueuer", "pc_worker", "pc_worker", "pc_cli"];
        let mut drivers = Drivers {
            children: Vec::new(),
            logs: Vec::new(),
        };
        for (i, role) in roles.iter().enumerate() {
            let log = dir.join(format!("acks/{round}-{i}.log"));
            let mut cmd = crate::child::child_command(role, db);
            cmd.env("JOBQ_PC_ACKS", dir.join(format!("acks/{round}-{i}.acks")))
                .env("JOBQ_PC_DURABILITY", phase.durability)
                .env("JOBQ_PC_SEED", (seed + i as u64).to_string())
                .env("JOBQ_PC_CONFIG", dir.join("jobq.toml"))
                .stderr(std::fs::File::create(&log).unwrap())
                .process_group(0);
            drivers.children.push(cmd.spawn().expect("spawn a driver"));
            drivers.logs.push(log);
        }
        drivers
    }

    /// The log of the first driver that exited, if one did (they never stop).
    fn exited(&mut self) -> Option<String> {
        let i = (self.children.iter_mut()).position(|c| c.try_wait().ok().flatten().is_some())?;
        Some(std::fs::read_to_string(&self.logs[i]).unwrap_or_default())
    }

    /// What each driver process is doing, for a timeout's message.
    fn describe(&self) -> String {
        let state = |pid: u32, what: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/{what}")).unwrap_or_default()
        };
        let mut out = String::new();
        for (c, log) in self.children.iter().zip(&self.logs) {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail = &tail[tail.len().saturating_sub(400)..];
            let (wchan, stack) = (state(c.id(), "wchan"), state(c.id(), "stack"));
            out += &format!("\n{}: wchan {wchan}, stack {stack}, log: {tail}", c.id());
        }
        out
    }

    /// SIGKILLs every process group and reaps the drivers.
    fn kill(&mut self) {
        for child in &self.children {
            let pgid = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) on a process group this test created; touches no memory.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        for mut child in self.children.drain(..) {
            child.wait().expect("reap a driver");
        }
    }
}

impl Drop for Drivers {
    fn drop(&mut self) {
        self.kill();
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
/// survived as the next image. Returns the disk's figures and the plan.
fn round(
    dir: &Path,
    image: &Path,
    next: &Path,
    n: usize,
    rng: &mut Rng,
    phase: &Phase,
) -> Option<(DiskStats, Plan)> {
    let cut_at = 1 + rng.below(MAX_OPS);
    let plan = Plan {
        cut_at,
        torn: rng.below(2) == 0,
        faults_until: if phase.faults { cut_at * 3 / 4 } else { 0 },
        fault_one_in: 25,
        seed: rng.below(u64::MAX),
    };
    let mnt = dir.join(format!("mnt-{n}"));
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = mount_or_skip(Disk::load(image, plan), &mnt, phase.name)?;
    let mut drivers = Drivers::start(dir, &mnt.join("jobq.db"), n, rng.below(u64::MAX), phase);
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
    mounted.disk().save_durable(next);
    mounted.unmount();
    std::fs::remove_dir(&mnt).unwrap();
    Some((stats, plan))
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
        let (stats, plan) = round(dir, &image, &next, n, &mut rng, phase)?;
        ledger.read_logs(&dir.join("acks"), stats.cut_ns);
        let (integrity, rows) = inspect(&next, &dir.join(format!("check-{n}")));
        let found = ledger.check(&rows, integrity);
        figures.add(&stats, plan.torn, &found);
        let what = format!("{} cut {n} ({plan:?}, {stats:?}): {found:?}", phase.name);
        assert_eq!(found.integrity, "ok", "{what}");
        if phase.durability == "full" {
            assert_eq!(found.lost(), 0, "acknowledged but lost: {what}");
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

fn report(phase: &Phase, f: &Figures, ledger: &Ledger, started: Instant) {
    let t = ledger.totals;
    let lost: u64 = f.lost.iter().sum();
    let max_lost = f.lost.iter().max().copied().unwrap_or(0);
    eprintln!(
        "rel_powercut[{}]: {} cuts ({} torn) at {:?}; {} requests, {} unsynced changes discarded \
         and {} kept by torn cuts; injected I/O errors: {} writes, {} fsyncs (and {} later \
         fsyncs of other handles told of one); jobq errors reported: {}; acknowledged: {} enqueues, {} claims, {} completions, {} failed attempts; \
         lost: {lost} (at most {max_lost} in one cut); lease tokens handed out twice: {}; \
         corrupt: {}; {} jobs in the file; {:.0?}",
        phase.name,
        f.cuts,
        f.torn,
        f.cut_points,
        f.disk.ops,
        f.disk.discarded,
        f.disk.kept,
        f.disk.eio_writes,
        f.disk.eio_fsyncs,
        f.disk.eio_reported_later,
        t.errors,
        t.enqueues,
        t.claims,
        t.completions,
        t.fails,
        t.reissued,
        f.corrupt,
        f.jobs,
        started.elapsed()
    );
    eprintln!(
        "rel_powercut[{}]: errors seen: {:?}",
        phase.name, ledger.error_samples
    );
}

#[test]
fn power_cut_loses_no_acknowledged_job_under_full() {
    let phase = Phase {
        name: "full",
        durability: "full",
        cuts: cuts_wanted(1),
        faults: false,
    };
    let started = Instant::now();
    let Some((f, ledger)) = run(&phase) else {
        return;
    };
    report(&phase, &f, &ledger, started);
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
        cuts: cuts_wanted(4),
        faults: false,
    };
    let started = Instant::now();
    let Some((f, ledger)) = run(&phase) else {
        return;
    };
    report(&phase, &f, &ledger, started);
    assert_eq!(f.corrupt, 0);
    assert!(ledger.totals.enqueues > 0 && ledger.totals.completions > 0);
}

#[test]
fn failed_writes_and_fsyncs_are_reported_and_never_acknowledged() {
    let phase = Phase {
        name: "eio",
        durability: "full",
        cuts: cuts_wanted(4),
        faults: true,
    };
    let started = Instant::now();
    let Some((f, ledger)) = run(&phase) else {
        return;
    };
    report(&phase, &f, &ledger, started);
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
