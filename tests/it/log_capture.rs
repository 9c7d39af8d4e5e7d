//! A `log` logger that keeps every record, so tests can count log lines.

use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}", r.level(), r.args());
            LINES.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    }

    fn flush(&self) {}
}

/// Installs the capturing logger for this test process (once).
pub fn install() {
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in the test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// How many captured lines contain `needle`.
pub fn count(needle: &str) -> usize {
    let lines = LINES.lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().filter(|l| l.contains(needle)).count()
}
