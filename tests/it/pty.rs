//! A pseudo-terminal for tests of what `jobq` does on a terminal: the child
//! writes to the slave side; a thread collects what arrives on the master.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

/// A terminal of a given size: give [`Pty::slave`] to the child as stdout,
/// read what it drew with [`Pty::output`].
pub struct Pty {
    slave: File,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    /// Opens a pseudo-terminal of `rows` x `cols` and starts collecting its output.
    pub fn open(rows: u16, cols: u16) -> Pty {
        // SAFETY: plain libc calls on a descriptor this function owns; the name
        // buffer outlives the calls that fill and read it.
        let (master, path) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
            let size = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            assert_eq!(libc::ioctl(fd, libc::TIOCSWINSZ, &size), 0, "TIOCSWINSZ");
            let path = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
            (File::from_raw_fd(fd), path)
        };
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .expect("open the pty's slave side");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || collect(master, &sink));
        Pty { slave, seen }
    }

    /// A handle on the terminal for a child's stdout.
    pub fn slave(&self) -> File {
        self.slave.try_clone().expect("dup the pty's slave side")
    }

    /// Everything written to the terminal so far, as text.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }
}

/// Reads the master side until every slave handle is closed (EIO).
fn collect(mut master: File, sink: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = master.read(&mut buf) {
        sink.lock().unwrap().extend_from_slice(&buf[..n]);
    }
}
