//! The program's output: stdout and stderr read to their ends on threads
//! (progress lines stored as they come), and the attempt's outcome made of the
//! exit status and what was read.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ExitStatus};
use std::sync::mpsc;
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

/// Reads a stream to its end on a thread, keeping part of it.
pub(super) fn capture(
    stream: Option<impl Read + Send + 'static>,
    keep: Keep,
) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut stream) = stream {
        thread::spawn(move || {
            let mut out = Captured::default();
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep_part(&mut out, &buf[..n], keep);
            }
            let _ = tx.send(out);
        });
    }
    rx
}

/// Reads stderr to its end on a thread, keeping its tail; lines of the form
/// `JOBQ_PROGRESS <fraction 0-1> [message]` are progress reports (left out of
/// the tail), stored on the job by a thread of their own (see [`coalesce`]):
/// the program never waits on the database for them.
pub(super) fn capture_stderr(
    stream: Option<ChildStderr>,
    ctx: JobContext,
) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    if let Some(stream) = stream {
        thread::spawn(move || {
            let id = ctx.id();
            let (reports, writer) = coalesce(PROGRESS_EVERY, move |(f, message): (f64, String)| {
                if let Err(e) = ctx.progress(f, &message) {
                    log::debug!("job {id}: progress not stored: {e}");
                }
            });
            let mut out = Captured::default();
            let mut reader = std::io::BufReader::new(stream);
            let mut line = Vec::new();
            while let Ok(n) = std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
                if n == 0 {
                    break;
                }
                match progress_report(&line) {
                    Some(report) => {
                        let _ = reports.send(report);
                    }
                    None => keep_part(&mut out, &line, Keep::Tail(STDERR_TAIL_BYTES)),
                }
                line.clear();
            }
            // The last report is stored before the outcome is known.
            drop(reports);
            let _ = writer.join();
            let _ = tx.send(out);
        });
    }
    rx
}

/// The report `line` holds, when it is a progress line: a fraction in 0-1
/// and a message. Like the HTTP progress endpoint, a fraction outside 0-1
/// (NaN, inf, -1, 1.5) is not a report: the line stays in the stderr tail.
fn progress_report(line: &[u8]) -> Option<(f64, String)> {
    let rest = line.strip_prefix(PROGRESS_PREFIX.as_bytes())?;
    let text = String::from_utf8_lossy(rest);
    let text = text.trim_end();
    let (fraction, message) = text.split_once(' ').unwrap_or((text, ""));
    let f = fraction.parse::<f64>().ok()?;
    (0.0..=1.0).contains(&f).then(|| (f, message.to_string()))
}

/// Hands values sent on the returned channel to `store` on a thread of its
/// own, at most once per `every`: the first at once, then the latest of
/// those sent meanwhile; when the channel closes, the latest one not yet
/// stored is stored at once and the thread ends (join it to know).
fn coalesce<T: Send + 'static>(
    every: Duration,
    mut store: impl FnMut(T) + Send + 'static,
) -> (mpsc::Sender<T>, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<T>();
    let writer = thread::spawn(move || {
        let mut latest: Option<T> = None;
        let mut next = Instant::now();
        loop {
            let got = match latest {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(_) => rx.recv_timeout(next.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok(v) => latest = Some(v),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if let Some(v) = latest.take() {
                        store(v);
                    }
                    return;
                }
            }
            if Instant::now() >= next {
                if let Some(v) = latest.take() {
                    store(v);
                    next = Instant::now() + every;
                }
            }
        }
    });
    (tx, writer)
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

/// Waits for a reader; if the pipes stay open past the grace (a grandchild holds
/// them), kills the process group and takes what is there.
pub(super) fn collect(rx: mpsc::Receiver<Captured>, child: &mut Child) -> Captured {
    match rx.recv_timeout(READER_GRACE) {
        Ok(c) => c,
        Err(mpsc::RecvTimeoutError::Disconnected) => Captured::default(),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            kill_group(child);
            rx.recv_timeout(READER_GRACE).unwrap_or_default()
        }
    }
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
    use std::sync::{Arc, Mutex};

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

    /// A coalescer that collects what it stores, and a wait until `done`
    /// holds for what it stored (at most 30 s).
    fn collecting(every: Duration) -> (Stored, mpsc::Sender<u32>, thread::JoinHandle<()>) {
        let stored = Stored::default();
        let sink = stored.clone();
        let (tx, writer) = coalesce(every, move |v| sink.lock().unwrap().push(v));
        (stored, tx, writer)
    }

    fn wait_until(stored: &Stored, done: impl Fn(&[u32]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&stored.lock().unwrap()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn coalesced_values_store_the_first_at_once_and_the_last_when_the_channel_closes() {
        // An interval far longer than sending takes: only the first value and
        // the last one are stored.
        let (stored, tx, writer) = collecting(Duration::from_secs(30));
        tx.send(0).unwrap();
        wait_until(&stored, |s| !s.is_empty());
        for v in 1..=10_000 {
            tx.send(v).unwrap();
        }
        drop(tx);
        writer.join().unwrap();
        assert_eq!(*stored.lock().unwrap(), vec![0, 10_000]);
    }

    #[test]
    fn coalesced_values_sent_after_the_interval_are_stored_without_a_close() {
        let (stored, tx, writer) = collecting(Duration::from_millis(1));
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        wait_until(&stored, |s| s.last() == Some(&2));
        assert_eq!(
            stored.lock().unwrap().last(),
            Some(&2),
            "the latest is stored while the channel is open"
        );
        drop(tx);
        writer.join().unwrap();
    }
}
