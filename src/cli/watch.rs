//! `--watch`: redraw a view every second on a terminal until Ctrl-C; print it
//! once anywhere else. And the Ctrl-C that stops `--watch` and `--follow`.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::table::emit;
use crate::cli::{CliError, CliResult};

/// How often a watched view is redrawn.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Receives once SIGINT (Ctrl-C) or SIGTERM arrives: the command then stops
/// cleanly, exit 0.
pub struct Stop(Receiver<()>);

impl Stop {
    /// Catches SIGINT and SIGTERM from now on (they no longer end the process).
    ///
    /// # Errors
    /// A runtime error when the handlers cannot be installed.
    pub fn on_signals() -> CliResult<Stop> {
        let mut signals = Signals::new([SIGINT, SIGTERM])
            .map_err(|e| CliError::io("installing signal handlers", e))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in signals.forever() {
                let _ = tx.send(());
            }
        });
        Ok(Stop(rx))
    }

    /// Waits up to `d`; true when a signal asked to stop.
    pub fn wait(&self, d: Duration) -> bool {
        !matches!(self.0.recv_timeout(d), Err(RecvTimeoutError::Timeout))
    }
}

/// Shows `view` (one frame of text): redrawn every [`WATCH_EVERY`] in place
/// under a title line while stdout is a terminal, until Ctrl-C; printed once
/// when stdout is not a terminal. An error of the first frame ends the command;
/// a later one (a busy database, say) is shown in the frame and the view goes on.
///
/// # Errors
/// The first frame's error; a runtime error when the terminal cannot be written.
pub fn watch(title: &str, mut view: impl FnMut() -> CliResult<String>) -> CliResult {
    let first = view()?;
    if !std::io::stdout().is_terminal() {
        return emit(&first);
    }
    let stop = Stop::on_signals()?;
    let mut screen = Screen::start()?;
    let mut frame = first;
    loop {
        let clock = time::OffsetDateTime::now_utc();
        let at = format!(
            "{:02}:{:02}:{:02}Z",
            clock.hour(),
            clock.minute(),
            clock.second()
        );
        screen.draw(&format!(
            "{title}  (every 1s; Ctrl-C stops)  {at}\n\n{frame}"
        ))?;
        if stop.wait(WATCH_EVERY) {
            return screen.finish();
        }
        frame = view().unwrap_or_else(|e| format!("jobq: {e}"));
    }
}

/// The terminal while a view is redrawn: cursor hidden, frames drawn from the
/// top left, each line cut to the terminal's width and the frame to its height.
struct Screen {
    out: std::io::Stdout,
}

impl Screen {
    /// Clears the screen and hides the cursor.
    fn start() -> CliResult<Screen> {
        let s = Screen {
            out: std::io::stdout(),
        };
        s.write("\x1b[?25l\x1b[2J")?;
        Ok(s)
    }

    fn write(&self, text: &str) -> CliResult {
        let mut out = self.out.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| CliError::io("writing to the terminal", e))
    }

    /// Draws `frame` over the previous one.
    fn draw(&mut self, frame: &str) -> CliResult {
        let (rows, cols) = terminal_size().unwrap_or((24, 80));
        let mut text = String::from("\x1b[H");
        for line in frame.lines().take(rows.saturating_sub(1).max(1)) {
            text.extend(line.chars().take(cols));
            text.push_str("\x1b[K\n");
        }
        text.push_str("\x1b[J");
        self.write(&text)
    }

    /// Shows the cursor again, leaving the last frame on the screen.
    fn finish(self) -> CliResult {
        self.write("\x1b[?25h")
    }
}

/// The terminal's rows and columns, when stdout is one that says.
fn terminal_size() -> Option<(usize, usize)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_row > 0 && size.ws_col > 0)
        .then(|| (usize::from(size.ws_row), usize::from(size.ws_col)))
}
