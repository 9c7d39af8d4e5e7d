//! The program's output: stdout and stderr read to their ends on threads
//! (progress lines stored as they come), and the attempt's outcome made of the
//! exit status and what was read.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ExitStatus};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use jobq::failure::drop_cut_front;
use jobq::retry::{classify, ErrorClass};
use jobq::{HandlerResult, JobContext, JobError};

use super::{kill_group, EX_SNOOZE, EX_TEMPFAIL, PROGRESS_PREFIX};

/// How much of the end of stderr is kept for the error message, in bytes.
const STDERR_TAIL_BYTES: usize = 2048;
/// How long output readers may run on after the program ended (a grandchild may
/// hold the pipes) before the process group is killed.
const READER_GRACE: Duration = Duration::from_secs(2);

/// The shortest time between two progress reports stored for one attempt. A
/// program that writes reports faster has the latest one stored at most this
/// often; its last report is always stored before the attempt ends.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Which part of a stream to keep.
#[derive(Clone, Copy)]
pub(super) enum Keep {
    /// The first n bytes.
    Head(usize),
    /// The last n bytes.
    Tail(usize),
}

/// Bytes read from a stream, and whether some were dropped.
#[derive(Default)]
pub(super) struct Captured {
    bytes: Vec<u8>,
    dropped: bool,
}

/// What a reader thread has kept of a stream so far, and a channel that
/// disconnects when it reached the end.
pub(super) struct Reading {
    kept: Arc<Mutex<Captured>>,
    ended: mpsc::Receiver<()>,
}

impl Reading {
    /// A reading, and what its thread keeps and drops at the end.
    fn new() -> (Reading, Arc<Mutex<Captured>>, mpsc::Sender<()>) {
        let kept = Arc::new(Mutex::new(Captured::default()));
        let (end, ended) = mpsc::channel();
        let r = Reading {
            kept: kept.clone(),
            ended,
        };
        (r, kept, end)
    }
}

fn keep(kept: &Mutex<Captured>, chunk: &[u8], how: Keep) {
    keep_part(
        &mut kept.lock().unwrap_or_else(|p| p.into_inner()),
        chunk,
        how,
    );
}

/// Reads a stream to its end on a thread, keeping part of it.
pub(super) fn capture(stream: Option<impl Read + Send + 'static>, how: Keep) -> Reading {
    let (reading, kept, end) = Reading::new();
    if let Some(mut stream) = stream {
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep(&kept, &buf[..n], how);
            }
            drop(end);
        });
    }
    reading
}

/// Reads stderr to its end on a thread, keeping its tail; lines of the form
/// `JOBQ_PROGRESS <fraction 0-1> [message]` are progress reports (left out of
/// the tail), stored on the job by a thread of their own (see [`Coalesce`]):
/// the program never waits on the database for them, and only the latest
/// report not yet stored is held. [`Coalesce::finish`] stores the last one.
pub(super) fn capture_stderr(
    stream: Option<ChildStderr>,
    ctx: JobContext,
) -> (Reading, Coalesce<(f64, String)>) {
    let (reading, kept, end) = Reading::new();
    let id = ctx.id();
    let progress = Coalesce::new(PROGRESS_EVERY, move |(f, message): (f64, String)| {
        if let Err(e) = ctx.progress(f, &message) {
            log::debug!("job {id}: progress not stored: {e}");
        }
    });
    if let Some(stream) = stream {
        let reports = progress.latest();
        thread::spawn(move || {
            lines(
                std::io::BufReader::new(stream),
                |line, whole| match progress_report(line).filter(|_| whole) {
                    Some(report) => reports.put(report),
                    None => keep(&kept, line, Keep::Tail(STDERR_TAIL_BYTES)),
                },
            );
            drop(end);
        });
    }
    (reading, progress)
}

/// The longest stderr line read whole; a longer one is text (never a
/// progress report), handed on in pieces, so a program that writes without
/// newlines costs no more memory than this.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads `reader` to its end (or a read error), calling `on_line` with each
/// line, its newline included, and `true`; a line longer than
/// [`MAX_LINE_BYTES`] goes to `on_line` in pieces, each with `false`.
fn lines(mut reader: impl std::io::BufRead, mut on_line: impl FnMut(&[u8], bool)) {
    let mut line = Vec::new();
    let mut long = false;
    loop {
        let (used, newline) = match reader.fill_buf() {
            Ok([]) | Err(_) => break,
            Ok(buf) => match buf[..buf.len().min(MAX_LINE_BYTES)]
                .iter()
                .position(|&b| b == b'\n')
            {
                Some(i) => {
                    line.extend_from_slice(&buf[..=i]);
                    (i + 1, true)
                }
                None => {
                    let piece = &buf[..buf.len().min(MAX_LINE_BYTES)];
                    line.extend_from_slice(piece);
                    (piece.len(), false)
                }
            },
        };
        reader.consume(used);
        if newline {
            on_line(&line, !long);
            line.clear();
            long = false;
        } else if line.len() > MAX_LINE_BYTES {
            on_line(&line, false);
            line.clear();
            long = true;
        }
    }
    if !line.is_empty() {
        on_line(&line, !long);
    }
}

/// The report `line` holds (at most [`MAX_LINE_BYTES`]), when it is a
/// progress line: a fraction in 0-1 and a message. Like the HTTP
/// progress endpoint, a fraction outside 0-1 (NaN, inf, -1, 1.5) is not a
/// report: the line stays in the stderr tail.
fn progress_report(line: &[u8]) -> Option<(f64, String)> {
    let rest = line.strip_prefix(PROGRESS_PREFIX.as_bytes())?;
    let text = String::from_utf8_lossy(rest);
    let text = text.trim_end();
    let (fraction, message) = text.split_once(' ').unwrap_or((text, ""));
    let f = fraction.parse::<f64>().ok()?;
    (0.0..=1.0).contains(&f).then(|| (f, message.to_string()))
}

/// The value waiting to be stored, and whether no more will come.
struct Slot<T> {
    state: Mutex<(Option<T>, bool)>,
    cv: Condvar,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, (Option<T>, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where values for a [`Coalesce`] go: each replaces the one not yet stored.
pub(super) struct Latest<T>(Arc<Slot<T>>);

impl<T> Latest<T> {
    pub(super) fn put(&self, value: T) {
        self.0.lock().0 = Some(value);
        self.0.cv.notify_one();
    }
}

/// Hands values put through [`Coalesce::latest`] to `store` on a thread of
/// its own, at most once per `every`: the first at once, then the latest of
/// those put meanwhile. Only one value waits at a time, whatever the rate
/// of puts or the time `store` takes. [`Coalesce::finish`] stores the one
/// still waiting at once and ends the thread (dropping it ends the thread
/// too, without waiting).
pub(super) struct Coalesce<T> {
    slot: Arc<Slot<T>>,
    writer: Option<thread::JoinHandle<()>>,
}

impl<T: Send + 'static> Coalesce<T> {
    pub(super) fn new(every: Duration, mut store: impl FnMut(T) + Send + 'static) -> Self {
        let slot = Arc::new(Slot {
            state: Mutex::new((None, false)),
            cv: Condvar::new(),
        });
        let shared = slot.clone();
        let writer = thread::spawn(move || {
            let mut next = Instant::now();
            let mut st = shared.lock();
            loop {
                let now = Instant::now();
                match (st.0.is_some(), st.1) {
                    (true, closed) if closed || now >= next => {
                        let value = st.0.take();
                        drop(st);
                        if let Some(v) = value {
                            store(v);
                        }
                        next = Instant::now() + every;
                        st = shared.lock();
                    }
                    (true, _) => st = wait(&shared, st, Some(next - now)),
                    (false, true) => return,
                    (false, false) => st = wait(&shared, st, None),
                }
            }
        });
        Coalesce {
            slot,
            writer: Some(writer),
        }
    }
}

impl<T> Coalesce<T> {
    pub(super) fn latest(&self) -> Latest<T> {
        Latest(self.slot.clone())
    }

    fn close(&self) {
        self.slot.lock().1 = true;
        self.slot.cv.notify_one();
    }

    /// Stores the value still waiting, if any, and ends the thread.
    pub(super) fn finish(mut self) {
        self.close();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl<T> Drop for Coalesce<T> {
    fn drop(&mut self) {
        self.close();
    }
}

fn wait<'a, T>(
    slot: &'a Slot<T>,
    st: MutexGuard<'a, (Option<T>, bool)>,
    limit: Option<Duration>,
) -> MutexGuard<'a, (Option<T>, bool)> {
    match limit {
        Some(d) => match slot.cv.wait_timeout(st, d) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        },
        None => slot.cv.wait(st).unwrap_or_else(|p| p.into_inner()),
    }
}

fn keep_part(out: &mut Captured, chunk: &[u8], keep: Keep) {
    match keep {
        Keep::Head(max) => {
            let room = max.saturating_sub(out.bytes.len());
            out.bytes.extend_from_slice(&chunk[..room.min(chunk.len())]);
            out.dropped |= chunk.len() > room;
        }
        Keep::Tail(max) => {
            out.bytes.extend_from_slice(chunk);
            if out.bytes.len() > 2 * max {
                let cut = out.bytes.len() - max;
                out.bytes.drain(..cut);
                out.dropped = true;
            }
        }
    }
}

/// Waits for a reader to reach the end; if the pipe stays open past the grace
/// (a grandchild holds it), kills the process group, waits once more, and
/// takes what was read by then (a grandchild outside the group may hold the
/// pipe for as long as it lives; its reader thread then ends with it).
pub(super) fn collect(reading: Reading, child: &mut Child) -> Captured {
    if let Err(mpsc::RecvTimeoutError::Timeout) = reading.ended.recv_timeout(READER_GRACE) {
        kill_group(child);
        let _ = reading.ended.recv_timeout(READER_GRACE);
    }
    std::mem::take(&mut *reading.kept.lock().unwrap_or_else(|p| p.into_inner()))
}

pub(super) fn outcome(status: ExitStatus, stdout: Captured, stderr: &Captured) -> HandlerResult {
    let tail = stderr_tail(stderr);
    match status.code() {
        Some(0) => Ok(result_of(stdout)),
        Some(EX_TEMPFAIL) => Err(JobError::Retryable(with_tail(
            "exited with status 75 (temporary failure)".into(),
            &tail,
        ))),
        Some(EX_SNOOZE) => Err(snooze(&stdout)),
        Some(code) => {
            let message = with_tail(format!("exited with status {code}"), &tail);
            Err(match classify(&tail) {
                ErrorClass::Retryable => JobError::Retryable(message),
                ErrorClass::Permanent => JobError::Permanent(message),
            })
        }
        None => {
            let signal = status.signal().unwrap_or(0);
            Err(JobError::Retryable(with_tail(
                format!("killed by signal {signal}"),
                &tail,
            )))
        }
    }
}

/// A snooze for the delay the program printed (`30s`, `5m` or whole seconds);
/// a retryable failure when stdout holds no delay.
fn snooze(stdout: &Captured) -> JobError {
    let text = String::from_utf8_lossy(&stdout.bytes);
    let text = text.trim();
    let delay = text
        .parse::<u64>()
        .map(Duration::from_secs)
        .ok()
        .or_else(|| jobq::duration::parse_duration(text).ok());
    match delay {
        Some(d) => JobError::Snooze(d),
        None => JobError::Retryable(format!(
            "exited with status {EX_SNOOZE} (snooze) but stdout holds no delay like 30s: {:?}",
            text.chars().take(40).collect::<String>()
        )),
    }
}

/// stdout as JSON, or `{"stdout": text}` (with `"stdout_truncated": true` when
/// more than [`MAX_STDOUT_BYTES`](super::MAX_STDOUT_BYTES) were written).
fn result_of(stdout: Captured) -> Value {
    if !stdout.dropped {
        if let Ok(v) = serde_json::from_slice::<Value>(&stdout.bytes) {
            return v;
        }
    }
    let text = String::from_utf8_lossy(&stdout.bytes).into_owned();
    if stdout.dropped {
        json!({"stdout": text, "stdout_truncated": true})
    } else {
        json!({"stdout": text})
    }
}

/// The last non-empty lines of stderr, trimmed. When the front was cut, the
/// partial first line goes ([`drop_cut_front`]): it may hold a secret whose key
/// was cut off, which redaction would miss.
fn stderr_tail(stderr: &Captured) -> String {
    let start = stderr.bytes.len().saturating_sub(STDERR_TAIL_BYTES);
    let text = String::from_utf8_lossy(&stderr.bytes[start..]);
    if stderr.dropped || start > 0 {
        drop_cut_front(&text).trim().to_string()
    } else {
        text.trim().to_string()
    }
}

fn with_tail(head: String, tail: &str) -> String {
    if tail.is_empty() {
        head
    } else {
        format!("{head}: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_without_an_end_is_handed_on_in_pieces_and_the_next_line_is_whole() {
        let mut input = vec![b'x'; 10 * MAX_LINE_BYTES];
        input.extend_from_slice(b"JOBQ_PROGRESS 0.5 inside\nJOBQ_PROGRESS 0.7 after\nlast");
        let sent = input.len();
        let mut got: Vec<(usize, bool)> = Vec::new();
        let mut whole_lines = Vec::new();
        lines(std::io::Cursor::new(input), |line, whole| {
            got.push((line.len(), whole));
            if whole {
                whole_lines.push(String::from_utf8_lossy(line).into_owned());
            }
        });
        let biggest = got.iter().map(|g| g.0).max().unwrap();
        assert!(biggest <= 2 * MAX_LINE_BYTES, "{biggest}");
        // The long line's end (with the report written on it) is not a line
        // of its own; the lines after it are.
        assert_eq!(whole_lines, ["JOBQ_PROGRESS 0.7 after\n", "last"]);
        let total: usize = got.iter().map(|g| g.0).sum();
        assert_eq!(total, sent, "every byte is handed on once");
    }

    #[test]
    fn progress_lines_are_reports_only_with_a_fraction_in_0_to_1() {
        let r = |s: &str| progress_report(s.as_bytes());
        assert_eq!(
            r("JOBQ_PROGRESS 0.25 reading files\n"),
            Some((0.25, "reading files".into()))
        );
        assert_eq!(r("JOBQ_PROGRESS 1\n"), Some((1.0, String::new())));
        for not in [
            "JOBQ_PROGRESS NaN\n",
            "JOBQ_PROGRESS 1.5 over\n",
            "JOBQ_PROGRESS -1\n",
            "progress 0.5\n",
        ] {
            assert_eq!(r(not), None, "{not}");
        }
    }

    type Stored = Arc<Mutex<Vec<u32>>>;

    /// A coalescer that collects what it stores.
    fn collecting(every: Duration) -> (Stored, Coalesce<u32>) {
        let stored = Stored::default();
        let sink = stored.clone();
        (
            stored,
            Coalesce::new(every, move |v| sink.lock().unwrap().push(v)),
        )
    }

    /// Waits until `done` holds for what was stored (at most 30 s).
    fn wait_until(stored: &Stored, done: impl Fn(&[u32]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&stored.lock().unwrap()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn coalesced_values_store_the_first_at_once_and_the_last_at_finish() {
        // An interval far longer than putting takes: only the first value and
        // the last one are stored.
        let (stored, c) = collecting(Duration::from_secs(30));
        let latest = c.latest();
        latest.put(0);
        wait_until(&stored, |s| !s.is_empty());
        for v in 1..=10_000 {
            latest.put(v);
        }
        c.finish();
        assert_eq!(*stored.lock().unwrap(), vec![0, 10_000]);
    }

    #[test]
    fn a_slow_store_holds_one_waiting_value_and_stores_the_latest() {
        // The store blocks until released: the values put meanwhile replace
        // one another (bounded memory), and the latest is stored next.
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let stored = Stored::default();
        let (sink, g) = (stored.clone(), gate.clone());
        let c = Coalesce::new(Duration::ZERO, move |v| {
            let _wait = g.lock().unwrap();
            sink.lock().unwrap().push(v)
        });
        let latest = c.latest();
        latest.put(0);
        for v in 1..=1_000 {
            latest.put(v);
        }
        drop(held);
        c.finish();
        let got = stored.lock().unwrap().clone();
        assert!(got.len() <= 2 && got.last() == Some(&1_000), "{got:?}");
    }

    #[test]
    fn coalesced_values_put_after_the_interval_are_stored_before_finish() {
        let (stored, c) = collecting(Duration::from_millis(1));
        let latest = c.latest();
        latest.put(1);
        latest.put(2);
        wait_until(&stored, |s| s.last() == Some(&2));
        assert_eq!(
            stored.lock().unwrap().last(),
            Some(&2),
            "the latest is stored while more may come"
        );
        c.finish();
    }
}
