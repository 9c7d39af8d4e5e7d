//! The exec handler: runs a program (no shell) with the payload JSON on stdin.
//!
//! - Environment: jobq's own (`inherit_env`, default true) without jobq's
//!   secrets ([`SECRET_ENV`]), then the handler's `env`, then `JOBQ_JOB_ID`,
//!   `JOBQ_ATTEMPT`, `JOBQ_JOB_TYPE`, `JOBQ_FENCING_TOKEN`. The payload never
//!   reaches argv or a shell.
//! - Exit 0: completed; the result is stdout parsed as JSON, or `{"stdout": text}`
//!   when it is not JSON (stdout is capped at [`MAX_STDOUT_BYTES`]).
//! - Exit 75 (`EX_TEMPFAIL`): retryable.
//! - Progress: lines `JOBQ_PROGRESS <fraction 0-1> [message]` on stderr are
//!   stored as the job's progress, at most every 100 ms (the latest each time;
//!   the last one before the attempt ends).
//! - Exit 79 ([`EX_SNOOZE`]) with a delay on stdout (`30s`, `5m`, or whole
//!   seconds): snoozed, i.e. run again after the delay without using an attempt.
//! - Any other exit: the end of stderr is classified by [`jobq::classify`].
//! - Past the timeout the program (and its process group) is killed and the attempt
//!   is retryable "timed out after N s"; on cancellation it is killed too.

mod output;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use jobq::duration::format_secs;
use jobq::{Handler, HandlerResult, JobContext, JobError};

use output::{capture, capture_stderr, collect, outcome, Keep};

/// The most stdout kept from a program, in bytes (1 MiB); the rest is read and dropped.
pub const MAX_STDOUT_BYTES: usize = 1 << 20;
/// Exit status meaning "temporary failure, try again" (sysexits.h `EX_TEMPFAIL`).
pub const EX_TEMPFAIL: i32 = 75;
/// Exit status meaning "not now: run me again after the delay on stdout,
/// without using an attempt" (the first code after sysexits.h's range).
pub const EX_SNOOZE: i32 = 79;
/// The prefix of a progress line on an exec program's stderr.
pub const PROGRESS_PREFIX: &str = "JOBQ_PROGRESS ";

/// Environment variables that hold jobq's own secrets: never passed to a
/// handler's program. `JOBQ_DB` is one too when it is a URL with a password.
pub const SECRET_ENV: [&str; 2] = ["JOBQ_CRON_SECRET", "JOBQ_METRICS_TOKEN"];

/// True when `JOBQ_DB` holds a URL with credentials (`scheme://user:pass@host`).
fn db_env_has_password() -> bool {
    std::env::var("JOBQ_DB").is_ok_and(|v| has_password(&v))
}

/// True when `url` is `scheme://user:password@...`.
pub(crate) fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Runs `argv[0]` with `argv[1..]` for each job. See the module docs.
#[derive(Debug, Clone)]
pub struct ExecHandler {
    argv: Vec<String>,
    timeout: Option<Duration>,
    env: Vec<(String, String)>,
    inherit_env: bool,
}

/// How the program's run ended.
enum Ended {
    Exited(ExitStatus),
    TimedOut(Duration),
    Cancelled,
}

impl ExecHandler {
    /// A handler running `argv` (not empty), killed after `timeout` when given,
    /// inheriting jobq's environment (without [`SECRET_ENV`]).
    pub fn new(argv: Vec<String>, timeout: Option<Duration>) -> ExecHandler {
        ExecHandler {
            argv,
            timeout,
            env: Vec::new(),
            inherit_env: true,
        }
    }

    /// Sets variables for the program (after the inherited ones: they win).
    pub fn env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env = vars.into_iter().collect();
        self
    }

    /// When false the program gets only the handler's `env` and the `JOBQ_JOB_*`
    /// variables (the program is still found on jobq's `PATH`). Default true.
    pub fn inherit_env(mut self, inherit: bool) -> Self {
        self.inherit_env = inherit;
        self
    }

    fn spawn(&self, ctx: &JobContext) -> Result<Child, JobError> {
        let program = self.argv.first().map(String::as_str).unwrap_or_default();
        // Found on jobq's PATH, not the program's (see `find_program`); a
        // program gone since the start fails as before, "not found".
        let file = find_program(program).unwrap_or_else(|_| program.into());
        let mut command = Command::new(file);
        command.arg0(program);
        die_with_parent(&mut command);
        if self.inherit_env {
            for key in SECRET_ENV {
                command.env_remove(key);
            }
            if db_env_has_password() {
                command.env_remove("JOBQ_DB");
            }
        } else {
            command.env_clear();
        }
        command
            .args(self.argv.iter().skip(1))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("JOBQ_JOB_ID", ctx.id().to_string())
            .env("JOBQ_ATTEMPT", ctx.attempt().to_string())
            .env("JOBQ_JOB_TYPE", ctx.job_type())
            .env("JOBQ_FENCING_TOKEN", ctx.fencing_token().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| spawn_error(program, &e))
    }

    fn wait(&self, child: &mut Child, ctx: &JobContext) -> Result<Ended, JobError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let status = child
                .try_wait()
                .map_err(|e| JobError::Retryable(format!("waiting for the program: {e}")))?;
            if let Some(status) = status {
                return Ok(Ended::Exited(status));
            }
            if let Some(limit) = self.timeout.filter(|t| started.elapsed() >= *t) {
                return Ok(Ended::TimedOut(limit));
            }
            if ctx.is_cancelled() {
                return Ok(Ended::Cancelled);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Handler for ExecHandler {
    fn run(&self, ctx: &JobContext, payload: Value) -> HandlerResult {
        let mut child = self.spawn(ctx)?;
        feed_stdin(child.stdin.take(), payload.to_string());
        let stdout = capture(child.stdout.take(), Keep::Head(MAX_STDOUT_BYTES));
        let (stderr, progress) = capture_stderr(child.stderr.take(), ctx.clone());
        let ended = self.wait(&mut child, ctx);
        if !matches!(ended, Ok(Ended::Exited(_))) {
            kill_group(&mut child);
        }
        let stdout = collect(stdout, &mut child);
        let stderr = collect(stderr, &mut child);
        // The last progress report is stored before the attempt ends.
        progress.finish();
        match ended? {
            Ended::Exited(status) => outcome(status, stdout, &stderr),
            Ended::TimedOut(limit) => Err(JobError::Retryable(format!(
                "timed out after {} s",
                format_secs(limit)
            ))),
            Ended::Cancelled => Err(JobError::Cancelled),
        }
    }
}

/// Checks that `program` can be run: a path must name an executable file; a bare
/// name must be found, executable, on `PATH`.
///
/// # Errors
/// Why it cannot run, naming the program.
pub fn check_program(program: &str) -> Result<(), String> {
    find_program(program).map(drop)
}

/// The file `program` names: a path as given (once it is an executable file);
/// a bare name found, executable, on jobq's own `PATH`. The program is run
/// from this path, so a `PATH` in the handler's `env` (or none, with
/// `inherit_env = false`) changes only what the program itself sees, and
/// the run finds what `jobq check` found.
///
/// # Errors
/// Why it cannot run, naming the program.
pub fn find_program(program: &str) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::Path::new(program);
        return match std::fs::metadata(p) {
            Err(_) => Err(format!("program `{program}` does not exist")),
            Ok(_) if !executable(p) => {
                Err(format!("program `{program}` is not an executable file"))
            }
            Ok(_) => Ok(p.to_path_buf()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
    {
        return Ok(found);
    }
    Err(format!("program `{program}` is not found on PATH"))
}

/// A program that cannot be started is a retryable failure, whatever the
/// reason: the pool checked it when it started (`jobq check`'s rules), so a
/// program missing or not executable now is most likely being replaced (a
/// deploy copying a new binary in place), which the backoff outlasts. It says
/// nothing about the job's payload, which is what a permanent failure means.
fn spawn_error(program: &str, e: &std::io::Error) -> JobError {
    use std::io::ErrorKind;
    let text = format!("cannot run `{program}`");
    match e.kind() {
        ErrorKind::NotFound => JobError::Retryable(format!("{text}: program not found")),
        ErrorKind::PermissionDenied => JobError::Retryable(format!("{text}: permission denied")),
        _ => JobError::Retryable(format!("{text}: {e}")),
    }
}

/// Writes the payload on a thread (a program that does not read stdin must not
/// block us); a program that exits without reading it is fine.
fn feed_stdin(stdin: Option<ChildStdin>, input: String) {
    if let Some(mut stdin) = stdin {
        thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
    }
}

/// Kills the program's whole process group (it was started as its leader), then reaps it.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group we created
        // for this child (process_group(0)); it touches no memory.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Makes the kernel SIGKILL the child when the worker that started it dies (even
/// by SIGKILL), so a crashed worker's program cannot run on beside the attempt
/// that recovery starts later. Linux only; programs the child starts itself are
/// its own to stop.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2) and getppid(2), which are async-signal-safe; it allocates nothing.
    let parent = i32::try_from(std::process::id()).unwrap_or(0);
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The worker died before prctl took effect.
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}
