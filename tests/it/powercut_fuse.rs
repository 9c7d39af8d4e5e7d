//! The power-cut tests' FUSE filesystem: serves a [`Disk`] (one flat directory)
//! at a mount point, from a thread of the test process (the `fuser` crate, which
//! mounts with mount(2) as root and needs no C library).
//!
//! Files are opened with the kernel's page cache kept (`FOPEN_KEEP_CACHE`) and no
//! writeback cache, so every write() reaches the disk model at once, and SQLite's
//! `-shm` file can be mapped shared by several processes. Byte-range locks are
//! the kernel's own (no POSIX lock support is advertised).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyWrite, Request, WriteFlags,
};

use crate::powercut_fs::Disk;

const TTL: Duration = Duration::from_secs(1);

/// The filesystem: a shared handle on the disk model.
struct PowerFs(Arc<Mutex<Disk>>);

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(|p| p.into_inner())
}

fn attr(ino: u64, size: Option<u64>) -> FileAttr {
    let (kind, perm) = match size {
        None => (FileType::Directory, 0o755),
        Some(_) => (FileType::RegularFile, 0o644),
    };
    let size = size.unwrap_or(0);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl PowerFs {
    fn disk(&self) -> MutexGuard<'_, Disk> {
        lock(&self.0)
    }

    /// Runs a mutating request on the disk and notes it with its outcome.
    fn run<T: std::fmt::Debug>(
        &self,
        req: &Request,
        what: std::fmt::Arguments,
        f: impl FnOnce(&mut Disk) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let mut disk = self.disk();
        let out = f(&mut disk);
        let n = disk.stats.ops;
        disk.note(format!("{n} pid {} {what}: {out:?}", req.pid()));
        out
    }

    /// The attributes of `ino` (1 is the root directory).
    fn attr_of(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        if ino.0 == 1 {
            return Ok(attr(1, None));
        }
        let size = self.disk().size(ino.0).ok_or(Errno::ENOENT)?;
        Ok(attr(ino.0, Some(size)))
    }
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (parent.0 == 1).then(|| self.disk().lookup(name)).flatten();
        match found.map(|ino| self.attr_of(INodeNo(ino))) {
            Some(Ok(a)) => reply.entry(&TTL, &a, Generation(0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(ino) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Owner, mode and times are not modelled; a size change is.
        if let Some(size) = size {
            let r = self.run(req, format_args!("truncate {} {size}", ino.0), |d| {
                d.truncate(ino.0, size)
            });
            if let Err(e) = r {
                return reply.error(e);
            }
        }
        match self.attr_of(ino) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, req: &Request, _parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.run(req, format_args!("unlink {name:?}"), |d| d.unlink(name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.run(req, format_args!("open {}", ino.0), |d| d.open(ino.0)) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.disk().release(fh.0);
        reply.ok();
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.disk().read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let what = format_args!("write {} @{offset} +{}", ino.0, data.len());
        match self.run(req, what, |d| d.write(ino.0, offset, data)) {
            Ok(()) => reply.written(u32::try_from(data.len()).expect("write size")),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lo: LockOwner, r: ReplyEmpty) {
        r.ok();
    }

    fn fsync(&self, req: &Request, ino: INodeNo, fh: FileHandle, _ds: bool, reply: ReplyEmpty) {
        match self.run(req, format_args!("fsync {} fh {}", ino.0, fh.0), |d| {
            d.fsync(fh.0)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 != 1 {
            return reply.error(Errno::ENOTDIR);
        }
        let mut entries = vec![(".".into(), 1, FileType::Directory)];
        entries.push(("..".into(), 1, FileType::Directory));
        let files = self.disk().names().into_iter();
        entries.extend(files.map(|(n, i)| (n, i, FileType::RegularFile)));
        for (i, (name, ino, kind)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, req: &Request, _ino: INodeNo, _fh: FileHandle, _ds: bool, r: ReplyEmpty) {
        match self.run(req, format_args!("fsync dir"), |d| d.fsync_dir()) {
            Ok(()) => r.ok(),
            Err(e) => r.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        if parent.0 != 1 {
            return reply.error(Errno::ENOENT);
        }
        let created = self.run(req, format_args!("create {name:?}"), |d| d.create(name));
        let opened =
            created.and_then(|ino| Ok((self.attr_of(INodeNo(ino))?, self.disk().open(ino)?)));
        match opened {
            Ok((a, fh)) => reply.created(
                &TTL,
                &a,
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(e),
        }
    }
}

/// A mounted [`Disk`]; unmounted (lazily, if still busy) on drop.
pub struct Mounted {
    /// The mount point.
    pub at: PathBuf,
    /// The disk, shared with the filesystem thread.
    pub disk: Arc<Mutex<Disk>>,
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    /// Mounts `disk` at the empty directory `at`, or says why it cannot.
    pub fn mount(disk: Disk, at: &Path) -> Result<Mounted, String> {
        let disk = Arc::new(Mutex::new(disk));
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("jobq-powercut".into()),
            fuser::MountOption::NoAtime,
        ];
        let session = fuser::spawn_mount(PowerFs(disk.clone()), at, &config)
            .map_err(|e| format!("FUSE mount at {} refused: {e}", at.display()))?;
        Ok(Mounted {
            at: at.to_path_buf(),
            disk,
            session: Some(session),
        })
    }

    /// The disk model.
    pub fn disk(&self) -> MutexGuard<'_, Disk> {
        lock(&self.disk)
    }

    /// Unmounts, once the last process using the mount is gone (a killed
    /// process may still be closing its files), and ends the session's thread.
    pub fn unmount(mut self) {
        let at = std::ffi::CString::new(self.at.as_os_str().as_encoded_bytes()).unwrap();
        let mut last = None;
        crate::util::wait_for("the mount to be released", Duration::from_secs(30), || {
            // SAFETY: umount2 with a valid NUL-terminated path; it touches no memory of ours.
            let rc = unsafe { libc::umount2(at.as_ptr(), 0) };
            last = Some(std::io::Error::last_os_error());
            rc == 0 || last.as_ref().and_then(|e| e.raw_os_error()) != Some(libc::EBUSY)
        });
        if let Some(s) = self.session.take() {
            match s.join() {
                // The kernel may end the session's reads with "connection aborted".
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                other => other.unwrap_or_else(|e| panic!("FUSE session: {e} (umount: {last:?})")),
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.session.take().is_some() {
            // A failed test: detach the mount so the temp dir can go.
            let at = std::ffi::CString::new(self.at.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: umount2 with a valid NUL-terminated path; it touches no memory of ours.
            unsafe { libc::umount2(at.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
