//! A disk that loses power: the model behind the power-cut tests' FUSE
//! filesystem (`powercut_fuse.rs`). One flat directory of files held in memory.
//!
//! The model, per file: what processes read (`data`), the durable image
//! (`durable`), and the changes since the file's last fsync (`pending`: writes
//! and size changes, in order). An fsync or fdatasync of the file applies its
//! pending changes to the durable image. Names are stricter: a create or an
//! unlink becomes durable only when the directory is fsynced (until then the
//! durable directory still names the old file, whose durable image is kept), and
//! fsyncing a file does not make its name durable.
//!
//! The power goes at a chosen mutating request (that request and every later one
//! fail with EIO; nothing after it reaches the durable image). At the cut, the
//! pending changes are discarded, or, for a "torn" cut, each is kept or
//! discarded at random (in order), as a disk that wrote back some dirty pages
//! before it lost power.
//!
//! Faults: in a chosen window, a write or an fsync fails with EIO at random,
//! sparing SQLite's `-shm` file and, unless the plan says otherwise, fsyncs of
//! the main database file (`rel_fsyncgate.rs` shows why). A failed fsync discards the file's pending
//! changes while readers still see them, as Linux does since PostgreSQL's
//! "fsyncgate": the data is gone from the disk, whoever wrote it. As Linux since
//! 4.13 (errseq), the error is reported once to every file handle that was open
//! when it happened, at its next fsync; a handle that already saw it, or was
//! opened later, gets success from a later fsync.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::Path;

use fuser::Errno;

use crate::rel_crash::Rng;

/// A change to a file not yet durable.
enum Op {
    Write(u64, Vec<u8>),
    Truncate(u64),
}

impl Op {
    fn apply(&self, buf: &mut Vec<u8>) {
        match self {
            Op::Write(off, data) => {
                let off = usize::try_from(*off).expect("offset");
                if buf.len() < off + data.len() {
                    buf.resize(off + data.len(), 0);
                }
                buf[off..off + data.len()].copy_from_slice(data);
            }
            Op::Truncate(len) => buf.resize(usize::try_from(*len).expect("size"), 0),
        }
    }
}

struct File {
    name: OsString,
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Op>,
    /// Failed fsyncs so far (each handle reports each once).
    errors: u64,
}

/// An open file: its inode, and the file's errors it has reported.
struct Handle {
    ino: u64,
    seen: u64,
}

/// When the power goes and which faults are injected before.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The power goes at this mutating request (1 = the first).
    pub cut_at: u64,
    /// Keep a random part of the pending changes at the cut (else none).
    pub torn: bool,
    /// Inject faults into requests before this one (0: none).
    pub faults_until: u64,
    /// A write or fsync in the window fails with probability 1/`fault_one_in`.
    pub fault_one_in: u64,
    /// Also fail fsyncs of the main database file (SQLite's checkpoint cannot
    /// survive those: RELIABILITY.md).
    pub db_fsync_faults: bool,
    /// Seeds the disk's own choices (faults, torn cuts).
    pub seed: u64,
}

/// What the disk saw, for the figures.
#[derive(Debug, Default, Clone)]
pub struct DiskStats {
    /// Mutating requests served (writes, size changes, fsyncs, creates, unlinks).
    pub ops: u64,
    /// Writes failed with an injected EIO.
    pub eio_writes: u64,
    /// Fsyncs failed with an injected EIO (their pending changes discarded).
    pub eio_fsyncs: u64,
    /// Later fsyncs of other handles that reported such a failure.
    pub eio_reported_later: u64,
    /// Where the power went, e.g. `fsync wal`; None before the cut.
    pub cut_at: Option<String>,
    /// When, in nanoseconds of the wall clock.
    pub cut_ns: u128,
    /// Pending changes discarded at the cut, and kept by a torn cut.
    pub discarded: u64,
    /// Pending changes kept by a torn cut.
    pub kept: u64,
}

/// The whole disk: files by inode (the root directory is inode 1).
pub struct Disk {
    files: HashMap<u64, File>,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    names: BTreeMap<OsString, u64>,
    durable_names: BTreeMap<OsString, u64>,
    next_ino: u64,
    plan: Plan,
    rng: Rng,
    /// What the disk saw.
    pub stats: DiskStats,
    /// The last requests, for a failed round's evidence.
    pub trace: std::collections::VecDeque<String>,
    /// A scripted fault: the next such request (`fsync`, `db`) fails with EIO.
    pub fail_next: Option<(String, &'static str)>,
}

/// A short name for a file's role: `db`, `wal`, `shm`, or `other`.
fn role(name: &OsStr) -> &'static str {
    let name = name.to_string_lossy();
    match () {
        _ if name.ends_with("-wal") => "wal",
        _ if name.ends_with("-shm") => "shm",
        _ if name.ends_with(".db") => "db",
        _ => "other",
    }
}

impl Disk {
    /// A disk whose files, all durable, are the regular files of `dir`.
    pub fn load(dir: &Path, plan: Plan) -> Disk {
        let mut disk = Disk {
            files: HashMap::new(),
            handles: HashMap::new(),
            next_fh: 1,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            next_ino: 2,
            plan,
            rng: Rng::seeded(plan.seed),
            stats: DiskStats::default(),
            trace: Default::default(),
            fail_next: None,
        };
        for entry in std::fs::read_dir(dir).expect("read image dir") {
            let entry = entry.expect("dir entry");
            let data = std::fs::read(entry.path()).expect("read image file");
            let ino = disk.add(entry.file_name(), data.clone());
            disk.files.get_mut(&ino).expect("file").durable = data;
            disk.durable_names.insert(entry.file_name(), ino);
        }
        disk
    }

    /// Writes the durable image (what survived the cut) into the empty `dir`.
    pub fn save_durable(&self, dir: &Path) {
        for (name, ino) in &self.durable_names {
            std::fs::write(dir.join(name), &self.files[ino].durable).expect("write image");
        }
    }

    /// True once the power went.
    pub fn is_cut(&self) -> bool {
        self.stats.cut_at.is_some()
    }

    /// The power goes now: pending changes are lost (a torn cut keeps some).
    pub fn cut(&mut self, at: String) {
        if self.is_cut() {
            return;
        }
        self.stats.cut_at = Some(at);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        self.stats.cut_ns = now.expect("clock").as_nanos();
        for file in self.files.values_mut() {
            for op in file.pending.drain(..) {
                if self.plan.torn && self.rng.below(2) == 0 {
                    op.apply(&mut file.durable);
                    self.stats.kept += 1;
                } else {
                    self.stats.discarded += 1;
                }
            }
        }
    }

    fn add(&mut self, name: OsString, data: Vec<u8>) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        let file = File {
            name: name.clone(),
            data,
            durable: Vec::new(),
            pending: Vec::new(),
            errors: 0,
        };
        self.files.insert(ino, file);
        self.names.insert(name, ino);
        ino
    }

    /// Admits one mutating request: EIO once the power went, or when this is the
    /// request the power goes at, or when a fault is injected (`faultable`).
    fn gate(&mut self, what: &str, ino: Option<u64>, faultable: bool) -> Result<(), Errno> {
        if self.is_cut() {
            return Err(Errno::EIO);
        }
        self.stats.ops += 1;
        let name = ino.and_then(|i| self.files.get(&i)).map(|f| f.name.clone());
        let role = name.as_deref().map_or("dir", role);
        if self.stats.ops >= self.plan.cut_at {
            self.cut(format!("{what} {role}"));
            return Err(Errno::EIO);
        }
        if faultable && self.fail_next == Some((what.to_string(), role)) {
            self.fail_next = None;
            return Err(Errno::EIO);
        }
        let window = self.stats.ops < self.plan.faults_until && self.plan.fault_one_in > 0;
        let db_fsync = what == "fsync" && role == "db";
        let spared = role == "shm" || (db_fsync && !self.plan.db_fsync_faults);
        if faultable && window && !spared && self.rng.below(self.plan.fault_one_in) == 0 {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Notes a request (the last 20,000 are kept).
    pub fn note(&mut self, text: String) {
        if self.trace.len() == 20_000 {
            self.trace.pop_front();
        }
        self.trace.push_back(text);
    }

    /// The inode named `name`, if any.
    pub fn lookup(&self, name: &OsStr) -> Option<u64> {
        self.names.get(name).copied()
    }

    /// The current names, for readdir.
    pub fn names(&self) -> Vec<(OsString, u64)> {
        self.names.iter().map(|(n, i)| (n.clone(), *i)).collect()
    }

    /// The size readers see, None for an unknown inode.
    pub fn size(&self, ino: u64) -> Option<u64> {
        self.files.get(&ino).map(|f| f.data.len() as u64)
    }

    /// Creates an empty file (or finds the existing one).
    pub fn create(&mut self, name: &OsStr) -> Result<u64, Errno> {
        if let Some(ino) = self.lookup(name) {
            return Ok(ino);
        }
        self.gate("create", None, false)?;
        Ok(self.add(name.to_os_string(), Vec::new()))
    }

    /// Opens a file: a new handle.
    pub fn open(&mut self, ino: u64) -> Result<u64, Errno> {
        let seen = self.files.get(&ino).ok_or(Errno::ENOENT)?.errors;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, seen });
        Ok(fh)
    }

    /// Closes a handle.
    pub fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    /// Removes a name (the durable directory keeps it until a directory fsync).
    pub fn unlink(&mut self, name: &OsStr) -> Result<(), Errno> {
        self.lookup(name).ok_or(Errno::ENOENT)?;
        self.gate("unlink", None, false)?;
        self.names.remove(name);
        Ok(())
    }

    /// Reads up to `size` bytes at `off`.
    pub fn read(&self, ino: u64, off: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let data = &self.files.get(&ino).ok_or(Errno::ENOENT)?.data;
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(data[start..end].to_vec())
    }

    /// Writes `bytes` at `off`: visible now, durable at the file's next fsync.
    pub fn write(&mut self, ino: u64, off: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.files.get(&ino).ok_or(Errno::ENOENT)?;
        if let Err(e) = self.gate("write", Some(ino), true) {
            self.stats.eio_writes += u64::from(!self.is_cut());
            return Err(e);
        }
        self.change(ino, Op::Write(off, bytes.to_vec()));
        Ok(())
    }

    /// Sets the size: visible now, durable at the file's next fsync.
    pub fn truncate(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
        self.files.get(&ino).ok_or(Errno::ENOENT)?;
        self.gate("truncate", Some(ino), false)?;
        self.change(ino, Op::Truncate(size));
        Ok(())
    }

    fn change(&mut self, ino: u64, op: Op) {
        let file = self.files.get_mut(&ino).expect("file");
        op.apply(&mut file.data);
        file.pending.push(op);
    }

    /// fsync/fdatasync through handle `fh`: the file's pending changes become
    /// durable. An injected failure discards them instead (fsyncgate); every
    /// handle open then reports it once.
    pub fn fsync(&mut self, fh: u64) -> Result<(), Errno> {
        let ino = self.handles.get(&fh).ok_or(Errno::EBADF)?.ino;
        let gate = self.gate("fsync", Some(ino), true);
        if self.is_cut() {
            return gate;
        }
        let file = self.files.get_mut(&ino).expect("file");
        if gate.is_ok() {
            file.pending
                .drain(..)
                .for_each(|op| op.apply(&mut file.durable));
        } else {
            file.pending.clear();
            file.errors += 1;
            self.stats.eio_fsyncs += 1;
        }
        let handle = self.handles.get_mut(&fh).expect("handle");
        let unseen = handle.seen != file.errors;
        handle.seen = file.errors;
        if gate.is_ok() && unseen {
            self.stats.eio_reported_later += 1;
            return Err(Errno::EIO);
        }
        gate
    }

    /// fsync of the directory: creates and unlinks become durable.
    pub fn fsync_dir(&mut self) -> Result<(), Errno> {
        self.gate("fsync", None, false)?;
        self.durable_names = self.names.clone();
        Ok(())
    }
}
